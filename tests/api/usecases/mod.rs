//! The use cases (callbridge-core) on the memory store with the real Agora and 100ms
//! providers: their unit tests live here, beside the adapters they use.

mod common {
    pub use callbridge::domain::*;
    pub use callbridge::error::Error;
    pub use callbridge::store::CallWriter;
    pub use callbridge::usecase::end_call::Participants;
    pub use callbridge::usecase::*;
}

pub mod testing {
    //! The use cases on the in-memory store with real providers (Agora's published test
    //! credentials; 100ms with an address nothing answers on).
    use super::common::*;
    use callbridge::domain::{Actor, ProviderKind};
    use callbridge::providers::Providers;
    use callbridge::providers::agora::{Agora, AgoraConfig};
    use callbridge::providers::hms::{Hms, HmsConfig};
    use callbridge::secret::Secret;
    use callbridge::store::memory::MemoryStore;

    pub const NOW: u64 = 1_800_000_000;
    pub const AGORA_CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";

    pub fn agora() -> Agora {
        Agora::new(
            AgoraConfig {
                app_id: "970CA35de60c44645bbae8a215061b33".into(),
                app_certificate: Secret::new(AGORA_CERT),
                role_map: Default::default(),
                rest: None,
            },
            None,
        )
    }

    pub fn hms() -> Hms {
        Hms::new(
            HmsConfig {
                app_access_key: "6470b7a5e3f47d5e9a1c0f11".into(),
                app_secret: Secret::new("hms-secret"),
                template_id: "tmpl".into(),
                default_role: "guest".into(),
                region: None,
                role_map: Default::default(),
                // Port 9 (discard) on loopback: nothing answers, so a room request fails fast.
                api_base: "http://127.0.0.1:9/v2".into(),
                webhook: None,
            },
            callbridge::http_client::https_client(std::time::Duration::from_secs(1)).unwrap(),
        )
    }

    pub fn calls(default: ProviderKind, grants: &str) -> Calls<MemoryStore, Providers> {
        Calls::new(
            Rules {
                grants: Grants::parse(grants).unwrap(),
                token_ttl_secs: 3600,
                call_ttl_secs: 600,
                max_call_secs: None,
            },
            Providers::new(default, Some(agora()), Some(hms())),
            MemoryStore::new(),
        )
    }

    pub fn user(id: &str, role: &str) -> Actor {
        Actor {
            user_id: id.into(),
            role: role.into(),
            server: false,
        }
    }
}

mod create_call;
mod end_call;
mod get_call_token;
