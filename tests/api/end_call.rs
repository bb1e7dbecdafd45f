//! End Call and time limits through the handlers: on DynamoDB (moto), against local mocks of
//! 100ms's REST API, Agora's RESTful API and Stream Chat (wiremock, over real HTTP), with the
//! failures of each and the recovery that a repeated request brings.
//!
//! What the mocks expect is what each service documents or its official SDK sends:
//! - 100ms: `POST /v2/active-rooms/<room_id>/end-room`, management token as Bearer, body
//!   `{"reason", "lock"}` (100mslive/100ms-docs, docs/server-side/v2/api-reference/active-rooms/
//!   end-active-room.mdx; 100mslive/server-sdks nodejs/src/api_wrappers/ActiveRoomWrapper.ts).
//! - Agora: `POST /dev/v1/kicking-rule` `{appid, cname, time_in_seconds, privileges:
//!   ["join_channel"]}` answered `{"status":"success","id":n}`, `DELETE /dev/v1/kicking-rule`
//!   `{appid, id}`, HTTP Basic auth with the customer id and secret (docs.agora.io, Channel
//!   Management REST API: "Create a banning rule", "Delete a banning rule", "RESTful
//!   authentication").
//! - Stream Chat: stream-chat-js 9.x `client.partialUpdateMessage(id, {set}, userId)` sends
//!   `PUT /messages/{id}` with `{"set": ..., "user": {"id": ...}}` (src/client.ts); events and
//!   channel updates as tests/api/notify.rs describes.

use aws_sdk_dynamodb::types::AttributeValue;
use callbridge::domain::CallId;
use callbridge::store::CallReader;
use callbridge::store::memory::MemoryStore;
use callbridge::{Callbridge, Operation};
use callbridge_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ROOM_ID: &str = "6470b7a5e3f47d5e9a1c0f22";
const HMS_SECRET: &str = "hms-test-secret-value";
const CUSTOMER_SECRET: &str = "agora-customer-secret-value";

fn as_user(name: &str, user: &str, role: &str, body: Option<&str>) -> HttpEvent {
    event_edited(name, |v| {
        v["headers"]["authorization"] = json!(user_token(json!({"user_id": user, "role": role})));
        if let Some(b) = body {
            v["body"] = json!(b);
        }
    })
}

fn with_body(name: &str, body: &str) -> HttpEvent {
    event_edited(name, |v| v["body"] = json!(body))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An RFC 3339 time of the call object as Unix seconds.
fn secs(v: &Value) -> u64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    let t = time_of(s);
    assert!(t > 1_700_000_000, "{s}");
    t
}

fn time_of(s: &str) -> u64 {
    // 2026-12-06T08:44:34Z, by hand: the tests do not link a date library.
    let (date, clock) = s.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let c: Vec<i64> = clock.split(':').map(|x| x.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + c[0] * 3600 + c[1] * 60 + c[2]) as u64
}

#[test]
fn time_of_reads_rfc3339() {
    assert_eq!(time_of("1970-01-01T00:00:00Z"), 0);
    assert_eq!(time_of("2027-01-15T08:00:00Z"), 1_800_000_000);
}

