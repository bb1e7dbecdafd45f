//! Provider events through the handlers: 100ms webhooks and Agora NCS events, authenticated,
//! applied to their calls on the memory store and on DynamoDB (moto), duplicated, reordered,
//! for rooms that are not calls, and the channel told once per session transition while Stream
//! Chat (a local wiremock) fails and recovers.
//!
//! Event bodies follow the providers' documented payloads: 100ms
//! `docs/server-side/v2/how-to-guides/configure-webhooks/webhook.md` (100mslive/100ms-docs:
//! session.open.success, session.close.success, peer.join.success, peer.leave.success,
//! room.end.success); Agora `shared/notification-center-service/*` (AgoraIO/Docs-Source: RTC
//! channel events 101 to 108, envelope noticeId, productId, eventType, notifyMs, payload). The
//! Agora signatures are computed here with an HMAC of the test's own making over the raw body,
//! checked against a vector made with Python's hmac module in shared/src/providers/events.rs.

use callbridge::domain::CallId;
use callbridge::store::CallReader;
use callbridge::store::memory::MemoryStore;
use callbridge::{Callbridge, Operation};
use callbridge_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const HOOK_SECRET: &str = "hms-hook-secret-value";
const NCS_SECRET: &str = "agora-ncs-secret-value";
const ROOM_ID: &str = "6470b7a5e3f47d5e9a1c0f22";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A webhook request as API Gateway delivers it: no Stream credentials, the provider's headers.
fn webhook(route: &str, body: &str, headers: &[(&str, &str)]) -> HttpEvent {
    event_edited("get-call-token", |v| {
        v["rawPath"] = json!(route);
        v["routeKey"] = json!(format!("POST {route}"));
        v["requestContext"]["http"]["path"] = json!(route);
        v["pathParameters"] = Value::Null;
        v["rawQueryString"] = json!("");
        v["queryStringParameters"] = Value::Null;
        let h = v["headers"].as_object_mut().unwrap();
        h.clear();
        h.insert("content-type".into(), json!("application/json"));
        for (k, val) in headers {
            h.insert(k.to_string(), json!(val));
        }
        v["body"] = json!(body);
    })
}

