//! The AWS Lambda Rust runtime's own API Gateway v2 (HTTP API, payload 2.0) example events,
//! copied verbatim into tests/events/upstream (see its README for repository, path and
//! commit), read by our lenient `HttpEvent`: the standard event parses unchanged, is answered
//! in Stream's error shape, and, edited only where a Callbridge request differs, succeeds.

use callbridge::store::memory::MemoryStore;
use callbridge::{Callbridge, Operation};
use callbridge_tests::*;
use http::Method;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

/// `lambda-events/src/fixtures/example-apigw-v2-request-jwt-authorizer.json`: every optional
/// field (cookies, query, path parameters, JWT authorizer, client certificate, stage
/// variables, body).
const JWT_AUTHORIZER: &str = "upstream/example-apigw-v2-request-jwt-authorizer";
/// `lambda-events/src/fixtures/example-apigw-v2-request-no-authorizer.json`: the bare minimum
/// (no query, path parameters, cookies or body).
const NO_AUTHORIZER: &str = "upstream/example-apigw-v2-request-no-authorizer";

const OPERATIONS: [Operation; 4] = [
    Operation::CreateCall,
    Operation::GetCallToken,
    Operation::EndCall,
    Operation::ProviderEvent,
];

fn app() -> Callbridge<MemoryStore> {
    Callbridge::new(config(), MemoryStore::new())
}

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn upstream_events_parse_unchanged() {
    let e = event(JWT_AUTHORIZER);
    assert_eq!(e.request_context.http.method, Method::GET);
    assert_eq!(e.request_context.http.path.as_deref(), Some("/my/path"));
    assert_eq!(e.raw_path.as_deref(), Some("/my/path"));
    assert_eq!(
        e.raw_query_string.as_deref(),
        Some("parameter1=value1&parameter1=value2&parameter2=value")
    );
    assert_eq!(
        e.headers,
        Some(map(&[("Header1", "value1"), ("Header2", "value2")]))
    );
    assert_eq!(e.path_parameters, Some(map(&[("proxy", "hello/world")])));
    assert_eq!(e.body.as_deref(), Some("{\r\n\t\"a\": 1\r\n}"));
    assert!(!e.is_base64_encoded);

    let e = event(NO_AUTHORIZER);
    assert_eq!(e.request_context.http.method, Method::GET);
    assert_eq!(e.request_context.http.path.as_deref(), Some("/"));
    assert_eq!(e.raw_path.as_deref(), Some("/"));
    assert_eq!(e.raw_query_string.as_deref(), Some(""));
    let headers = e.headers.expect("headers");
    assert_eq!(headers.len(), 8, "{headers:?}");
    assert_eq!(
        headers["host"],
        "aaaaaaaaaa.execute-api.us-west-2.amazonaws.com"
    );
    assert_eq!(headers["content-length"], "0");
    assert_eq!(e.path_parameters, None);
    assert_eq!(e.body, None);
    assert!(!e.is_base64_encoded);
}

#[tokio::test]
async fn upstream_events_match_no_route_and_get_a_stream_error() {
    let app = app();
    for (name, path) in [(JWT_AUTHORIZER, "/my/path"), (NO_AUTHORIZER, "/")] {
        for op in OPERATIONS {
            let (status, body) = invoke(&app, op, event(name)).await;
            assert_eq!(status, 404, "{name} {op:?}: {body}");
            let message = assert_stream_error(&body, 404, 16);
            assert_eq!(
                message,
                format!(
                    "{} failed with error: \"no route for GET {path}\"",
                    op.name()
                ),
                "{name}"
            );
            let keys: BTreeSet<&str> = body.as_object().unwrap().keys().map(|k| &**k).collect();
            assert_eq!(
                keys,
                BTreeSet::from([
                    "StatusCode",
                    "code",
                    "details",
                    "duration",
                    "message",
                    "more_info"
                ]),
                "{name}"
            );
        }
    }
    assert!(app.store().is_empty());
}

/// The JWT-authorizer event as a Callbridge request for `op`: only the method, path, path
/// parameters, query string, Authorization header and body are changed.
fn as_callbridge_request(op: Operation) -> HttpEvent {
    event_edited(JWT_AUTHORIZER, |v| {
        let (path, params, body) = match op {
            Operation::CreateCall => (
                "/channels/messaging/general/call",
                json!({"type": "messaging", "id": "general"}),
                r#"{"id":"standup","type":"video"}"#,
            ),
            Operation::GetCallToken => ("/calls/standup", json!({"id": "standup"}), "{}"),
            Operation::EndCall => (
                "/calls/standup/end",
                json!({"id": "standup"}),
                r#"{"reason":"done"}"#,
            ),
            Operation::ProviderEvent => ("/webhooks/100ms", Value::Null, "{}"),
        };
        v["rawPath"] = json!(path);
        v["requestContext"]["http"]["method"] = json!("POST");
        v["requestContext"]["http"]["path"] = json!(path);
        v["pathParameters"] = params;
        v["rawQueryString"] = json!(format!("api_key={API_KEY}"));
        v["queryStringParameters"] = json!({ "api_key": API_KEY });
        v["headers"]["authorization"] = json!(user_token(json!({"user_id": "alice"})));
        v["body"] = json!(body);
        // Everything else stays as upstream wrote it.
        for field in [
            &v["cookies"],
            &v["stageVariables"],
            &v["requestContext"]["authorizer"]["jwt"]["claims"],
            &v["requestContext"]["authentication"]["clientCert"],
            &v["headers"]["Header1"],
        ] {
            assert_ne!(field, &Value::Null);
        }
        assert_eq!(v["routeKey"], "$default");
    })
}

#[tokio::test]
async fn an_upstream_event_edited_into_a_callbridge_request_succeeds() {
    let app = app();
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        as_callbridge_request(Operation::CreateCall),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["call"]["id"], "standup");
    assert_agora_token(&body, "alice", "standup");
    assert_eq!(app.store().len(), 1);

    let (status, body) = invoke(
        &app,
        Operation::GetCallToken,
        as_callbridge_request(Operation::GetCallToken),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_agora_token(&body, "alice", "standup");

    let (status, body) = invoke(
        &app,
        Operation::EndCall,
        as_callbridge_request(Operation::EndCall),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["state"], "ended");
    assert_eq!(body["call"]["ended_by"], "alice");
    assert_eq!(body["call"]["ended_reason"], "done");
}
