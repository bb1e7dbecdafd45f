//! The get call token use case on the memory store with real providers (moved from
//! the core crate, which knows no provider adapter).

mod tests {
    use super::super::common::*;
    use super::super::testing::*;
    use callbridge::domain::{Call, CallType, ChannelCid, ProviderDetails, ProviderKind};
    use callbridge::providers::{Providers, agora};
    use callbridge::store::memory::MemoryStore;
    use callbridge::store::{CallWriter, ReadOnly};
    use std::sync::Arc;

    const GRANTS: &str = "user:create-call,join-call;maker:create-call";

    fn call(id: &str, provider: ProviderDetails) -> Call {
        Call {
            id: CallId::parse(id).unwrap(),
            cid: ChannelCid::parse("messaging", "general").unwrap(),
            call_type: CallType::Video,
            provider,
            created_by: "alice".into(),
            created_at: NOW,
            expires_at: NOW + 600,
            pending_announcement: false,
            ends_at: None,
            ended: None,
            stale_kick_rule: None,
            media: Default::default(),
        }
    }

    fn ask(id: &str, actor: Actor) -> GetCallToken {
        GetCallToken {
            id: CallId::parse(id).unwrap(),
            actor,
        }
    }

    #[tokio::test]
    async fn tokens_for_stored_calls_of_either_provider() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let agora_call = call(
            "a",
            ProviderDetails::Agora {
                channel: "a".into(),
            },
        );
        let hms_call = call(
            "h",
            ProviderDetails::Hms {
                room_id: "6470b7a5e3f47d5e9a1c0f22".into(),
                room_name: "h".into(),
            },
        );
        for c in [&agora_call, &hms_call] {
            calls.store().insert_if_absent(c, NOW).await.unwrap();
        }
        let t = calls
            .get_call_token(ask("A", user("bob", "user")), NOW)
            .await
            .unwrap();
        let join = t.agora.unwrap();
        assert_eq!(join.uid, agora::agora_uid("bob"));
        assert!(
            callbridge::providers::access_token2::parse(&t.token)
                .unwrap()
                .verify(AGORA_CERT)
        );
        let t = calls
            .get_call_token(ask("h", user("bob", "user")), NOW)
            .await
            .unwrap();
        assert!(t.agora.is_none());
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.validate_exp = false;
        v.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<serde_json::Value>(
            &t.token,
            &jsonwebtoken::DecodingKey::from_secret(b"hms-secret").unwrap(),
            &v,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["room_id"], "6470b7a5e3f47d5e9a1c0f22");
        assert_eq!(claims["user_id"], "bob");
        assert_eq!(claims["role"], "guest");
    }

    #[tokio::test]
    async fn unknown_expired_and_forbidden() {
        let calls = calls(ProviderKind::Agora, GRANTS);
        let c = call(
            "a",
            ProviderDetails::Agora {
                channel: "a".into(),
            },
        );
        calls.store().insert_if_absent(&c, NOW).await.unwrap();
        let e = calls
            .get_call_token(ask("b", user("bob", "user")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound(_)));
        assert_eq!(e.to_string(), "call \"b\" does not exist");
        let e = calls
            .get_call_token(ask("a", user("bob", "user")), NOW + 600)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotFound(_)));
        let e = calls
            .get_call_token(ask("a", user("m", "maker")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Forbidden(_)));
        assert!(e.to_string().contains("join-call"));
    }

    #[tokio::test]
    async fn a_read_only_store_is_enough_and_missing_credentials_are_named() {
        let store = Arc::new(MemoryStore::new());
        let c = call(
            "a",
            ProviderDetails::Agora {
                channel: "a".into(),
            },
        );
        store.insert_if_absent(&c, NOW).await.unwrap();
        let rules = calls(ProviderKind::Agora, GRANTS).rules().clone();
        let read_only = Calls::new(
            rules.clone(),
            Providers::new(ProviderKind::Agora, Some(agora()), None),
            ReadOnly(Arc::clone(&store)),
        );
        assert!(
            read_only
                .get_call_token(ask("a", user("bob", "user")), NOW)
                .await
                .is_ok()
        );
        let no_agora = Calls::new(
            rules,
            Providers::new(ProviderKind::Hms, None, Some(hms())),
            ReadOnly(store),
        );
        let e = no_agora
            .get_call_token(ask("a", user("bob", "user")), NOW)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::NotConfigured { .. }));
        assert!(e.to_string().contains("no agora credentials"), "{e}");
    }
}
