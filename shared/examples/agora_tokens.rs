//! Prints Agora RTC tokens built by `agora::rtc_token` (the production path), one JSON line
//! each with what the token must say, for Agora's official parser to check
//! (`benches/node/verify_agora_tokens.mjs`, `make agora-check`).
//!
//! `cargo run -q -p callbridge --example agora_tokens [COUNT]`

use callbridge::domain::CallType;
use callbridge::providers::agora::{self, AgoraConfig, AgoraRole};
use callbridge::secret::Secret;
use serde_json::json;

const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
const CERTIFICATE: &str = "5CFd2fd1755d40ecb72977518be15d3b";

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(200, |n| n.parse().expect("COUNT is a number"));
    let cfg = AgoraConfig {
        app_id: APP_ID.into(),
        app_certificate: Secret::new(CERTIFICATE),
        role_map: Default::default(),
        rest: None,
    };
    let mut rng = fastrand::Rng::with_seed(21);
    for i in 0..count {
        // Channels as channel_for makes them: up to 63 characters of a call id.
        let channel: String = (0..rng.usize(1..=63))
            .map(|_| {
                *rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789-_:~")
                    .unwrap() as char
            })
            .collect();
        let uid = agora::agora_uid(&format!("user-{i}"));
        let role = if i % 3 == 2 {
            AgoraRole::Subscriber
        } else {
            AgoraRole::Publisher
        };
        let call_type = if i % 2 == 0 {
            CallType::Video
        } else {
            CallType::Audio
        };
        let (issue_ts, lifetime, salt) = (
            rng.u32(1_700_000_000..2_000_000_000),
            rng.u32(60..=86_400),
            agora::random_salt(),
        );
        let token = agora::rtc_token(
            &cfg, &channel, uid, role, call_type, issue_ts, lifetime, salt,
        )
        .expect("valid settings");
        let mut privileges = serde_json::Map::new();
        privileges.insert("1".into(), lifetime.into());
        if role == AgoraRole::Publisher {
            privileges.insert("2".into(), lifetime.into());
            if call_type == CallType::Video {
                privileges.insert("3".into(), lifetime.into());
            }
            privileges.insert("4".into(), lifetime.into());
        }
        let line = json!({
            "token": token, "certificate": CERTIFICATE, "app_id": APP_ID,
            "issue_ts": issue_ts, "expire": lifetime, "salt": salt,
            "channel": channel, "account": uid.to_string(), "privileges": privileges,
        });
        println!("{line}");
    }
}
