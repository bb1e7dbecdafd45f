//! Configuration and credentials shared by the benchmarks.

use callbridge::api::{ApiRequest, PathParams};
use callbridge::{Config, Operation};
use http::{HeaderMap, Method};

pub const SECRET: &str = "bench-secret";

/// Agora configuration with the bench credentials, plus `extra` settings (which win).
pub fn config_with(extra: &[(&str, &str)]) -> Config {
    let base = [
        ("STREAM_API_KEY", "bench-key"),
        ("STREAM_API_SECRET", SECRET),
        ("CALLBRIDGE_MEMBERSHIP", "off"),
        ("AGORA_APP_ID", "970CA35de60c44645bbae8a215061b33"),
        ("AGORA_APP_CERTIFICATE", "5CFd2fd1755d40ecb72977518be15d3b"),
    ];
    let vars: Vec<(&str, &str)> = extra.iter().chain(base.iter()).copied().collect();
    Config::from_pairs(&vars).unwrap()
}

/// A user token for `alice` in Stream's headers.
pub fn headers() -> HeaderMap {
    let token =
        callbridge::hs256::sign_hs256(&serde_json::json!({"user_id": "alice"}), SECRET.as_bytes());
    let mut h = HeaderMap::new();
    h.insert("authorization", token.parse().unwrap());
    h.insert("stream-auth-type", "jwt".parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    h
}

/// Create Call for `call-messaging:general` in `messaging:general`, as a JS client sends it.
pub fn create_request(headers: &HeaderMap) -> ApiRequest<'_> {
    ApiRequest {
        method: &Method::POST,
        path: "/channels/messaging/general/call",
        params: Some(PathParams {
            channel_type: Some("messaging"),
            id: Some("general"),
        }),
        operation: Some(Operation::CreateCall),
        query: Some("api_key=bench-key&user_id=alice&connection_id=c"),
        headers,
        body: br#"{"id":"call-messaging:General","type":"video","options":{}}"#,
    }
}

/// Get Call Token for `call_id` (percent-encoded, as it appears in the path).
pub fn token_request<'a>(
    headers: &'a HeaderMap,
    path: &'a str,
    call_id: &'a str,
) -> ApiRequest<'a> {
    ApiRequest {
        method: &Method::POST,
        path,
        params: Some(PathParams {
            channel_type: None,
            id: Some(call_id),
        }),
        operation: Some(Operation::GetCallToken),
        query: Some("api_key=bench-key"),
        headers,
        body: b"{}",
    }
}
