//! The create call use case on the memory store with real providers (moved from
//! the core crate, which knows no provider adapter).

mod tests {
    use super::super::common::*;
    use super::super::testing::*;
    use callbridge::domain::{ProviderDetails, ProviderKind};
    use callbridge::providers::access_token2;
    use callbridge::store::memory::MemoryStore;

    const GRANTS: &str = "user:create-call,join-call;viewer:join-call;maker:create-call";

    fn cmd(channel: &str, id: &str, actor: Actor) -> CreateCall {
        CreateCall {
            cid: ChannelCid::parse("messaging", channel).unwrap(),
            id: Some(CallId::parse(id).unwrap()),
            call_type: CallType::Video,
            options: CallOptions::default(),
            actor,
        }
    }

    #[tokio::test]
    async fn a_new_agora_call_is_stored_with_its_creators_token() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let out = calls
            .create_call(cmd("general", "Standup", user("alice", "user")), NOW)
            .await
            .unwrap();
        assert!(out.new);
        assert_eq!(out.call.id.as_str(), "standup");
        assert_eq!(out.call.created_by, "alice");
        assert_eq!(out.call.expires_at, NOW + 600);
        assert_eq!(
            out.call.provider,
            ProviderDetails::Agora {
                channel: "standup".into()
            }
        );
        let t = access_token2::parse(&out.token.token).unwrap();
        assert!(t.verify(AGORA_CERT));
        assert_eq!(t.content.issue_ts as u64, NOW);
        assert_eq!(calls.store().len(), 1);
    }

    #[tokio::test]
    async fn the_same_id_is_the_same_call_and_another_channel_is_refused() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let first = calls
            .create_call(cmd("general", "standup", user("alice", "user")), NOW)
            .await
            .unwrap();
        let mut again = cmd("general", "STANDUP", user("bob", "user"));
        again.call_type = CallType::Audio;
        let second = calls.create_call(again, NOW + 1).await.unwrap();
        assert!(!second.new);
        assert_eq!(second.call, first.call);
        assert_ne!(second.token, first.token);
        let e = calls
            .create_call(cmd("random", "standup", user("bob", "user")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)), "{e:?}");
        assert!(e.to_string().contains("another channel"));
        assert_eq!(calls.store().len(), 1);
    }

    #[tokio::test]
    async fn roles_need_create_call_and_servers_do_not() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let e = calls
            .create_call(cmd("general", "a", user("v", "viewer")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)));
        assert!(e.to_string().contains("create-call"));
        assert!(calls.store().is_empty());
        // create-call alone is not enough: the answer is a join token.
        let e = calls
            .create_call(cmd("general", "a", user("m", "maker")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)));
        assert!(e.to_string().contains("join-call"), "{e}");
        assert!(calls.store().is_empty());
        let mut server = user("carol", "nobody");
        server.server = true;
        assert!(
            calls
                .create_call(cmd("general", "a", server), NOW)
                .await
                .unwrap()
                .new
        );
    }

    #[tokio::test]
    async fn a_missing_id_gets_a_fresh_one() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let mut c = cmd("general", "x", user("alice", "user"));
        c.id = None;
        let a = calls.create_call(c.clone(), NOW).await.unwrap();
        let b = calls.create_call(c, NOW).await.unwrap();
        assert_ne!(a.call.id, b.call.id);
        assert_eq!(a.call.id.as_str().len(), 36);
    }

    #[tokio::test]
    async fn an_expired_call_is_created_again() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        calls
            .create_call(cmd("general", "s", user("alice", "user")), NOW)
            .await
            .unwrap();
        let out = calls
            .create_call(cmd("random", "s", user("bob", "user")), NOW + 600)
            .await
            .unwrap();
        assert!(out.new);
        assert_eq!(out.call.cid.as_str(), "messaging:random");
    }

    #[tokio::test]
    async fn an_existing_hms_call_is_answered_without_asking_100ms() {
        // 100ms is unreachable here, so only storage can answer.
        let calls = calls(ProviderKind::Hms, GRANTS);
        let stored = Call {
            id: CallId::parse("standup").unwrap(),
            cid: ChannelCid::parse("messaging", "general").unwrap(),
            call_type: CallType::Audio,
            provider: ProviderDetails::Hms {
                room_id: "6470b7a5e3f47d5e9a1c0f22".into(),
                room_name: "standup".into(),
            },
            created_by: "alice".into(),
            created_at: NOW,
            expires_at: NOW + 600,
            pending_announcement: false,
            ends_at: None,
            ended: None,
            stale_kick_rule: None,
            media: Default::default(),
        };
        calls.store().insert_if_absent(&stored, NOW).await.unwrap();
        let out = calls
            .create_call(cmd("general", "standup", user("bob", "user")), NOW)
            .await
            .unwrap();
        assert!(!out.new);
        assert_eq!(out.call, stored);
        assert!(out.token.agora.is_none());
        // A new id needs 100ms, which does not answer: nothing is stored.
        let e = calls
            .create_call(cmd("general", "other", user("bob", "user")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Provider { .. }), "{e:?}");
        assert_eq!(calls.store().len(), 1);
    }

    #[tokio::test]
    async fn hms_options_are_checked_before_anything_happens() {
        let calls = calls(ProviderKind::Hms, GRANTS);
        let mut c = cmd("general", "x", user("alice", "user"));
        c.options = CallOptions(vec![(
            "region".into(),
            callbridge::domain::OptionValue::Text("mars".into()),
        )]);
        let e = calls.create_call(c, NOW).await.unwrap_err();
        assert!(matches!(e, Error::Input(_)));
        assert!(e.to_string().contains("options.region"), "{e}");
        assert!(calls.store().is_empty());
    }

    #[tokio::test]
    async fn a_read_only_store_cannot_create() {
        let c = calls(ProviderKind::Agora, GRANTS);
        let read_only = Calls::new(
            c.rules().clone(),
            callbridge::providers::Providers::new(ProviderKind::Agora, Some(agora()), None),
            callbridge::store::ReadOnly(MemoryStore::new()),
        );
        let e = read_only
            .create_call(cmd("general", "x", user("alice", "user")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotConfigured { .. }), "{e:?}");
    }
}
