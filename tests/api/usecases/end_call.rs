//! The end call use case on the memory store with real providers (moved from
//! the core crate, which knows no provider adapter).

mod tests {
    use super::super::common::*;
    use super::super::testing::*;
    use callbridge::chat::{Announcer, BoxFuture};
    use callbridge::domain::{
        CallOptions, CallState, CallType, ChannelCid, OptionValue, ProviderKind,
    };
    use callbridge::providers::access_token2;
    use callbridge::usecase::{CreateCall, GetCallToken};
    use std::sync::{Arc, Mutex};

    const GRANTS: &str = "user:create-call,join-call;admin:join-call,end-call;viewer:join-call";

    fn create(id: &str, by: Actor, options: CallOptions) -> CreateCall {
        CreateCall {
            cid: ChannelCid::parse("messaging", "general").unwrap(),
            id: Some(CallId::parse(id).unwrap()),
            call_type: CallType::Video,
            options,
            actor: by,
        }
    }

    fn end(id: &str, by: Actor, reason: Option<&str>) -> EndCall {
        EndCall {
            id: CallId::parse(id).unwrap(),
            reason: reason.map(str::to_string),
            actor: by,
        }
    }

    fn limit(secs: u64) -> CallOptions {
        CallOptions(vec![(
            "max_duration_seconds".into(),
            OptionValue::Count(secs),
        )])
    }

    /// Records what the channel is told.
    #[derive(Default)]
    struct Told(Mutex<Vec<String>>, Mutex<u32>);

