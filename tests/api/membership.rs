//! Calls private to their channel's members, checked against a local Stream Chat mock over real
//! HTTP (wiremock).
//!
//! The request asserted here is what Stream's official server-side SDK sends for the same
//! operation: stream-chat-js (GetStream/stream-chat-js, release 9.49.0, commit 77fb9c87)
//! `Channel.queryMembers` in src/channel.ts issues `GET {baseURL}/members` with the query
//! parameter `payload` = JSON `{type, id, sort: [], filter_conditions}`; `_enrichAxiosOptions`
//! in src/client.ts adds `api_key`, `Authorization: <token>` (no `Bearer`),
//! `stream-auth-type: jwt`, `X-Stream-Client` and `x-client-request-id`; the token is
//! `JWTServerToken` of src/signing.ts: `{"server":true}`, HS256 with the API secret, no time
//! claims. An unknown channel is assumed answered 404 (Stream's code 16, "does not exist").

use callbridge::api::Clock;
use callbridge::store::memory::MemoryStore;
use callbridge::{Callbridge, Operation};
use callbridge_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const NOW: u64 = 1_800_000_000;

/// The query's payload parameter, parsed.
fn payload(req: &Request) -> Value {
    let (_, p) = req
        .url
        .query_pairs()
        .find(|(k, _)| k == "payload")
        .expect("payload parameter");
    serde_json::from_str(&p).expect("payload is JSON")
}

/// Matches a query for one (channel, user).
struct Asks(&'static str, &'static str, &'static str);

impl Match for Asks {
    fn matches(&self, req: &Request) -> bool {
        let p = payload(req);
        p["type"] == self.0 && p["id"] == self.1 && p["filter_conditions"]["id"]["$eq"] == self.2
    }
}

fn members(user: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "members": [{"user_id": user, "user": {"id": user, "role": "user", "online": false},
                     "channel_role": "channel_member", "created_at": "2026-11-01T10:00:00Z",
                     "banned": false, "shadow_banned": false}],
        "duration": "1.02ms"
    }))
}

fn no_members() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"members": [], "duration": "0.80ms"}))
}

fn no_channel() -> ResponseTemplate {
    ResponseTemplate::new(404).set_body_json(json!({
        "code": 16, "message": "QueryMembers failed with error: \"channel \"messaging:nope\" does not exist\"",
        "StatusCode": 404, "duration": "0.41ms",
        "more_info": "https://getstream.io/chat/docs/api_errors_response", "details": []
    }))
}