/// Lowercase hex HMAC-SHA256 of `body` with `secret`, computed by the test (aws-lc-rs's HMAC,
/// not the code under test).
fn sign(secret: &str, body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    aws_lc_rs::hmac::sign(&key, body.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn agora(body: &str) -> HttpEvent {
    webhook(
        "/webhooks/agora",
        body,
        &[("agora-signature-v2", &sign(NCS_SECRET, body))],
    )
}

fn hms(body: &str) -> HttpEvent {
    webhook(
        "/webhooks/100ms",
        body,
        &[("x-callbridge-webhook-secret", HOOK_SECRET)],
    )
}

/// An Agora NCS event for channel `standup`, `ts` seconds after `base`.
fn ncs(notice: &str, event_type: u64, base: u64, ts: u64, uid: u64, seq: u64) -> String {
    let payload = match event_type {
        101 => json!({"channelName": "standup", "ts": base + ts}),
        102 => json!({"channelName": "standup", "ts": base + ts, "lastUid": uid}),
        _ => json!({"channelName": "standup", "uid": uid, "platform": 1, "clientSeq": seq,
                    "ts": base + ts, "reason": 1, "duration": 30}),
    };
    json!({"noticeId": notice, "productId": 1, "eventType": event_type,
           "notifyMs": (base + ts) * 1000 + 7, "sid": "8A9C1B4E", "payload": payload})
    .to_string()
}

/// A 100ms webhook for room `standup`, at `secs` after `base` (Unix seconds).
fn hook(id: &str, kind: &str, base: u64, secs: u64, peer: Option<&str>) -> String {
    let at = |s: u64| {
        let t = time_rfc3339(base + s);
        t.replace('Z', ".123456789Z")
    };
    let mut data = json!({
        "room_id": ROOM_ID, "room_name": "standup", "session_id": "610f81ee870dde099a249948",
        "template_id": "66112497abcd52312556c4gg", "session_started_at": at(0)
    });
    match kind {
        "peer.join.success" => {
            data["peer_id"] = json!(peer.unwrap());
            data["joined_at"] = json!(at(secs));
            data["user_id"] = json!("user.001");
            data["role"] = json!("host");
        }
        "peer.leave.success" => {
            data["peer_id"] = json!(peer.unwrap());
            data["left_at"] = json!(at(secs));
            data["reason"] = json!("client request");
            data["duration"] = json!(secs);
        }
        "session.close.success" => {
            data["session_stopped_at"] = json!(at(secs));
            data["session_duration"] = json!(secs);
        }
        _ => {}
    }
    json!({"version": "2.0", "id": id, "account_id": "60b8e13a6eb86d8101b57354",
           "app_id": "5ff5881b80b66969e1fb35f6", "timestamp": time_rfc3339(base + secs),
           "type": kind, "data": data})
    .to_string()
}

fn time_rfc3339(secs: u64) -> String {
    // Days to civil (Howard Hinnant's algorithm), for the test's own timestamps.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn agora_app(store: Arc<MemoryStore>, extra: &[(&str, &str)]) -> Callbridge<Arc<MemoryStore>> {
    let mut vars = vec![("AGORA_NCS_SECRET", NCS_SECRET)];
    vars.extend_from_slice(extra);
    Callbridge::new(config_with(&vars), store)
}

async fn session(store: &MemoryStore, app_now: u64) -> Value {
    let call = store
        .get(&CallId::parse("standup").unwrap(), app_now)
        .await
        .unwrap()
        .expect("the call");
    serde_json::to_value(callbridge::call_view::CallView::of(&call, app_now)).unwrap()["session"]
        .clone()
}

#[test]
fn rfc3339_helper() {
    assert_eq!(time_rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
}

#[tokio::test]
async fn agora_events_are_authenticated_then_applied_in_any_order() {
    let store = Arc::new(MemoryStore::new());
    let app = agora_app(Arc::clone(&store), &[]);
    let (status, _) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201);
    let base = now_ms() / 1000;
    let events = [
        ncs("n1", 101, base, 1, 0, 0),
        ncs("n2", 107, base, 1, 735_577_802, 1),
        ncs("n3", 103, base, 2, 42, 1),
        ncs("n4", 105, base, 3, 43, 1),
        ncs("n5", 108, base, 4, 735_577_802, 2),
        ncs("n6", 104, base, 5, 42, 2),
        ncs("n7", 106, base, 6, 43, 2),
        ncs("n8", 102, base, 6, 43, 0),
    ];
    // Signatures: missing, wrong, of another body, with another secret: 401 and no change.
    let body = &events[0];
    for (name, req) in [
        ("no signature", webhook("/webhooks/agora", body, &[])),
        (
            "bad signature",
            webhook(
                "/webhooks/agora",
                body,
                &[("agora-signature-v2", &"0".repeat(64))],
            ),
        ),
        (
            "another body",
            webhook(
                "/webhooks/agora",
                body,
                &[("agora-signature-v2", &sign(NCS_SECRET, &events[1]))],
            ),
        ),
        (
            "another secret",
            webhook(
                "/webhooks/agora",
                body,
                &[("agora-signature-v2", &sign("guess", body))],
            ),
        ),
        // Agora-Signature (HMAC-SHA1) alone is not accepted.
        (
            "v1 only",
            webhook("/webhooks/agora", body, &[("agora-signature", "abc")]),
        ),
    ] {
        let (status, answer) = invoke(&app, Operation::ProviderEvent, req).await;
        assert_eq!(status, 401, "{name}: {answer}");
        let msg = answer["message"].as_str().unwrap();
        assert!(
            msg.starts_with("ProviderEvent failed with error: "),
            "{msg}"
        );
        assert!(msg.contains("Agora-Signature-V2"), "{msg}");
        assert!(!msg.contains(NCS_SECRET));
    }
    assert_eq!(
        session(&store, base).await["sessions"],
        0,
        "nothing applied"
    );

    // In order: live with three people, then everyone leaves and the channel is destroyed.
    for (i, body) in events.iter().enumerate() {
        let (status, answer) = invoke(&app, Operation::ProviderEvent, agora(body)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["result"], "recorded", "{i}");
        if i == 3 {
            let s = session(&store, base + 4).await;
            assert_eq!(s["state"], "live");
            assert_eq!(s["participants"], 3);
        }
    }
    let in_order = session(&store, base + 10).await;
    assert_eq!(
        in_order,
        json!({"state": "idle", "started_at": time_rfc3339(base + 1), "ended_at": time_rfc3339(base + 6),
               "duration_seconds": 5, "participants": 0, "max_participants": 3, "sessions": 1})
    );
    // Each again: duplicates change nothing.
    for body in &events {
        let (_, answer) = invoke(&app, Operation::ProviderEvent, agora(body)).await;
        assert_eq!(answer["result"], "duplicate");
    }
    // Random orders with duplicates, on fresh calls: the same record.
    let mut rng = fastrand_like(7);
    for round in 0..5 {
        let store = Arc::new(MemoryStore::new());
        let app = agora_app(Arc::clone(&store), &[]);
        invoke(&app, Operation::CreateCall, event("create-call")).await;
        let mut order: Vec<&String> = events.iter().collect();
        order.extend(events.iter().take(3));
        shuffle(&mut order, &mut rng);
        for body in order {
            let (status, _) = invoke(&app, Operation::ProviderEvent, agora(body)).await;
            assert_eq!(status, 200);
        }
        assert_eq!(session(&store, base + 10).await, in_order, "round {round}");
    }
}

/// A small deterministic generator (xorshift) for the orders, seeded per test.
fn fastrand_like(seed: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

fn shuffle<T>(items: &mut [T], state: &mut u64) {
    for i in (1..items.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        items.swap(i, (*state % (i as u64 + 1)) as usize);
    }
}

#[tokio::test]
async fn events_for_other_rooms_and_channels_change_nothing() {
    let store = Arc::new(MemoryStore::new());
    let app = agora_app(Arc::clone(&store), &[]);
    invoke(&app, Operation::CreateCall, event("create-call")).await;
    let base = now_ms() / 1000;
    for (body, reason) in [
        (ncs("x1", 101, base, 1, 0, 0).replace("standup", "someone-elses"), "unknown_call"),
        (ncs("x2", 101, base, 1, 0, 0).replace("standup", "not a call id"), "not_a_call"),
        (ncs("x3", 111, base, 1, 5, 1), "untracked"),
        ("{not json".to_string(), "malformed"),
        (json!({"noticeId": "x4", "productId": 1, "eventType": 107, "payload": {"channelName": "standup"}}).to_string(), "malformed"),
        // Long before the call was created: an earlier call with this id.
        (ncs("x5", 101, base - 3600, 0, 0, 0), "before_this_call"),
    ] {
        let (status, answer) = invoke(&app, Operation::ProviderEvent, agora(&body)).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["result"], "ignored", "{body}");
        assert_eq!(answer["reason"], reason, "{body}");
    }
    assert_eq!(session(&store, base).await["sessions"], 0);
    // A 100ms event for an Agora call's id: another room.
    let app = Callbridge::new(
        config_with(&[("HMS_WEBHOOK_SECRET", HOOK_SECRET)]),
        Arc::clone(&store),
    );
    let (status, answer) = invoke(
        &app,
        Operation::ProviderEvent,
        hms(&hook("h1", "session.open.success", base, 0, None)),
    )
    .await;
    assert_eq!(
        (status, &answer["reason"]),
        (200, &json!("another_room")),
        "{answer}"
    );
    // Not configured: refused, whatever the body.
    let plain = Callbridge::new(config(), Arc::new(MemoryStore::new()));
    for req in [hms("{}"), agora("{}")] {
        let (status, answer) = invoke(&plain, Operation::ProviderEvent, req).await;
        assert_eq!(status, 401, "{answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("not accepted here")
        );
    }
}

async fn mount_room(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/v2/rooms"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": ROOM_ID, "name": "standup", "enabled": true
        })))
        .mount(server)
        .await;
}