#[tokio::test]
async fn end_call_on_dynamodb_writes_once_and_changes_no_other_request_count() {
    let (store, client, log) = fresh_dynamo_store().await;
    let table = store.table().to_string();
    let app = Callbridge::new(config(), store);

    let (status, created) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(log.take(), vec!["PutItem"]);
    assert_eq!(created["call"]["state"], "active");
    assert_eq!(created["call"]["created_by"], "alice");
    assert!(
        created["call"].get("ends_at").is_none(),
        "no limit, no ends_at"
    );
    let (status, _) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
    assert_eq!(status, 201);
    assert_eq!(log.take(), vec!["GetItem"]);

    let (status, ended) = invoke(&app, Operation::EndCall, event("end-call")).await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(log.take(), vec!["GetItem", "UpdateItem"]);
    let call = &ended["call"];
    assert_eq!(call["state"], "ended");
    assert_eq!(call["ended_by"], "alice");
    assert_eq!(call["ended_reason"], "standup is over");
    assert!(secs(&call["ended_at"]) >= secs(&call["created_at"]));
    // The fields Stream's SDKs read are unchanged.
    for k in [
        "id",
        "provider",
        "type",
        "agora",
        "hms",
        "created_at",
        "created_by",
    ] {
        assert_eq!(call[k], created["call"][k], "{k}");
    }
    // Agora without RESTful credentials: said in the answer.
    assert_eq!(ended["participants_removed"], false);
    assert!(ended["note"].as_str().unwrap().contains("stay valid"));
    assert!(secs(&ended["tokens_valid_until"]) > now());

    // Ending again: the same state, one read, nothing written.
    let (status, again) = invoke(&app, Operation::EndCall, event("end-call-admin")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["call"], ended["call"]);
    assert_eq!(log.take(), vec!["GetItem"]);

    let (status, body) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
    assert_eq!(status, 404);
    let msg = assert_stream_error(&body, 404, 16);
    assert_eq!(
        msg,
        "GetCallToken failed with error: \"call \"standup\" has ended\""
    );
    assert_eq!(log.take(), vec!["GetItem"]);

    // The id is created again as a new call: one put, as for any new call.
    let (status, again) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(log.take(), vec!["PutItem"]);
    assert_eq!(again["call"]["state"], "active");
    assert_eq!(again["call"]["ended_at"], Value::Null);
    let (status, _) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
    assert_eq!(status, 201);
    assert_eq!(log.take(), vec!["GetItem"]);
    let item = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("standup".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    assert!(
        !item.contains_key("ended_at"),
        "the new call replaced the ended one: {item:?}"
    );
}

#[tokio::test]
async fn bad_end_calls_are_refused_and_write_nothing() {
    let (store, _client, log) = fresh_dynamo_store().await;
    let app = Callbridge::new(config(), store);
    let (status, _) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201);
    log.take();
    for (name, status, code, needle) in [
        (
            "end-call-unknown",
            404,
            16,
            "call \"no-such-call\" does not exist",
        ),
        ("end-call-forbidden-role", 403, 17, "end-call"),
        ("end-call-reason-too-long", 400, 4, "longer than 255"),
        (
            "end-call-reason-not-string",
            400,
            4,
            "reason must be a string",
        ),
        ("end-call-bad-id", 400, 4, "id"),
        ("end-call-expired-token", 401, 40, "expired"),
    ] {
        let (s, body) = invoke(&app, Operation::EndCall, event(name)).await;
        assert_eq!(s, status, "{name}: {body}");
        let msg = assert_stream_error(&body, status, code);
        assert!(msg.starts_with("EndCall failed with error: "), "{msg}");
        assert!(msg.contains(needle), "{name}: {msg}");
    }
    // Another user (role user, not the creator) may not end alice's call.
    let (s, body) = invoke(
        &app,
        Operation::EndCall,
        as_user("end-call", "mallory", "user", None),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert_eq!(
        log.take().iter().filter(|op| *op != "GetItem").count(),
        0,
        "no write for any refusal"
    );
    let (status, body) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
    assert_eq!(status, 201, "still active: {body}");
    // A server token acting for a user may end any call.
    let (status, body) = invoke(&app, Operation::EndCall, event("end-call-server-token")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["call"]["ended_by"], "carol");
    assert_eq!(body["call"]["ended_reason"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_end_calls_write_one_state_and_answer_alike() {
    let (store, _client, log) = fresh_dynamo_store().await;
    let app = Arc::new(Callbridge::new(config(), store));
    let (status, _) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201);
    log.take();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let app = Arc::clone(&app);
        let name = if i % 2 == 0 {
            "end-call"
        } else {
            "end-call-admin"
        };
        tasks.push(tokio::spawn(async move {
            invoke(&app, Operation::EndCall, event(name)).await
        }));
    }
    let mut calls = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        calls.push(body);
    }
    for c in &calls {
        assert_eq!(c["call"], calls[0]["call"]);
        assert_eq!(c["participants_removed"], calls[0]["participants_removed"]);
        assert_eq!(c["tokens_valid_until"], calls[0]["tokens_valid_until"]);
    }
    let ops = log.take();
    let updates = ops.iter().filter(|o| *o == "UpdateItem").count();
    assert!(updates >= 1, "{ops:?}");
    // Each UpdateItem is a conditional write: only the first can have succeeded, and every
    // answer shows that one.
    let by = calls[0]["call"]["ended_by"].as_str().unwrap();
    assert!(by == "alice" || by == "bob", "{by}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_token_after_the_end_is_recorded_and_creates_never_answer_an_ended_call() {
    let (store, _client, _log) = fresh_dynamo_store().await;
    let app = Arc::new(Callbridge::new(config(), store));
    for round in 0..5 {
        let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
        assert_eq!(status, 201, "round {round}: {body}");
        let mut tasks = Vec::new();
        for i in 0..8 {
            let app = Arc::clone(&app);
            tasks.push(tokio::spawn(async move {
                let (op, name) = match i % 3 {
                    0 => (Operation::GetCallToken, "get-call-token"),
                    1 => (Operation::CreateCall, "create-call"),
                    _ => (Operation::EndCall, "end-call-admin"),
                };
                (op, invoke(&app, op, event(name)).await)
            }));
        }
        for t in tasks {
            let (op, (status, body)) = t.await.unwrap();
            match op {
                Operation::CreateCall => {
                    assert_eq!(status, 201, "{body}");
                    assert_eq!(body["call"]["state"], "active", "{body}");
                }
                Operation::GetCallToken => assert!(status == 201 || status == 404, "{body}"),
                Operation::EndCall => assert_eq!(status, 200, "{body}"),
                Operation::ProviderEvent => unreachable!("not sent here"),
            }
        }
        // Once an End Call has answered, the call it ended gives no token.
        let (status, ended) = invoke(&app, Operation::EndCall, event("end-call-admin")).await;
        assert_eq!(status, 200, "{ended}");
        let (status, body) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
        assert_eq!(status, 404, "{body}");
        assert!(body["message"].as_str().unwrap().contains("has ended"));
    }
}

#[tokio::test]
async fn dynamodb_failures_on_end_are_honest() {
    // Nothing reachable: the read fails, nothing was changed.
    let (client, _) = dynamo_client("http://127.0.0.1:9");
    let app = Callbridge::new(
        config(),
        callbridge::store::dynamodb::DynamoStore::new(client, "t"),
    );
    let (status, body) = invoke(&app, Operation::EndCall, event("end-call")).await;
    assert_eq!(status, 503, "{body}");
    let msg = assert_stream_error(&body, 503, -1);
    assert!(msg.contains("nothing was changed"), "{msg}");

    // The read works, the write is refused by a failing server: the outcome is unknown.
    let server = MockServer::start().await;
    let (store, _, _) = fresh_dynamo_store().await;
    let app = Callbridge::new(config(), store);
    let (status, created) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201);
    let item = json!({"Item": {
        "pk": {"S": "standup"}, "cid": {"S": "messaging:general"}, "call_type": {"S": "video"},
        "provider": {"S": "agora"}, "agora_channel": {"S": "standup"},
        "created_by": {"S": "alice"}, "created_at": {"N": now().to_string()},
        "expires_at": {"N": (now() + 3600).to_string()}
    }});
    Mock::given(method("POST"))
        .and(wiremock::matchers::header(
            "x-amz-target",
            "DynamoDB_20120810.GetItem",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(item.to_string(), "application/x-amz-json-1.0"),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::header(
            "x-amz-target",
            "DynamoDB_20120810.UpdateItem",
        ))
        .respond_with(ResponseTemplate::new(500).set_body_raw(
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"boom"}"#,
            "application/x-amz-json-1.0",
        ))
        .mount(&server)
        .await;
    let (client, _) = dynamo_client(&server.uri());
    let app = Callbridge::new(
        config(),
        callbridge::store::dynamodb::DynamoStore::new(client, "t"),
    );
    let (status, body) = invoke(&app, Operation::EndCall, event("end-call")).await;
    assert_eq!(status, 503, "{body}");
    let msg = assert_stream_error(&body, 503, -1);
    assert!(msg.contains("may or may not be recorded as ended"), "{msg}");
    assert!(msg.contains("repeating the same request is safe"), "{msg}");
    assert_eq!(created["call"]["state"], "active");
}

fn hms_app(
    base: &str,
    store: Arc<MemoryStore>,
    extra: &[(&str, &str)],
) -> Callbridge<Arc<MemoryStore>> {
    let hms_base = format!("{base}/v2");
    let mut vars = vec![
        ("CALLBRIDGE_PROVIDER", "hms"),
        ("HMS_APP_ACCESS_KEY", "6470b7a5e3f47d5e9a1c0f11"),
        ("HMS_APP_SECRET", HMS_SECRET),
        ("HMS_TEMPLATE_ID", "tmpl-default"),
        ("HMS_DEFAULT_ROLE", "guest"),
        ("HMS_API_BASE_URL", hms_base.as_str()),
    ];
    vars.extend_from_slice(extra);
    Callbridge::new(config_with(&vars), store)
}

async fn mount_room(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v2/rooms"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": ROOM_ID, "name": "standup", "enabled": true, "template_id": "tmpl-default"
        })))
        .mount(server)
        .await;
}