/// A Stream Chat mock that knows alice in messaging:general and bob in messaging:random.
async fn stream_mock() -> MockServer {
    let server = MockServer::start().await;
    for (channel, user) in [("general", "alice"), ("random", "bob")] {
        Mock::given(method("GET"))
            .and(path("/members"))
            .and(Asks("messaging", channel, user))
            .respond_with(members(user))
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/members"))
        .and(Asks("messaging", "nope", "alice"))
        .respond_with(no_channel())
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/members"))
        .respond_with(no_members())
        .with_priority(5)
        .mount(&server)
        .await;
    server
}

struct App {
    app: Callbridge<Arc<MemoryStore>>,
    store: Arc<MemoryStore>,
    now: Arc<AtomicU64>,
}

fn member_app(base: &str, extra: &[(&str, &str)]) -> App {
    let now = Arc::new(AtomicU64::new(NOW));
    let clock: Clock = {
        let now = Arc::clone(&now);
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let mut vars = vec![
        ("CALLBRIDGE_MEMBERSHIP", "stream"),
        ("STREAM_API_BASE_URL", base),
    ];
    vars.extend_from_slice(extra);
    let store = Arc::new(MemoryStore::new());
    App {
        app: Callbridge::with_clock(config_with(&vars), Arc::clone(&store), clock),
        store,
        now,
    }
}

fn token_for(user: &str) -> String {
    // Issued "now" for the test clock.
    user_token(json!({"user_id": user, "iat": NOW}))
}

impl App {
    /// Create Call in `channel` for call `id`, as `user`.
    async fn create(&self, channel: &str, id: &str, user: &str) -> (u16, Value) {
        invoke(
            &self.app,
            Operation::CreateCall,
            create_in(channel, id, user),
        )
        .await
    }

    /// Get Call Token for call `id`, as `user`.
    async fn join(&self, id: &str, user: &str) -> (u16, Value) {
        invoke(&self.app, Operation::GetCallToken, token_req(id, user)).await
    }
}

fn create_in(channel: &str, id: &str, user: &str) -> HttpEvent {
    let (channel, id, user) = (channel.to_string(), id.to_string(), user.to_string());
    event_edited("create-call", move |v| {
        v["pathParameters"]["id"] = json!(channel);
        v["rawPath"] = json!(format!("/channels/messaging/{channel}/call"));
        v["body"] = json!(format!(r#"{{"id":"{id}","type":"video"}}"#));
        v["headers"]["authorization"] = json!(token_for(&user));
    })
}

fn token_req(id: &str, user: &str) -> HttpEvent {
    let (id, user) = (id.to_string(), user.to_string());
    event_edited("get-call-token", move |v| {
        v["pathParameters"]["id"] = json!(id);
        v["rawPath"] = json!(format!("/calls/{id}"));
        v["headers"]["authorization"] = json!(token_for(&user));
    })
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn the_request_is_the_one_streams_server_sdk_sends() {
    let server = stream_mock().await;
    let a = member_app(&server.uri(), &[]);
    let (status, body) = a.create("general", "standup", "alice").await;
    assert_eq!(status, 201, "{body}");
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.method.as_str(), "GET");
    assert_eq!(req.url.path(), "/members");
    let query: Vec<(String, String)> = req.url.query_pairs().into_owned().collect();
    let names: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["api_key", "payload"]);
    assert_eq!(query[0].1, API_KEY);
    // Byte for byte what JSON.stringify makes of stream-chat-js's payload object.
    assert_eq!(
        query[1].1,
        r#"{"type":"messaging","id":"general","sort":[],"filter_conditions":{"id":{"$eq":"alice"}}}"#
    );
    assert!(req.body.is_empty());
    assert_eq!(req.headers["stream-auth-type"], "jwt");
    assert!(
        req.headers["x-stream-client"]
            .to_str()
            .unwrap()
            .starts_with("callbridge-")
    );
    let request_id = req.headers["x-client-request-id"].to_str().unwrap();
    assert_eq!(request_id.len(), 36, "a UUID");
    assert_server_token(req.headers["authorization"].to_str().unwrap());
}

#[tokio::test]
async fn members_create_and_join_others_are_refused_and_nothing_is_written() {
    let server = stream_mock().await;
    let a = member_app(&server.uri(), &[]);
    let (status, body) = a.create("general", "standup", "alice").await;
    assert_eq!(status, 201, "{body}");

    // Not a member of messaging:general.
    let (status, body) = a.create("general", "other", "bob").await;
    assert_eq!(status, 403, "{body}");
    let msg = assert_stream_error(&body, 403, 17);
    assert!(
        msg.contains("\"bob\" is not a member of channel \"messaging:general\""),
        "{msg}"
    );
    assert!(body.get("token").is_none());

    // The channel does not exist.
    let (status, body) = a.create("nope", "x", "alice").await;
    assert_eq!(status, 404, "{body}");
    let msg = assert_stream_error(&body, 404, 16);
    assert!(
        msg.contains("channel \"messaging:nope\" does not exist"),
        "{msg}"
    );
    assert_eq!(a.store.len(), 1, "no refusal wrote anything");

    // A member of another channel who knows the id cannot join.
    let (status, body) = a.join("standup", "bob").await;
    assert_eq!(status, 403, "{body}");
    let msg = assert_stream_error(&body, 403, 17);
    assert!(msg.contains("not a member of this call's channel"), "{msg}");
    assert!(
        !msg.contains("general"),
        "the call's channel is not revealed: {msg}"
    );

    // A member joins (the answer for alice in general is cached: no new request).
    let before = requests(&server).await;
    let (status, body) = a.join("standup", "alice").await;
    assert_eq!(status, 201, "{body}");
    assert_agora_token(&body, "alice", "standup");
    assert_eq!(requests(&server).await, before);
}

#[tokio::test]
async fn a_non_member_is_refused_before_100ms_is_asked() {
    let stream = stream_mock().await;
    let hms = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id":"6470b7a5e3f47d5e9a1c0f22","name":"x","enabled":true})),
        )
        .mount(&hms)
        .await;
    let hms_base = format!("{}/v2", hms.uri());
    let a = member_app(
        &stream.uri(),
        &[
            ("CALLBRIDGE_PROVIDER", "hms"),
            ("HMS_APP_ACCESS_KEY", "6470b7a5e3f47d5e9a1c0f11"),
            ("HMS_APP_SECRET", "hms-secret"),
            ("HMS_TEMPLATE_ID", "t"),
            ("HMS_DEFAULT_ROLE", "guest"),
            ("HMS_API_BASE_URL", &hms_base),
        ],
    );
    let (status, body) = a.create("general", "x", "bob").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(requests(&hms).await, 0, "100ms was not asked");
    let (status, body) = a.create("general", "x", "alice").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(requests(&hms).await, 1);
}

#[tokio::test]
async fn server_tokens_are_not_checked() {
    let server = stream_mock().await;
    let a = member_app(&server.uri(), &[]);
    let (status, body) = invoke(
        &a.app,
        Operation::CreateCall,
        event("create-call-server-token"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = invoke(
        &a.app,
        Operation::GetCallToken,
        event("get-call-token-server-token"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(requests(&server).await, 0, "no request to Stream");
}

#[tokio::test]
async fn positive_answers_are_cached_for_their_time_and_negative_ones_not_at_all() {
    let server = stream_mock().await;
    let a = member_app(
        &server.uri(),
        &[("CALLBRIDGE_MEMBERSHIP_CACHE_SECONDS", "30")],
    );
    assert_eq!(a.create("general", "s", "alice").await.0, 201);
    assert_eq!(a.join("s", "alice").await.0, 201);
    assert_eq!(requests(&server).await, 1, "one request for two calls");
    a.now.fetch_add(29, Ordering::SeqCst);
    assert_eq!(a.join("s", "alice").await.0, 201);
    assert_eq!(requests(&server).await, 1);
    a.now.fetch_add(1, Ordering::SeqCst);
    assert_eq!(a.join("s", "alice").await.0, 201);
    assert_eq!(requests(&server).await, 2, "expired: asked again");
    for _ in 0..2 {
        assert_eq!(a.join("s", "bob").await.0, 403);
    }
    assert_eq!(requests(&server).await, 4, "refusals are asked each time");

    // A cache of 0 seconds keeps nothing.
    let b = member_app(
        &server.uri(),
        &[("CALLBRIDGE_MEMBERSHIP_CACHE_SECONDS", "0")],
    );
    let before = requests(&server).await;
    assert_eq!(b.create("general", "t", "alice").await.0, 201);
    assert_eq!(b.join("t", "alice").await.0, 201);
    assert_eq!(requests(&server).await, before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_of_one_pair_ask_stream_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/members"))
        .respond_with(members("alice").set_delay(Duration::from_millis(300)))
        .mount(&server)
        .await;
    let a = Arc::new(member_app(
        &server.uri(),
        &[("CALLBRIDGE_MEMBERSHIP_CACHE_SECONDS", "0")],
    ));
    assert_eq!(a.create("general", "c", "alice").await.0, 201);
    let before = requests(&server).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let a = Arc::clone(&a);
            tokio::spawn(async move { a.join("c", "alice").await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().0, 201);
    }
    assert_eq!(requests(&server).await, before + 1);
}

/// Every Stream failure: what the client is told, that nothing was stored, and that the same
/// request succeeds once Stream recovers.
#[tokio::test]
async fn stream_failures_answer_as_documented_and_recover() {
    struct Case {
        name: &'static str,
        answer: ResponseTemplate,
        status: u16,
        code: i64,
        retry_after: Option<&'static str>,
        attempts: usize,
        says: &'static str,
    }
    let cases = [
        Case {
            name: "5xx",
            answer: ResponseTemplate::new(503).set_body_string("upstream down"),
            status: 502,
            code: -1,
            retry_after: Some("1"),
            attempts: 2,
            says: "did not answer the membership check usably",
        },
        Case {
            name: "unreadable",
            answer: ResponseTemplate::new(200).set_body_string("<html>"),
            status: 502,
            code: -1,
            retry_after: Some("1"),
            attempts: 2,
            says: "did not answer the membership check usably",
        },
        Case {
            name: "timeout",
            answer: members("alice").set_delay(Duration::from_secs(3)),
            status: 502,
            code: -1,
            retry_after: Some("1"),
            attempts: 2,
            says: "nothing was stored",
        },
        Case {
            name: "401",
            answer: ResponseTemplate::new(401)
                .set_body_json(json!({"code":5,"message":"api key not valid","StatusCode":401})),
            status: 502,
            code: -1,
            retry_after: None,
            attempts: 1,
            says: "rejected the configured credentials",
        },
        Case {
            name: "403",
            answer: ResponseTemplate::new(403)
                .set_body_json(json!({"code":17,"message":"not allowed","StatusCode":403})),
            status: 502,
            code: -1,
            retry_after: None,
            attempts: 1,
            says: "rejected the configured credentials",
        },
        Case {
            name: "429",
            answer: ResponseTemplate::new(429)
                .insert_header("Retry-After", "3")
                .set_body_json(json!({"code":9,"message":"Too many requests","StatusCode":429})),
            status: 429,
            code: 9,
            retry_after: Some("3"),
            attempts: 1,
            says: "rate limiting",
        },
    ];
    for case in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(case.answer)
            .mount(&server)
            .await;
        let a = member_app(&server.uri(), &[]);
        let resp = callbridge_lambda::handle(
            &a.app,
            Operation::CreateCall,
            &create_in("general", "f", "alice"),
        )
        .await;
        assert_eq!(resp.status().as_u16(), case.status, "{}", case.name);
        assert_eq!(
            resp.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap()),
            case.retry_after,
            "{}",
            case.name
        );
        let body: Value = serde_json::from_slice(resp.body()).unwrap();
        let msg = assert_stream_error(&body, case.status, case.code);
        assert!(msg.contains(case.says), "{}: {msg}", case.name);
        assert!(!msg.contains(API_SECRET));
        assert_eq!(requests(&server).await, case.attempts, "{}", case.name);
        assert!(a.store.is_empty(), "{}: nothing stored", case.name);

        // Stream recovers: the same request succeeds.
        server.reset().await;
        Mock::given(method("GET"))
            .respond_with(members("alice"))
            .mount(&server)
            .await;
        let (status, body) = a.create("general", "f", "alice").await;
        assert_eq!(status, 201, "{}: {body}", case.name);
        assert_eq!(a.store.len(), 1);
    }
}

#[tokio::test]
async fn a_dropped_connection_is_retried_once_then_502() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let task = tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            drop(sock);
        }
    });
    let a = member_app(&format!("http://127.0.0.1:{port}"), &[]);
    let resp = callbridge_lambda::handle(
        &a.app,
        Operation::CreateCall,
        &create_in("general", "d", "alice"),
    )
    .await;
    task.abort();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "one retry");
    assert!(a.store.is_empty());
}

