//! 100ms against a local mock server over real HTTP: rooms, tokens, and every failure mode.

use callbridge::store::memory::MemoryStore;
use callbridge::{Callbridge, Operation};
use callbridge_tests::*;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ACCESS_KEY: &str = "6470b7a5e3f47d5e9a1c0f11";
const HMS_SECRET: &str = "hms-test-secret-value";
const ROOM_ID: &str = "6470b7a5e3f47d5e9a1c0f22";

fn hms_app(base: &str, store: Arc<MemoryStore>) -> Callbridge<Arc<MemoryStore>> {
    Callbridge::new(
        config_with(&[
            ("CALLBRIDGE_PROVIDER", "hms"),
            ("HMS_APP_ACCESS_KEY", ACCESS_KEY),
            ("HMS_APP_SECRET", HMS_SECRET),
            ("HMS_TEMPLATE_ID", "tmpl-default"),
            ("HMS_DEFAULT_ROLE", "guest"),
            ("HMS_ROLE_MAP", "admin:host"),
            ("HMS_API_BASE_URL", &format!("{base}/v2")),
        ]),
        store,
    )
}

/// A room answer as 100ms sends it, with fields we do not read and a Go zero time.
fn room_answer(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": ROOM_ID, "name": name, "enabled": true, "description": "", "customer": "c1",
        "customer_id": "c1", "app_id": "a1", "recording_info": {"enabled": false},
        "template_id": "tmpl-default", "template": "x", "region": "in", "large_room": false,
        "created_at": "2026-11-28T10:00:00.123456Z", "updated_at": "0001-01-01T00:00:00Z",
        "polls": null, "new_field": {"nested": [1, 2]}
    }))
}

fn create_req(body: &str, user: &str, role: &str) -> HttpEvent {
    event_edited("create-call", |v| {
        v["body"] = json!(body);
        v["headers"]["authorization"] = json!(user_token(json!({"user_id": user, "role": role})));
    })
}

fn decode(token: &str) -> Value {
    let mut v = Validation::new(Algorithm::HS256);
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp", "nbf", "iat"]);
    jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(HMS_SECRET.as_bytes()).unwrap(),
        &v,
    )
    .expect("valid HS256 token")
    .claims
}

fn assert_app_token(body: &Value, user: &str, role: &str) {
    let claims = decode(body["token"].as_str().unwrap());
    let keys: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "access_key",
        "exp",
        "iat",
        "jti",
        "nbf",
        "role",
        "room_id",
        "type",
        "user_id",
        "version",
    ];
    expected.sort();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(keys_sorted, expected);
    assert_eq!(claims["access_key"], ACCESS_KEY);
    assert_eq!(claims["type"], "app");
    assert_eq!(claims["version"], 2);
    assert_eq!(claims["room_id"], ROOM_ID);
    assert_eq!(claims["role"], role);
    assert_eq!(claims["user_id"], user);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
        3600
    );
    assert_eq!(claims["iat"], claims["nbf"]);
    assert_issued_for_clock_skew(&claims);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
    assert!(
        body.get("agora_uid").is_none() && body.get("agora_app_id").is_none(),
        "{body}"
    );
}

/// Issued 10 s in the past, as 100ms's server SDK does, against clock skew.
fn assert_issued_for_clock_skew(claims: &Value) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let iat = claims["iat"].as_u64().unwrap();
    assert!((now - 15..=now - 10).contains(&iat), "iat {iat}, now {now}");
    assert_eq!(claims["nbf"], claims["iat"]);
}

fn assert_management_token(req: &Request) {
    let auth = req.headers.get("authorization").unwrap().to_str().unwrap();
    let token = auth.strip_prefix("Bearer ").expect("Bearer token");
    let claims = decode(token);
    assert_eq!(claims["access_key"], ACCESS_KEY);
    assert_eq!(claims["type"], "management");
    assert_eq!(claims["version"], 2);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["nbf"].as_u64().unwrap(),
        86_400
    );
    assert!(claims.get("room_id").is_none() && claims.get("role").is_none());
    assert_issued_for_clock_skew(&claims);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);
}