fn end_room_requests(reqs: &[Request]) -> Vec<&Request> {
    let p = format!("/v2/active-rooms/{ROOM_ID}/end-room");
    reqs.iter().filter(|r| r.url.path() == p).collect()
}

#[tokio::test]
async fn hms_ends_the_session_and_failures_are_retried_by_a_repeat() {
    for failure in ["5xx", "timeout", "none"] {
        let server = MockServer::start().await;
        mount_room(&server).await;
        let answer = match failure {
            "5xx" => ResponseTemplate::new(503).set_body_string("unavailable"),
            "timeout" => ResponseTemplate::new(200).set_delay(Duration::from_secs(3)),
            _ => ResponseTemplate::new(200).set_body_json(json!({"message": "session is ending"})),
        };
        Mock::given(method("POST"))
            .and(path(format!("/v2/active-rooms/{ROOM_ID}/end-room")))
            .respond_with(answer)
            .up_to_n_times(2)
            .mount(&server)
            .await;
        // After two failed attempts 100ms has no active session any more (404).
        Mock::given(method("POST"))
            .and(path(format!("/v2/active-rooms/{ROOM_ID}/end-room")))
            .respond_with(
                ResponseTemplate::new(404).set_body_json(json!({"message": "room not active"})),
            )
            .mount(&server)
            .await;
        let store = Arc::new(MemoryStore::new());
        let app = hms_app(&server.uri(), Arc::clone(&store), &[]);
        let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = invoke(&app, Operation::EndCall, event("end-call")).await;
        let reqs = server.received_requests().await.unwrap();
        let ends = end_room_requests(&reqs);
        if failure == "none" {
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["participants_removed"], true);
            assert_eq!(ends.len(), 1);
        } else {
            assert_eq!(status, 502, "{failure}: {body}");
            let msg = assert_stream_error(&body, 502, -1);
            assert!(
                msg.contains("is ended and no new tokens are issued"),
                "{msg}"
            );
            assert!(msg.contains("100ms"), "{msg}");
            assert!(msg.contains("repeating the same request retries"), "{msg}");
            assert!(!msg.contains(HMS_SECRET));
            assert_eq!(ends.len(), 2, "{failure}: one attempt and one retry");
            // Recorded as ended all the same: no token.
            let (status, _) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
            assert_eq!(status, 404);
            // Repeating retries the provider part: 100ms now has no session, which is success.
            let (status, again) = invoke(&app, Operation::EndCall, event("end-call")).await;
            assert_eq!(status, 200, "{failure}: {again}");
            assert_eq!(again["participants_removed"], true);
            let reqs = server.received_requests().await.unwrap();
            assert_eq!(end_room_requests(&reqs).len(), 3);
        }
        let req = end_room_requests(&reqs)[0];
        let sent: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(sent, json!({"reason": "standup is over", "lock": false}));
        assert!(
            req.headers["authorization"]
                .to_str()
                .unwrap()
                .starts_with("Bearer ")
        );
        // Done once: a further End Call does not ask 100ms again.
        let before = end_room_requests(&server.received_requests().await.unwrap()).len();
        let (status, _) = invoke(&app, Operation::EndCall, event("end-call")).await;
        assert_eq!(status, 200);
        assert_eq!(
            end_room_requests(&server.received_requests().await.unwrap()).len(),
            before
        );
        // The id is created again: the room (never locked) is asked for again, by name.
        let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["call"]["state"], "active");
        let rooms = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == "/v2/rooms")
            .count();
        assert_eq!(rooms, 2, "{failure}");
        let id = CallId::parse("standup").unwrap();
        assert!(
            store
                .get(&id, now())
                .await
                .unwrap()
                .unwrap()
                .ended
                .is_none()
        );
    }
}