#[tokio::test]
async fn hms_rooms_carry_the_webhook_and_its_events_build_the_session() {
    let server = MockServer::start().await;
    mount_room(&server).await;
    let hms_base = format!("{}/v2", server.uri());
    let store = Arc::new(MemoryStore::new());
    let app = Callbridge::new(
        config_with(&[
            ("CALLBRIDGE_PROVIDER", "hms"),
            ("HMS_APP_ACCESS_KEY", "6470b7a5e3f47d5e9a1c0f11"),
            ("HMS_APP_SECRET", "hms-app-secret"),
            ("HMS_TEMPLATE_ID", "tmpl"),
            ("HMS_DEFAULT_ROLE", "guest"),
            ("HMS_API_BASE_URL", &hms_base),
            ("HMS_WEBHOOK_SECRET", HOOK_SECRET),
            (
                "HMS_WEBHOOK_URL",
                "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/100ms",
            ),
        ]),
        Arc::clone(&store),
    );
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    let reqs = server.received_requests().await.unwrap();
    let sent: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(
        sent["webhook"],
        json!({"url": "https://abc.execute-api.us-east-1.amazonaws.com/webhooks/100ms",
               "headers": {"X-Callbridge-Webhook-Secret": HOOK_SECRET}})
    );

    let base = now_ms() / 1000;
    let events = [
        hook("e1", "session.open.success", base, 0, None),
        hook("e2", "peer.join.success", base, 1, Some("p1")),
        hook("e3", "peer.join.success", base, 2, Some("p2")),
        hook("e4", "peer.leave.success", base, 3, Some("p1")),
        hook("e5", "peer.leave.success", base, 4, Some("p2")),
        hook("e6", "session.close.success", base, 5, None),
        hook("e7", "room.end.success", base, 5, None),
    ];
    // The secret header: missing, wrong, or in the wrong header: 401.
    for req in [
        webhook("/webhooks/100ms", &events[0], &[]),
        webhook(
            "/webhooks/100ms",
            &events[0],
            &[("x-callbridge-webhook-secret", "guess")],
        ),
        webhook(
            "/webhooks/100ms",
            &events[0],
            &[("authorization", HOOK_SECRET)],
        ),
    ] {
        let (status, answer) = invoke(&app, Operation::ProviderEvent, req).await;
        assert_eq!(status, 401, "{answer}");
    }
    for (i, body) in events.iter().enumerate() {
        let (status, answer) = invoke(&app, Operation::ProviderEvent, hms(body)).await;
        assert_eq!(
            (status, answer["result"].as_str()),
            (200, Some("recorded")),
            "{i}: {answer}"
        );
        if i == 2 {
            let s = session(&store, base + 2).await;
            assert_eq!(
                (s["state"].as_str(), s["participants"].as_u64()),
                (Some("live"), Some(2))
            );
        }
    }
    let s = session(&store, base + 9).await;
    assert_eq!(s["state"], "idle");
    assert_eq!(s["max_participants"], 2);
    assert_eq!(s["duration_seconds"], 5);
    assert_eq!(s["sessions"], 1);
    // A replay (100ms's replay API re-sends with is_replay) is a duplicate.
    let replay = events[2].replace("\"version\"", "\"is_replay\":true,\"version\"");
    let (_, answer) = invoke(&app, Operation::ProviderEvent, hms(&replay)).await;
    assert_eq!(answer["result"], "duplicate");
    // Everyone reconnects: a new session of the same call.
    let again = [hook("f1", "session.open.success", base + 20, 0, None)
        .replace("610f81ee870dde099a249948", "610f81ee870dde099a249949")];
    let (_, answer) = invoke(&app, Operation::ProviderEvent, hms(&again[0])).await;
    assert_eq!(answer["result"], "recorded");
    let s = session(&store, base + 21).await;
    assert_eq!(
        (s["state"].as_str(), s["sessions"].as_u64()),
        (Some("live"), Some(2))
    );
    // After End Call, events still update the session record and nothing else.
    // (100ms's end-room is not mocked: wiremock's 404 reads as "no session running".)
    let ended = invoke(&app, Operation::EndCall, event("end-call")).await;
    assert_eq!(ended.0, 200, "{}", ended.1);
    let close = hook("f2", "session.close.success", base + 20, 3, None)
        .replace("610f81ee870dde099a249948", "610f81ee870dde099a249949");
    let (_, answer) = invoke(&app, Operation::ProviderEvent, hms(&close)).await;
    assert_eq!(answer["result"], "recorded");
    let call = store
        .get(&CallId::parse("standup").unwrap(), base + 30)
        .await
        .unwrap()
        .unwrap();
    assert!(call.ended.is_some());
    assert_eq!(call.media.record().sessions, 2);
    assert!(!call.media.record().live);
}