#[tokio::test]
async fn new_room_then_existing_call_without_asking_100ms() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/rooms"))
        .respond_with(room_answer("standup"))
        .expect(1)
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = hms_app(&server.uri(), Arc::clone(&store));

    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(
            r#"{"id":"StandUp","type":"video","options":{"description":"daily"}}"#,
            "alice",
            "user",
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        stream_fields(&body["call"]),
        json!({"id":"standup","provider":"hms","type":"video","agora":{"channel":""},"hms":{"room_id":ROOM_ID,"room_name":"standup"}})
    );
    assert_eq!(body["call"]["state"], "active");
    assert_app_token(&body, "alice", "guest");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let sent: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"name":"standup","template_id":"tmpl-default","description":"daily"})
    );
    assert_eq!(
        requests[0].headers.get("content-type").unwrap(),
        "application/json"
    );
    assert_management_token(&requests[0]);

    // Existing call: answered from storage, the mock sees nothing more (expect(1) above).
    let (status, again) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"standup","type":"audio"}"#, "bob", "admin"),
    )
    .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["call"], body["call"]);
    assert_app_token(&again, "bob", "host");

    // Get Call Token signs locally.
    let (status, t) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
    assert_eq!(status, 201, "{t}");
    assert_app_token(&t, "alice", "guest");
    assert!(t.get("call").is_none());
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(store.len(), 1);
}

/// A store holding the `create-call` fixture's call, created on Agora.
async fn store_with_an_agora_call() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let agora_app = Callbridge::new(config(), Arc::clone(&store));
    let (status, body) = invoke(&agora_app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    store
}

#[tokio::test]
async fn an_existing_call_keeps_its_provider() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(room_answer("x"))
        .expect(0)
        .mount(&server)
        .await;
    let store = store_with_an_agora_call().await;
    let app = hms_app(&server.uri(), store);
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["call"]["provider"], "agora");
    assert_agora_token(&body, "alice", "standup");
}

/// A call whose provider this deployment has no credentials for (the deployment switched
/// providers and dropped the old one's settings): a clear 503 without `Retry-After`, since
/// retrying cannot help, and nothing changes.
#[tokio::test]
async fn a_call_whose_provider_is_not_configured_is_a_503_without_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(room_answer("standup"))
        .mount(&server)
        .await;
    let store = store_with_an_agora_call().await;
    let hms_only = Callbridge::new(
        config_with(&[
            ("CALLBRIDGE_PROVIDER", "hms"),
            ("AGORA_APP_ID", ""),
            ("AGORA_APP_CERTIFICATE", ""),
            ("HMS_APP_ACCESS_KEY", ACCESS_KEY),
            ("HMS_APP_SECRET", HMS_SECRET),
            ("HMS_TEMPLATE_ID", "tmpl-default"),
            ("HMS_DEFAULT_ROLE", "guest"),
            ("HMS_API_BASE_URL", &format!("{}/v2", server.uri())),
        ]),
        Arc::clone(&store),
    );
    assert!(hms_only.config().agora.is_none());
    for (op, name) in [
        (Operation::CreateCall, "create-call"),
        (Operation::GetCallToken, "get-call-token"),
    ] {
        let resp = callbridge_lambda::handle(&hms_only, op, &event(name)).await;
        assert_eq!(resp.status(), 503, "{name}");
        assert!(resp.headers().get("retry-after").is_none(), "{name}");
        let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        let msg = assert_stream_error(&body, 503, -1);
        assert!(msg.contains("no agora credentials configured"), "{msg}");
    }
    assert_eq!(store.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_new_id_store_one_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(room_answer("race").set_delay(Duration::from_millis(50)))
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = Arc::new(hms_app(&server.uri(), Arc::clone(&store)));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = Arc::clone(&app);
        let id = if i % 2 == 0 { "RACE" } else { "race" };
        tasks.push(tokio::spawn(async move {
            invoke(
                &app,
                Operation::CreateCall,
                create_req(
                    &format!(r#"{{"id":"{id}","type":"video"}}"#),
                    &format!("u{i}"),
                    "user",
                ),
            )
            .await
        }));
    }
    let mut calls = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        calls.push(body["call"].clone());
    }
    assert!(calls.iter().all(|c| c == &calls[0]));
    assert_eq!(calls[0]["hms"]["room_id"], ROOM_ID);
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn options_are_checked_before_100ms_is_asked() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(room_answer("x"))
        .expect(0)
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = hms_app(&server.uri(), Arc::clone(&store));
    for (opts, needle) in [
        (
            r#"{"template":"x"}"#,
            "accepted keys: template_id, region, description, size, max_duration_seconds",
        ),
        (r#"{"region":"mars"}"#, "options.region"),
        (r#"{"size":"big"}"#, "options.size"),
        (r#"[1]"#, "options must be an object"),
    ] {
        let (status, body) = invoke(
            &app,
            Operation::CreateCall,
            create_req(
                &format!(r#"{{"id":"x","type":"video","options":{opts}}}"#),
                "alice",
                "user",
            ),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            assert_stream_error(&body, 400, 4).contains(needle),
            "{body}"
        );
    }
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_400_for_the_callers_options_is_a_400_with_100ms_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"code":400,"message":"template not found","details":["no template with id nope"]})))
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = hms_app(&server.uri(), Arc::clone(&store));
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(
            r#"{"id":"x","type":"video","options":{"template_id":"nope"}}"#,
            "alice",
            "user",
        ),
    )
    .await;
    assert_eq!(status, 400);
    let msg = assert_stream_error(&body, 400, 4);
    assert!(
        msg.contains("template not found") && msg.contains("no template with id nope"),
        "{msg}"
    );
    // Without caller options, the deployment's defaults were refused: 502.
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
    )
    .await;
    assert_eq!(status, 502);
    assert!(assert_stream_error(&body, 502, -1).contains("HMS_TEMPLATE_ID"));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        2,
        "a 400 is not retried"
    );
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_401_renews_the_management_token_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!({"code":401,"message":"Token validation error","details":["expired"]}),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(room_answer("x"))
        .mount(&server)
        .await;
    let app = hms_app(&server.uri(), Arc::new(MemoryStore::new()));
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert_ne!(
        reqs[0].headers.get("authorization"),
        reqs[1].headers.get("authorization"),
        "a fresh token"
    );
    for r in &reqs {
        assert_management_token(r);
    }
}