#[tokio::test]
async fn hms_rooms_get_the_time_limit_and_tokens_end_with_it() {
    let server = MockServer::start().await;
    mount_room(&server).await;
    let app = hms_app(
        &server.uri(),
        Arc::new(MemoryStore::new()),
        &[("CALLBRIDGE_MAX_CALL_SECONDS", "600")],
    );
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    let reqs = server.received_requests().await.unwrap();
    let sent: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(sent["max_duration_seconds"], 600, "{sent}");
    let ends_at = secs(&body["call"]["ends_at"]);
    assert_eq!(ends_at, secs(&body["call"]["created_at"]) + 600);
    let claims: Value = {
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.validate_exp = false;
        jsonwebtoken::decode::<Value>(
            body["token"].as_str().unwrap(),
            &jsonwebtoken::DecodingKey::from_secret(HMS_SECRET.as_bytes()).unwrap(),
            &v,
        )
        .unwrap()
        .claims
    };
    assert!(
        claims["exp"].as_u64().unwrap() <= ends_at,
        "{claims} {ends_at}"
    );
    // A limit 100ms would refuse: 400, naming the range, and 100ms is not asked.
    let (status, body) = invoke(
        &app,
        Operation::CreateCall,
        with_body(
            "create-call",
            r#"{"id":"other","type":"video","options":{"max_duration_seconds":100}}"#,
        ),
    )
    .await;
    assert_eq!(status, 400);
    assert!(assert_stream_error(&body, 400, 4).contains("120 to 43200"));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

fn agora_app(base: &str, store: Arc<MemoryStore>) -> Callbridge<Arc<MemoryStore>> {
    Callbridge::new(
        config_with(&[
            ("AGORA_CUSTOMER_ID", "customer-1"),
            ("AGORA_CUSTOMER_SECRET", CUSTOMER_SECRET),
            ("AGORA_API_BASE_URL", base),
        ]),
        store,
    )
}

/// Agora's kicking-rule endpoint answering `verb` with `answer`: only the first `times`
/// requests when given, else every one that reaches it.
async fn rule_answer(
    server: &MockServer,
    verb: &str,
    answer: ResponseTemplate,
    times: Option<u64>,
) {
    let mock = Mock::given(method(verb))
        .and(path("/dev/v1/kicking-rule"))
        .respond_with(answer);
    match times {
        Some(n) => mock.up_to_n_times(n).mount(server).await,
        None => mock.mount(server).await,
    }
}

/// Agora's answer to a created or deleted rule.
fn rule_made(id: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"status": "success", "id": id}))
}