#[tokio::test]
async fn dynamodb_one_write_per_new_event_none_for_duplicates() {
    let (store, _client, log) = fresh_dynamo_store().await;
    let app = Callbridge::new(config_with(&[("AGORA_NCS_SECRET", NCS_SECRET)]), store);
    let (status, _) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201);
    log.take();
    let base = now_ms() / 1000;
    let events = [
        ncs("d1", 101, base, 1, 0, 0),
        ncs("d2", 107, base, 1, 5, 1),
        ncs("d3", 108, base, 2, 5, 2),
        ncs("d4", 102, base, 3, 5, 0),
    ];
    for body in &events {
        let (status, answer) = invoke(&app, Operation::ProviderEvent, agora(body)).await;
        assert_eq!(
            (status, answer["result"].as_str()),
            (200, Some("recorded")),
            "{answer}"
        );
        assert_eq!(log.take(), vec!["GetItem", "UpdateItem"]);
    }
    for body in events.iter().rev() {
        let (_, answer) = invoke(&app, Operation::ProviderEvent, agora(body)).await;
        assert_eq!(answer["result"], "duplicate");
        assert_eq!(log.take(), vec!["GetItem"], "no write for a duplicate");
    }
    // The record, read back from DynamoDB through Get Call Token's store path.
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    let s = &body["call"]["session"];
    assert_eq!(s["state"], "idle");
    assert_eq!(s["max_participants"], 1);
    assert_eq!(s["sessions"], 1);
}