#[tokio::test]
async fn rejected_credentials_are_a_clear_502() {
    for status_code in [401u16, 403] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status_code)
                    .set_body_json(json!({"code":status_code,"message":"Authentication error"})),
            )
            .mount(&server)
            .await;
        let store = Arc::new(MemoryStore::new());
        let app = hms_app(&server.uri(), Arc::clone(&store));
        let resp = callbridge_lambda::handle(
            &app,
            Operation::CreateCall,
            &create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
        )
        .await;
        assert_eq!(resp.status(), 502);
        assert!(
            resp.headers().get("retry-after").is_none(),
            "retrying cannot help"
        );
        let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        let msg = assert_stream_error(&body, 502, -1);
        assert!(msg.contains("rejected the configured credentials"), "{msg}");
        assert!(!msg.contains(HMS_SECRET));
        let expected = if status_code == 401 { 2 } else { 1 };
        assert_eq!(server.received_requests().await.unwrap().len(), expected);
        assert!(store.is_empty());
    }
}

#[tokio::test]
async fn server_errors_are_retried_once_then_502_and_recover() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream exploded"))
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = hms_app(&server.uri(), Arc::clone(&store));
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
    )
    .await;
    assert_eq!(status, 502);
    let msg = assert_stream_error(&body, 502, -1);
    // 100ms may have made the room; only what Callbridge knows is said: no call was stored.
    assert!(
        msg.contains("did not answer usably, so no call was stored"),
        "{msg}"
    );
    assert!(!msg.contains("nothing was created"), "{msg}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert!(store.is_empty(), "nothing stored after a failure");

    // One 500, then fine: the retry succeeds.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(room_answer("x"))
        .mount(&server)
        .await;
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn garbage_answers_are_502() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>not json</html>"))
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = hms_app(&server.uri(), Arc::clone(&store));
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert_stream_error(&body, 502, -1);
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_slow_100ms_is_cut_by_the_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(room_answer("x").set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = hms_app(&server.uri(), Arc::clone(&store));
    let started = Instant::now();
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 502, "{body}");
    assert!(took < Duration::from_secs(7), "answered in {took:?}");
    assert!(
        took >= callbridge::providers::hms::ATTEMPT_TIMEOUT * 2,
        "both attempts waited: {took:?}"
    );
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_dropped_connection_is_retried_then_502() {
    // A server that accepts and hangs up at once, on a loopback port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(sock);
        }
    });
    let store = Arc::new(MemoryStore::new());
    let app = hms_app(&format!("http://127.0.0.1:{port}"), Arc::clone(&store));
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
    )
    .await;
    task.abort();
    assert_eq!(status, 502, "{body}");
    assert_stream_error(&body, 502, -1);
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one retry"
    );
    assert!(store.is_empty());
}