fn rule_requests(reqs: &[Request], m: &str) -> Vec<Value> {
    reqs.iter()
        .filter(|r| r.url.path() == "/dev/v1/kicking-rule" && r.method.as_str() == m)
        .map(|r| {
            let basic = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("customer-1:{CUSTOMER_SECRET}"),
            );
            assert_eq!(
                r.headers["authorization"],
                format!("Basic {basic}").as_str()
            );
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn agora_removes_everyone_with_a_kicking_rule_deleted_when_the_id_returns() {
    for failure in ["401", "5xx", "none"] {
        let server = MockServer::start().await;
        let answer = match failure {
            "401" => ResponseTemplate::new(401).set_body_string("invalid credentials"),
            "5xx" => ResponseTemplate::new(500).set_body_string("boom"),
            _ => rule_made(1953),
        };
        let failing = if failure == "401" { 1 } else { 2 };
        rule_answer(&server, "POST", answer, Some(failing)).await;
        rule_answer(&server, "POST", rule_made(1953), None).await;
        rule_answer(&server, "DELETE", rule_made(1953), None).await;
        let store = Arc::new(MemoryStore::new());
        let app = agora_app(&server.uri(), Arc::clone(&store));
        let (status, created) = invoke(&app, Operation::CreateCall, event("create-call")).await;
        assert_eq!(status, 201, "{created}");
        let (status, body) = invoke(&app, Operation::EndCall, event("end-call")).await;
        if failure != "none" {
            assert_eq!(status, 502, "{failure}: {body}");
            let msg = assert_stream_error(&body, 502, -1);
            assert!(msg.contains("Agora"), "{msg}");
            assert!(
                msg.contains("is ended and no new tokens are issued"),
                "{msg}"
            );
            assert!(!msg.contains(CUSTOMER_SECRET));
            let (status, _) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
            assert_eq!(status, 404, "ended all the same");
            let (status, again) = invoke(&app, Operation::EndCall, event("end-call")).await;
            assert_eq!(status, 200, "{failure}: the repeat retries: {again}");
        } else {
            assert_eq!(status, 200, "{body}");
        }
        let (_, body) = invoke(&app, Operation::EndCall, event("end-call")).await;
        assert_eq!(body["participants_removed"], true, "{body}");
        assert!(body.get("tokens_valid_until").is_none());
        let reqs = server.received_requests().await.unwrap();
        let posted = rule_requests(&reqs, "POST");
        let rule = posted.last().unwrap();
        assert_eq!(rule["appid"], AGORA_APP_ID);
        assert_eq!(rule["cname"], "standup");
        assert_eq!(rule["privileges"], json!(["join_channel"]));
        // No longer than the longest token Callbridge could have issued (3600 s).
        let secs = rule["time_in_seconds"].as_u64().unwrap();
        assert!((3590..=3600).contains(&secs), "{secs}");
        assert!(rule_requests(&reqs, "DELETE").is_empty());

        // The same id again: the rule goes first, then the call is answered.
        let (status, again) = invoke(&app, Operation::CreateCall, event("create-call")).await;
        assert_eq!(status, 201, "{again}");
        assert_eq!(again["call"]["state"], "active");
        let reqs = server.received_requests().await.unwrap();
        assert_eq!(
            rule_requests(&reqs, "DELETE"),
            vec![json!({"appid": AGORA_APP_ID, "id": 1953})]
        );
    }
}

#[tokio::test]
async fn a_rule_that_cannot_be_deleted_is_retried_by_the_next_create() {
    let server = MockServer::start().await;
    rule_answer(&server, "POST", rule_made(77), None).await;
    rule_answer(&server, "DELETE", ResponseTemplate::new(503), Some(2)).await;
    rule_answer(&server, "DELETE", rule_made(77), None).await;
    let store = Arc::new(MemoryStore::new());
    let app = agora_app(&server.uri(), Arc::clone(&store));
    invoke(&app, Operation::CreateCall, event("create-call")).await;
    let (status, _) = invoke(&app, Operation::EndCall, event("end-call")).await;
    assert_eq!(status, 200);
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 502, "{body}");
    let msg = assert_stream_error(&body, 502, -1);
    assert!(
        msg.contains("the call exists, but Agora still keeps everyone out"),
        "{msg}"
    );
    let id = CallId::parse("standup").unwrap();
    let stored = store.get(&id, now()).await.unwrap().unwrap();
    assert_eq!(stored.stale_kick_rule.map(|r| r.id), Some(77));
    assert!(stored.ended.is_none(), "the new call exists");
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        store
            .get(&id, now())
            .await
            .unwrap()
            .unwrap()
            .stale_kick_rule,
        None
    );
    let deletes = rule_requests(&server.received_requests().await.unwrap(), "DELETE").len();
    assert_eq!(
        deletes, 3,
        "two failed attempts, then the retry of the repeat"
    );
    // Done: no more deletes.
    invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(
        rule_requests(&server.received_requests().await.unwrap(), "DELETE").len(),
        3
    );
}