#[tokio::test]
async fn the_channel_is_told_once_per_transition_and_stream_failures_are_retried() {
    let server = MockServer::start().await;
    let ok = ResponseTemplate::new(201).set_body_json(json!({"duration": "1.00ms"}));
    let started = |r: &Request| String::from_utf8_lossy(&r.body).contains("call.session_started");
    let ended = |r: &Request| String::from_utf8_lossy(&r.body).contains("call.session_ended");
    // Stream fails the first "started" twice (a request and its retry), then accepts.
    Mock::given(started)
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok)
        .mount(&server)
        .await;
    let store = Arc::new(MemoryStore::new());
    let app = agora_app(
        Arc::clone(&store),
        &[
            ("CALLBRIDGE_NOTIFY", "event"),
            ("STREAM_API_BASE_URL", &server.uri()),
        ],
    );
    let (status, _) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201);
    let base = now_ms() / 1000;
    let open = ncs("t1", 101, base, 1, 0, 0);
    let (status, answer) = invoke(&app, Operation::ProviderEvent, agora(&open)).await;
    assert_eq!(status, 502, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("its channel was not told that its session went live")
    );
    // Agora delivers it again: recorded already, and now told.
    let (status, answer) = invoke(&app, Operation::ProviderEvent, agora(&open)).await;
    assert_eq!(
        (status, answer["result"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );
    // Joins and leaves tell nothing.
    for body in [ncs("t2", 107, base, 2, 5, 1), ncs("t3", 108, base, 3, 5, 2)] {
        let (status, _) = invoke(&app, Operation::ProviderEvent, agora(&body)).await;
        assert_eq!(status, 200);
    }
    let close = ncs("t4", 102, base, 4, 5, 0);
    for _ in 0..2 {
        let (status, _) = invoke(&app, Operation::ProviderEvent, agora(&close)).await;
        assert_eq!(status, 200);
    }
    let reqs = server.received_requests().await.unwrap();
    let events: Vec<Value> = reqs
        .iter()
        .filter(|r| r.url.path() == "/channels/messaging/general/event")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "call.created",
            "call.session_started",
            "call.session_started",
            "call.session_started",
            "call.session_ended"
        ],
        "the created event, two failed attempts, then each transition once"
    );
    assert_eq!(reqs.iter().filter(|r| ended(r)).count(), 1);
    let last = &events.last().unwrap()["event"]["call"]["session"];
    assert_eq!(last["state"], "idle");
    assert_eq!(last["max_participants"], 1);
    assert_eq!(last["duration_seconds"], 3);
}