#[tokio::test]
async fn rate_limiting_by_100ms_is_429() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;
    let app = hms_app(&server.uri(), Arc::new(MemoryStore::new()));
    let resp = callbridge_lambda::handle(
        &app,
        Operation::CreateCall,
        &create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
}

#[tokio::test]
async fn hms_secret_never_in_logs_or_responses() {
    let capture = LogCapture::global();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string("nope"))
        .mount(&server)
        .await;
    let app = hms_app(&server.uri(), Arc::new(MemoryStore::new()));
    tracing::info!(config = ?app.config(), "config");
    let (_, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
    )
    .await;
    let logs = capture.text();
    assert!(
        logs.contains("rejected the configured credentials"),
        "{logs}"
    );
    assert!(!logs.contains(HMS_SECRET) && !body.to_string().contains(HMS_SECRET));
}

/// A 404 from 100ms (a wrong HMS_API_BASE_URL path, say) is this deployment's to fix: a 502
/// that says what to check, without `Retry-After`, and no retry.
#[tokio::test]
async fn a_404_from_100ms_is_a_configuration_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("404 page not found"))
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = hms_app(&format!("{}/wrong", server.uri()), Arc::clone(&store));
    let resp = callbridge_lambda::handle(
        &app,
        Operation::CreateCall,
        &create_req(r#"{"id":"x","type":"video"}"#, "alice", "user"),
    )
    .await;
    assert_eq!(resp.status(), 502);
    assert!(
        resp.headers().get("retry-after").is_none(),
        "a retry cannot help"
    );
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    let msg = assert_stream_error(&body, 502, -1);
    assert!(msg.contains("HMS_API_BASE_URL"), "{msg}");
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "no retry"
    );
    assert!(store.is_empty());
}

/// 100ms answers a room by an existing name as it is, disabled too. Such a room is enabled
/// (`POST /v2/rooms/<id>` with `{"enabled": true}`, 100ms's Rooms API) before anyone gets a
/// token for it; if 100ms keeps it disabled, nothing is stored and the answer says why.
#[tokio::test]
async fn a_disabled_room_is_enabled_before_the_call_is_stored() {
    let disabled = ResponseTemplate::new(200).set_body_json(json!({
        "id": ROOM_ID, "name": "standup", "enabled": false, "customer_id": "c1",
        "template_id": "tmpl-default", "region": "in", "updated_at": "0001-01-01T00:00:00Z"
    }));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/rooms"))
        .respond_with(disabled.clone())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/rooms/{ROOM_ID}")))
        .respond_with(room_answer("standup"))
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = hms_app(&server.uri(), Arc::clone(&store));
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"standup","type":"video"}"#, "alice", "user"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["call"]["hms"]["room_id"], ROOM_ID);
    assert_app_token(&body, "alice", "guest");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].url.path(), format!("/v2/rooms/{ROOM_ID}"));
    let sent: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(sent, json!({"enabled": true}));
    assert_management_token(&requests[1]);
    assert_eq!(store.len(), 1);

    // 100ms keeps it disabled: a 502 without Retry-After, nothing stored.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(disabled)
        .mount(&server)
        .await;
    let resp = callbridge_lambda::handle(
        &app,
        Operation::CreateCall,
        &create_req(r#"{"id":"other","type":"video"}"#, "alice", "user"),
    )
    .await;
    assert_eq!(resp.status(), 502);
    assert!(resp.headers().get("retry-after").is_none());
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    let msg = assert_stream_error(&body, 502, -1);
    assert!(msg.contains("disabled"), "{msg}");
    assert_eq!(store.len(), 1);
}

/// Concurrent creates of one new id in one process share one room request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_new_id_send_one_room_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/rooms"))
        .respond_with(room_answer("flight").set_delay(Duration::from_millis(300)))
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = Arc::new(hms_app(&server.uri(), Arc::clone(&store)));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                invoke(
                    &app,
                    Operation::CreateCall,
                    create_req(
                        r#"{"id":"Flight","type":"video"}"#,
                        &format!("u{i}"),
                        "user",
                    ),
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["call"]["hms"]["room_id"], ROOM_ID);
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    assert_eq!(store.len(), 1);
    // Later creates of other ids ask again (nothing is cached past the flight).
    let (status, _) = invoke(
        &app,
        Operation::CreateCall,
        create_req(r#"{"id":"later","type":"video"}"#, "u", "user"),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