fn notify_app(base: &str, mode: &str, store: Arc<MemoryStore>) -> Callbridge<Arc<MemoryStore>> {
    Callbridge::new(
        config_with(&[("CALLBRIDGE_NOTIFY", mode), ("STREAM_API_BASE_URL", base)]),
        store,
    )
}

#[tokio::test]
async fn the_channel_is_told_once_in_each_mode_and_a_failure_is_completed_by_a_repeat() {
    for mode in ["message", "event", "channel"] {
        let server = MockServer::start().await;
        let ok = ResponseTemplate::new(201).set_body_json(json!({"duration": "1.00ms"}));
        // Creation: accepted.
        Mock::given(method("POST"))
            .and(path("/channels/messaging/general/message"))
            .respond_with(ok.clone())
            .mount(&server)
            .await;
        let (end_method, end_path) = match mode {
            "message" => ("PUT", "/messages/".to_string()),
            "event" => ("POST", "/channels/messaging/general/event".to_string()),
            _ => ("PATCH", "/channels/messaging/general".to_string()),
        };
        // The end: Stream fails twice (one request and its retry), then accepts.
        let matches_end = {
            let (m, p) = (end_method, end_path.clone());
            move |r: &Request| {
                r.method.as_str() == m
                    && r.url.path().starts_with(&p)
                    && String::from_utf8_lossy(&r.body).contains(r#""state":"ended""#)
            }
        };
        Mock::given(matches_end.clone())
            .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        Mock::given(matches_end.clone())
            .respond_with(ok.clone())
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ok.clone())
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .respond_with(ok)
            .mount(&server)
            .await;

        let store = Arc::new(MemoryStore::new());
        let app = notify_app(&server.uri(), mode, Arc::clone(&store));
        let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
        assert_eq!(status, 201, "{mode}: {body}");
        let (status, body) = invoke(&app, Operation::EndCall, event("end-call")).await;
        assert_eq!(status, 502, "{mode}: {body}");
        let msg = assert_stream_error(&body, 502, -1);
        assert!(msg.contains("is ended and no new tokens are issued for it, but its channel was not told that it ended"), "{msg}");
        let id = CallId::parse("standup").unwrap();
        let stored = store.get(&id, now()).await.unwrap().unwrap();
        assert!(stored.ended.as_ref().unwrap().announce_pending);
        let (status, body) = invoke(&app, Operation::EndCall, event("end-call")).await;
        assert_eq!(status, 200, "{mode}: {body}");
        let (status, _) = invoke(&app, Operation::EndCall, event("end-call")).await;
        assert_eq!(status, 200);
        let reqs = server.received_requests().await.unwrap();
        let ends: Vec<&Request> = reqs.iter().filter(|r| matches_end(r)).collect();
        assert_eq!(
            ends.len(),
            3,
            "{mode}: two failures, then one success, then nothing"
        );
        let sent: Value = serde_json::from_slice(&ends[2].body).unwrap();
        assert_server_token(ends[2].headers["authorization"].to_str().unwrap());
        let call = match mode {
            "message" => {
                assert!(
                    ends[2].url.path().starts_with("/messages/callbridge-"),
                    "{}",
                    ends[2].url
                );
                assert_eq!(sent["user"], json!({"id": "alice"}));
                let attachments = sent["set"]["attachments"].as_array().unwrap();
                assert_eq!(attachments.len(), 1);
                assert_eq!(attachments[0]["type"], "call");
                attachments[0]["call"].clone()
            }
            "event" => {
                assert_eq!(sent["event"]["type"], "call.ended");
                assert_eq!(sent["event"]["user_id"], "alice");
                sent["event"]["call"].clone()
            }
            _ => sent["set"]["call"].clone(),
        };
        assert_eq!(call["state"], "ended", "{mode}: {sent}");
        assert_eq!(call["ended_reason"], "standup is over");
        assert_eq!(call["id"], "standup");
    }
}