    impl Announcer for Told {
        fn announce<'a>(&'a self, call: &'a Call, _: u64) -> BoxFuture<'a, Result<(), Error>> {
            self.0.lock().unwrap().push(format!("created {}", call.id));
            Box::pin(async { Ok(()) })
        }
        fn announce_end<'a>(&'a self, call: &'a Call, _: u64) -> BoxFuture<'a, Result<(), Error>> {
            let mut failures = self.1.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Box::pin(async {
                    Err(Error::Provider {
                        message: "the channel was not told".into(),
                        cause: None,
                    })
                });
            }
            self.0.lock().unwrap().push(format!("ended {}", call.id));
            Box::pin(async { Ok(()) })
        }
        fn announce_session<'a>(
            &'a self,
            call: &'a Call,
            key: &'a str,
            _: bool,
            _: u64,
        ) -> BoxFuture<'a, Result<(), Error>> {
            self.0.lock().unwrap().push(format!("{key} {}", call.id));
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn the_creator_ends_a_call_once_and_tokens_stop() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        calls
            .create_call(
                create("standup", user("alice", "user"), CallOptions::default()),
                NOW,
            )
            .await
            .unwrap();
        let out = calls
            .end_call(end("Standup", user("alice", "user"), Some("done")), NOW + 5)
            .await
            .unwrap();
        assert!(out.newly_ended);
        assert_eq!(out.call.state(NOW + 5), CallState::Ended);
        let e = out.call.ended.clone().unwrap();
        assert_eq!(
            (e.at, e.by.as_str(), e.reason.as_deref()),
            (NOW + 5, "alice", Some("done"))
        );
        assert!(
            !e.provider_pending,
            "nothing to do at Agora without credentials"
        );
        // Agora without RESTful credentials: tokens issued stay valid until they expire.
        assert_eq!(
            out.participants,
            Participants::TokensValidUntil(NOW + 5 + 600 - 5)
        );
        // Again: the same state, nothing newly ended.
        let again = calls
            .end_call(
                end("standup", user("alice", "user"), Some("other")),
                NOW + 9,
            )
            .await
            .unwrap();
        assert!(!again.newly_ended);
        assert_eq!(again.call, out.call);
        assert_eq!(again.participants, out.participants);
        let e = calls
            .get_call_token(
                GetCallToken {
                    id: CallId::parse("standup").unwrap(),
                    actor: user("bob", "user"),
                },
                NOW + 6,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound(_)));
        assert_eq!(e.to_string(), "call \"standup\" has ended");
    }

    #[tokio::test]
    async fn who_may_end_a_call() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        calls
            .create_call(
                create("a", user("alice", "user"), CallOptions::default()),
                NOW,
            )
            .await
            .unwrap();
        for other in [user("bob", "user"), user("vic", "viewer")] {
            let e = calls
                .end_call(end("a", other, None), NOW)
                .await
                .unwrap_err();
            assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
            assert!(e.to_string().contains("end-call"), "{e}");
        }
        assert_eq!(
            calls
                .store()
                .peek(&CallId::parse("a").unwrap())
                .unwrap()
                .ended,
            None
        );
        // A role granted end-call ends any call; so does a server token.
        let out = calls
            .end_call(end("a", user("ann", "admin"), None), NOW)
            .await
            .unwrap();
        assert_eq!(out.call.ended.unwrap().by, "ann");
        calls
            .create_call(
                create("b", user("alice", "user"), CallOptions::default()),
                NOW,
            )
            .await
            .unwrap();
        let mut server = user("ops", "nobody");
        server.server = true;
        assert!(
            calls
                .end_call(end("b", server, None), NOW)
                .await
                .unwrap()
                .newly_ended
        );
        let e = calls
            .end_call(end("nope", user("alice", "user"), None), NOW)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "call \"nope\" does not exist");
    }

    #[tokio::test]
    async fn an_ended_id_is_created_again_as_a_new_call() {
        let told = Arc::new(Told::default());
        let calls = calls(ProviderKind::Agora, GRANTS).with_announcer(told.clone());
        let first = calls
            .create_call(
                create("s", user("alice", "user"), CallOptions::default()),
                NOW,
            )
            .await
            .unwrap();
        calls
            .end_call(end("s", user("alice", "user"), None), NOW + 1)
            .await
            .unwrap();
        let second = calls
            .create_call(
                create("S", user("bob", "user"), CallOptions::default()),
                NOW + 2,
            )
            .await
            .unwrap();
        assert!(second.new);
        assert_eq!(second.call.created_at, NOW + 2);
        assert_eq!(second.call.created_by, "bob");
        assert_eq!(second.call.ended, None);
        assert_ne!(second.call.created_at, first.call.created_at);
        assert_eq!(
            *told.0.lock().unwrap(),
            vec!["created s", "ended s", "created s"]
        );
    }

    #[tokio::test]
    async fn a_failed_end_announcement_is_completed_by_a_repeat() {
        let told = Arc::new(Told::default());
        *told.1.lock().unwrap() = 1;
        let calls = calls(ProviderKind::Agora, GRANTS).with_announcer(told.clone());
        calls
            .create_call(
                create("s", user("alice", "user"), CallOptions::default()),
                NOW,
            )
            .await
            .unwrap();
        let e = calls
            .end_call(end("s", user("alice", "user"), None), NOW + 1)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not told"), "{e}");
        let stored = calls.store().peek(&CallId::parse("s").unwrap()).unwrap();
        assert!(
            stored.ended.as_ref().unwrap().announce_pending,
            "the call stays ended, the mark pending"
        );
        let out = calls
            .end_call(end("s", user("alice", "user"), None), NOW + 2)
            .await
            .unwrap();
        assert!(!out.newly_ended);
        assert_eq!(out.call.ended.as_ref().unwrap().at, NOW + 1);
        assert!(!out.call.ended.unwrap().announce_pending);
        assert_eq!(*told.0.lock().unwrap(), vec!["created s", "ended s"]);
        // Told once: a third End Call tells nothing.
        calls
            .end_call(end("s", user("alice", "user"), None), NOW + 3)
            .await
            .unwrap();
        assert_eq!(told.0.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn time_limits_cap_tokens_and_end_calls() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let out = calls
            .create_call(create("t", user("alice", "user"), limit(120)), NOW)
            .await
            .unwrap();
        assert_eq!(out.call.ends_at, Some(NOW + 120));
        let expiry = |token: &str| {
            let t = access_token2::parse(token).unwrap();
            t.content.issue_ts as u64 + u64::from(t.content.expire)
        };
        assert_eq!(
            expiry(&out.token.token),
            NOW + 120,
            "the token ends with the call"
        );
        let token = |now| {
            calls.get_call_token(
                GetCallToken {
                    id: CallId::parse("t").unwrap(),
                    actor: user("bob", "user"),
                },
                now,
            )
        };
        assert_eq!(expiry(&token(NOW + 100).await.unwrap().token), NOW + 120);
        assert_eq!(
            token(NOW + 120).await.unwrap_err().to_string(),
            "call \"t\" has ended"
        );
        // End Call after the limit: ended by it, nothing written.
        let out = calls
            .end_call(end("t", user("alice", "user"), None), NOW + 130)
            .await
            .unwrap();
        assert_eq!(out.participants, Participants::TimeLimit);
        assert!(!out.newly_ended);
        assert_eq!(out.call.ended, None);
        assert_eq!(out.call.ended_at(NOW + 130), Some(NOW + 120));
        // Out of range, for every provider.
        for bad in [59, 86_401] {
            let e = calls
                .create_call(create("u", user("alice", "user"), limit(bad)), NOW)
                .await
                .unwrap_err();
            assert!(e.to_string().contains("60 to 86400"), "{e}");
        }
        let mut text = limit(60);
        text.0[0].1 = OptionValue::Text("60".into());
        assert!(
            calls
                .create_call(create("u", user("alice", "user"), text), NOW)
                .await
                .is_err()
        );
        // 100ms refuses rooms outside 120 to 43200 s: refused before 100ms is asked.
        let hms = super::super::testing::calls(ProviderKind::Hms, GRANTS);
        let e = hms
            .create_call(create("h", user("alice", "user"), limit(90)), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Input(_)), "{e:?}");
        assert!(e.to_string().contains("120 to 43200"), "{e}");
    }

    #[tokio::test]
    async fn racing_end_calls_write_once_and_answer_alike() {
        let calls = Arc::new(calls(ProviderKind::Agora, GRANTS));
        calls
            .create_call(
                create("r", user("alice", "user"), CallOptions::default()),
                NOW,
            )
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let calls = Arc::clone(&calls);
            tasks.push(tokio::spawn(async move {
                let who = if i % 2 == 0 {
                    user("alice", "user")
                } else {
                    user("ann", "admin")
                };
                calls.end_call(end("r", who, None), NOW + 1).await.unwrap()
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        assert_eq!(answers.iter().filter(|a| a.newly_ended).count(), 1);
        for a in &answers {
            assert_eq!(a.call, answers[0].call);
            assert_eq!(a.participants, answers[0].participants);
        }
    }
}