/// Concurrent deliveries of different events of one call: each is its own conditional write
/// of its own attribute, so none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_events_on_dynamodb_lose_no_update() {
    let (store, _client, log) = fresh_dynamo_store().await;
    let app = Arc::new(Callbridge::new(
        config_with(&[("AGORA_NCS_SECRET", NCS_SECRET)]),
        store,
    ));
    let (status, _) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201);
    log.take();
    let base = now_ms() / 1000;
    let mut bodies = vec![ncs("c0", 101, base, 1, 0, 0)];
    for i in 1..=12u64 {
        bodies.push(ncs(&format!("c{i}"), 107, base, 2, 100 + i, 1));
    }
    let tasks: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let app = Arc::clone(&app);
            tokio::spawn(async move { invoke(&app, Operation::ProviderEvent, agora(&body)).await })
        })
        .collect();
    for t in tasks {
        let (status, answer) = t.await.unwrap();
        assert_eq!(
            (status, answer["result"].as_str()),
            (200, Some("recorded")),
            "{answer}"
        );
    }
    assert_eq!(
        log.take().iter().filter(|op| *op == "UpdateItem").count(),
        13
    );
    let (_, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    let s = &body["call"]["session"];
    assert_eq!(
        (s["state"].as_str(), s["participants"].as_u64()),
        (Some("live"), Some(12)),
        "{s}"
    );
}

/// Out of order, each transition is still told once: a join before its channel's creation
/// tells nothing until the creation arrives; a destruction before the creation tells only the
/// end, and the late creation tells nothing more.
#[tokio::test]
async fn out_of_order_events_tell_each_transition_once() {
    let base = now_ms() / 1000;
    for (order, expected) in [
        (
            vec![
                ncs("o2", 107, base, 2, 5, 1),
                ncs("o1", 101, base, 1, 0, 0),
                ncs("o3", 108, base, 3, 5, 2),
                ncs("o4", 102, base, 4, 5, 0),
            ],
            vec!["call.created", "call.session_started", "call.session_ended"],
        ),
        (
            vec![
                ncs("p4", 102, base, 4, 5, 0),
                ncs("p2", 107, base, 2, 5, 1),
                ncs("p1", 101, base, 1, 0, 0),
                ncs("p3", 108, base, 3, 5, 2),
            ],
            vec!["call.created", "call.session_ended"],
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"duration": "1ms"})))
            .mount(&server)
            .await;
        let app = agora_app(
            Arc::new(MemoryStore::new()),
            &[
                ("CALLBRIDGE_NOTIFY", "event"),
                ("STREAM_API_BASE_URL", &server.uri()),
            ],
        );
        invoke(&app, Operation::CreateCall, event("create-call")).await;
        for body in &order {
            let (status, answer) = invoke(&app, Operation::ProviderEvent, agora(body)).await;
            assert_eq!(status, 200, "{answer}");
        }
        let kinds: Vec<String> = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r| {
                serde_json::from_slice::<Value>(&r.body).unwrap()["event"]["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(kinds, expected);
    }
}