/// The rules of Stream's old client models (stream-chat-android `VideoCallDtos.kt`, Swift
/// `CallPayloads.swift`, Flutter `call_payload.dart`; see the README's Clients section): the
/// fields each required keep their types whatever the call's state.
fn assert_old_models_parse(call: &Value) {
    for k in ["id", "provider", "type"] {
        assert!(call[k].is_string(), "{k} in {call}");
    }
    assert!(
        call["agora"].is_object() && call["hms"].is_object(),
        "{call}"
    );
    assert!(call["agora"]["channel"].is_string(), "{call}");
    assert!(call["hms"]["room_id"].is_string(), "{call}");
    assert!(call["hms"]["room_name"].is_string(), "{call}");
}

#[tokio::test]
async fn the_call_object_still_parses_under_the_old_models_in_every_state() {
    let server = MockServer::start().await;
    mount_room(&server).await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/active-rooms/{ROOM_ID}/end-room")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"message": "session is ending"})),
        )
        .mount(&server)
        .await;
    let agora = Callbridge::new(config(), Arc::new(MemoryStore::new()));
    let hms = hms_app(&server.uri(), Arc::new(MemoryStore::new()), &[]);
    for app in [&agora, &hms] {
        let limited = with_body(
            "create-call",
            r#"{"id":"Standup","type":"video","options":{"max_duration_seconds":3600}}"#,
        );
        let (status, created) = invoke(app, Operation::CreateCall, limited).await;
        assert_eq!(status, 201, "{created}");
        assert_old_models_parse(&created["call"]);
        if let Some(uid) = created.get("agora_uid") {
            let uid = uid.as_i64().unwrap();
            assert!(
                (1..=i64::from(i32::MAX)).contains(&uid),
                "Android's Int: {uid}"
            );
        }
        let (status, ended) = invoke(app, Operation::EndCall, event("end-call")).await;
        assert_eq!(status, 200, "{ended}");
        assert_old_models_parse(&ended["call"]);
        assert_eq!(ended["call"]["state"], "ended");
        assert!(secs(&ended["call"]["ends_at"]) > secs(&ended["call"]["ended_at"]));
    }
}