/// The local server with membership on, pointed at the mock, over real HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_server_checks_membership_end_to_end() {
    let server = stream_mock().await;
    let mut cmd = std::process::Command::new(workspace_binary("callbridge-local"));
    cmd.env_clear()
        .env("CALLBRIDGE_PORT", "0")
        .env("STREAM_API_KEY", API_KEY)
        .env("STREAM_API_SECRET", API_SECRET)
        .env("AGORA_APP_ID", AGORA_APP_ID)
        .env("AGORA_APP_CERTIFICATE", AGORA_CERT)
        .env("STREAM_API_BASE_URL", server.uri());
    let bin = LocalBinary::start(cmd);
    assert!(
        bin.banner.contains("checked against Stream Chat at"),
        "{}",
        bin.banner
    );
    let client = http_client();
    let url = |p: &str| format!("{}{p}?api_key={API_KEY}", bin.base);
    let alice = user_token(json!({"user_id": "alice"}));
    let bob = user_token(json!({"user_id": "bob"}));
    let (status, _, body) = send(
        &client,
        "POST",
        &url("/channels/messaging/general/call"),
        &[("authorization", &alice), ("stream-auth-type", "jwt")],
        r#"{"id":"e2e","type":"video"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = send(
        &client,
        "POST",
        &url("/calls/e2e"),
        &[("authorization", &bob)],
        "{}",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_stream_error(&body, 403, 17);
    let (status, _, body) = send(
        &client,
        "POST",
        &url("/calls/e2e"),
        &[("authorization", &alice)],
        "{}",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(requests(&server).await, 2, "bob asked, alice cached");
}

/// End Call with membership on: a user token must belong to a member of the call's channel,
/// even one whose role may end any call; a server token is not asked about.
#[tokio::test]
async fn end_call_needs_a_member_of_the_calls_channel() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/members"))
        .and(Asks("messaging", "general", "alice"))
        .respond_with(members("alice"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/members"))
        .respond_with(no_members())
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = Callbridge::new(
        config_with(&[
            ("CALLBRIDGE_MEMBERSHIP", "stream"),
            ("STREAM_API_BASE_URL", &server.uri()),
        ]),
        Arc::clone(&store),
    );
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    // bob's fixture token has the admin role, which may end any call, but he is no member.
    let (status, body) = invoke(&app, Operation::EndCall, event("end-call-admin")).await;
    assert_eq!(status, 403, "{body}");
    let msg = assert_stream_error(&body, 403, 17);
    assert!(
        msg.contains("is not a member of this call's channel"),
        "{msg}"
    );
    let id = callbridge::domain::CallId::parse("standup").unwrap();
    assert_eq!(store.peek(&id).unwrap().ended, None, "nothing written");
    // A server token acting for carol is not asked about; alice, a member, may end it.
    let (status, body) = invoke(&app, Operation::EndCall, event("end-call")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["ended_by"], "alice");
}
