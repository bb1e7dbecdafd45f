//! Configuration and credentials shared by the benchmarks.

use callbridge::Config;
use http::HeaderMap;

pub const SECRET: &str = "bench-secret";

/// Agora configuration with the bench credentials, plus `extra` settings (which win).
pub fn config_with(extra: &[(&str, &str)]) -> Config {
    let base = [
        ("STREAM_API_KEY", "bench-key"),
        ("STREAM_API_SECRET", SECRET),
        ("AGORA_APP_ID", "970CA35de60c44645bbae8a215061b33"),
        ("AGORA_APP_CERTIFICATE", "5CFd2fd1755d40ecb72977518be15d3b"),
    ];
    Config::from_lookup(|k| {
        extra
            .iter()
            .chain(base.iter())
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
}

/// A user token for `alice` in Stream's headers.
pub fn headers() -> HeaderMap {
    let token =
        callbridge::jwt::sign_hs256(&serde_json::json!({"user_id": "alice"}), SECRET.as_bytes());
    let mut h = HeaderMap::new();
    h.insert("authorization", token.parse().unwrap());
    h.insert("stream-auth-type", "jwt".parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    h
}
