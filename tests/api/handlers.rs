//! Both functions driven by API Gateway v2 event fixtures through the Lambda adapter, on the
//! in-memory store: every success shape and every error code.

use callbridge::api::Clock;
use callbridge::store::memory::MemoryStore;
use callbridge::{Callbridge, Operation};
use callbridge_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn app() -> Callbridge<MemoryStore> {
    Callbridge::new(config(), MemoryStore::new())
}

async fn create(app: &Callbridge<MemoryStore>, name: &str) -> (u16, Value) {
    invoke(app, Operation::CreateCall, event(name)).await
}

async fn token(app: &Callbridge<MemoryStore>, name: &str) -> (u16, Value) {
    invoke(app, Operation::GetCallToken, event(name)).await
}

#[tokio::test]
async fn create_call_returns_the_call_and_a_token_for_the_caller() {
    let app = app();
    let (status, body) = create(&app, "create-call").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        stream_fields(&body["call"]),
        json!({"id":"standup","provider":"agora","type":"video",
               "agora":{"channel":"standup"},"hms":{"room_id":"","room_name":""}})
    );
    let call = body["call"].as_object().unwrap();
    assert_eq!(call["state"], "active");
    assert_eq!(call["created_by"], "alice");
    assert!(call["created_at"].as_str().unwrap().ends_with('Z'));
    for k in ["ended_at", "ended_by", "ended_reason"] {
        assert_eq!(call[k], Value::Null, "{k}");
    }
    assert!(!call.contains_key("ends_at"), "no time limit");
    assert_eq!(call.len(), 12, "{call:?}");
    assert_eq!(call["session"]["state"], "idle");
    let t = assert_agora_token(&body, "alice", "standup");
    assert_eq!(t.content.expire, 3600);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    assert!(t.content.issue_ts.abs_diff(now) < 5);
    assert_eq!(app.store().len(), 1);
}

#[tokio::test]
async fn existing_call_is_reused_with_a_fresh_token_for_each_caller() {
    let app = app();
    let (_, first) = create(&app, "create-call").await;
    // Same id, other case, other type, other user: the stored call wins.
    let req = event_edited("create-call", |v| {
        v["body"] = json!(r#"{"id":"STANDUP","type":"audio"}"#);
        v["headers"]["authorization"] = json!(user_token(json!({"user_id":"bob"})));
    });
    let (status, second) = invoke(&app, Operation::CreateCall, req).await;
    assert_eq!(status, 201);
    assert_eq!(second["call"], first["call"]);
    assert_agora_token(&second, "bob", "standup");
    assert_ne!(first["token"], second["token"]);
    assert_eq!(app.store().len(), 1);
}

#[tokio::test]
async fn a_call_of_another_channel_is_refused() {
    let app = app();
    assert_eq!(create(&app, "create-call").await.0, 201);
    let req = event_edited("create-call", |v| {
        v["pathParameters"]["id"] = json!("random");
        v["rawPath"] = json!("/channels/messaging/random/call");
    });
    let (status, body) = invoke(&app, Operation::CreateCall, req).await;
    assert_eq!(status, 403);
    let msg = assert_stream_error(&body, 403, 17);
    assert!(msg.contains("another channel"), "{msg}");
    assert!(body.get("token").is_none());
}

#[tokio::test]
async fn audio_calls_do_not_grant_video_publishing() {
    let app = app();
    let (status, body) = create(&app, "create-call-audio").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["call"]["id"], "call-messaging:general");
    assert_eq!(body["call"]["type"], "audio");
    let t = assert_agora_token(&body, "bob", "call-messaging:general");
    match &t.content.services[0] {
        callbridge::providers::access_token2::Service::Rtc { privileges, .. } => {
            assert_eq!(
                privileges.iter().map(|p| p.0).collect::<Vec<_>>(),
                vec![1, 2, 4]
            );
        }
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn missing_id_gets_a_generated_uuid() {
    let app = app();
    let (status, body) = create(&app, "create-call-no-id").await;
    assert_eq!(status, 201, "{body}");
    let id = body["call"]["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(id, id.to_lowercase());
    assert_eq!(body["call"]["agora"]["channel"], id);
}

#[tokio::test]
async fn server_tokens_act_for_the_user_in_the_body() {
    let app = app();
    let (status, body) = create(&app, "create-call-server-token").await;
    assert_eq!(status, 201, "{body}");
    assert_agora_token(&body, "carol", "standup");
    let (status, body) = token(&app, "get-call-token-server-token").await;
    assert_eq!(status, 201, "{body}");
    assert_agora_token(&body, "carol", "standup");
    let (status, body) = create(&app, "create-call-server-no-user").await;
    assert_eq!(status, 400);
    assert!(assert_stream_error(&body, 400, 4).contains("user_id"));
}

#[tokio::test]
async fn base64_bodies_are_decoded() {
    let app = app();
    let (status, body) = create(&app, "create-call-base64-body").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["call"]["id"], "standup");
}

#[tokio::test]
async fn get_call_token_accepts_every_client_body() {
    let app = app();
    assert_eq!(create(&app, "create-call").await.0, 201);
    for name in [
        "get-call-token",
        "get-call-token-no-body",
        "get-call-token-android",
        "get-call-token-odd-query",
    ] {
        let (status, body) = token(&app, name).await;
        assert_eq!(status, 201, "{name}: {body}");
        assert_agora_token(&body, "alice", "standup");
        assert!(body.get("call").is_none());
    }
}

#[tokio::test]
async fn percent_encoded_ids_are_decoded() {
    let app = app();
    assert_eq!(create(&app, "create-call-audio").await.0, 201);
    let (status, body) = token(&app, "get-call-token-encoded-id").await;
    assert_eq!(status, 201, "{body}");
    assert_agora_token(&body, "alice", "call-messaging:general");
    // Without pathParameters (function URL, cargo lambda watch) the raw path is used.
    let req = event_edited("get-call-token-encoded-id", |v| {
        v.as_object_mut().unwrap().remove("pathParameters");
    });
    let (status, body) = invoke(&app, Operation::GetCallToken, req).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn every_bad_input_gets_its_stream_error() {
    let cases: &[(&str, Operation, u16, i64, &str)] = &[
        (
            "create-call-bad-type",
            Operation::CreateCall,
            400,
            4,
            "type must be video or audio",
        ),
        (
            "create-call-missing-type",
            Operation::CreateCall,
            400,
            4,
            "type is required",
        ),
        (
            "create-call-bad-id",
            Operation::CreateCall,
            400,
            4,
            "allowed characters",
        ),
        (
            "create-call-long-id",
            Operation::CreateCall,
            400,
            4,
            "the limit is 64",
        ),
        (
            "create-call-id-not-string",
            Operation::CreateCall,
            400,
            4,
            "id must be a string",
        ),
        (
            "create-call-malformed-json",
            Operation::CreateCall,
            400,
            4,
            "not valid JSON",
        ),
        (
            "create-call-not-object",
            Operation::CreateCall,
            400,
            4,
            "must be a JSON object",
        ),
        (
            "create-call-empty-body",
            Operation::CreateCall,
            400,
            4,
            "body is required",
        ),
        (
            "create-call-non-utf8",
            Operation::CreateCall,
            400,
            4,
            "UTF-8",
        ),
        (
            "create-call-bad-channel",
            Operation::CreateCall,
            400,
            4,
            "channel id",
        ),
        (
            "create-call-no-token",
            Operation::CreateCall,
            401,
            5,
            "Authorization header is missing",
        ),
        (
            "create-call-garbled-token",
            Operation::CreateCall,
            401,
            5,
            "not a JWT",
        ),
        (
            "create-call-anonymous",
            Operation::CreateCall,
            401,
            5,
            "anonymous",
        ),
        (
            "create-call-no-api-key",
            Operation::CreateCall,
            401,
            2,
            "api_key",
        ),
        (
            "create-call-wrong-api-key",
            Operation::CreateCall,
            401,
            2,
            "api_key",
        ),
        (
            "create-call-odd-api-key",
            Operation::CreateCall,
            401,
            2,
            "api_key",
        ),
        (
            "create-call-expired-token",
            Operation::CreateCall,
            401,
            40,
            "expired",
        ),
        (
            "create-call-token-not-yet-valid",
            Operation::CreateCall,
            401,
            41,
            "not valid yet",
        ),
        (
            "create-call-token-issued-in-future",
            Operation::CreateCall,
            401,
            42,
            "issued in the future",
        ),
        (
            "create-call-bad-signature",
            Operation::CreateCall,
            401,
            43,
            "signature",
        ),
        (
            "create-call-alg-none",
            Operation::CreateCall,
            401,
            43,
            "algorithm \"none\"",
        ),
        (
            "create-call-forbidden-role",
            Operation::CreateCall,
            403,
            17,
            "create-call",
        ),
        (
            "get-call-token-unknown",
            Operation::GetCallToken,
            404,
            16,
            "does not exist",
        ),
        (
            "get-call-token-bad-id",
            Operation::GetCallToken,
            400,
            4,
            "allowed characters",
        ),
        (
            "get-call-token-not-object",
            Operation::GetCallToken,
            400,
            4,
            "JSON object",
        ),
        (
            "get-call-token-forbidden-role",
            Operation::GetCallToken,
            403,
            17,
            "join-call",
        ),
        (
            "get-call-token-expired-token",
            Operation::GetCallToken,
            401,
            40,
            "expired",
        ),
    ];
    let app = app();
    for (name, op, status, code, needle) in cases {
        let (s, body) = invoke(&app, *op, event(name)).await;
        assert_eq!(s, *status, "{name}: {body}");
        let msg = assert_stream_error(&body, *status, *code);
        assert!(msg.starts_with(op.name()), "{name}: {msg}");
        assert!(msg.contains(needle), "{name}: {msg:?} lacks {needle:?}");
    }
    assert!(app.store().is_empty(), "no error may write a call");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = app();
    let big = format!(
        r#"{{"id":"standup","type":"video","options":{{"pad":"{}"}}}}"#,
        "x".repeat(70_000)
    );
    let req = event_edited("create-call", |v| v["body"] = json!(big));
    let (status, body) = invoke(&app, Operation::CreateCall, req).await;
    assert_eq!(status, 413);
    assert_stream_error(&body, 413, 22);
    assert!(app.store().is_empty());
}

/// The create-call fixture with headers `x-h-0`.. added until it has `total` of them.
fn with_headers(total: usize, value: &str) -> callbridge_lambda::HttpEvent {
    event_edited("create-call", |v| {
        let headers = v["headers"].as_object_mut().unwrap();
        let mut i = 0;
        while headers.len() < total {
            headers.insert(format!("x-h-{i}"), json!(value));
            i += 1;
        }
    })
}

#[tokio::test]
async fn events_with_more_headers_than_api_gateway_sends_are_431() {
    let app = app();
    // 24,600 distinct names made http's HeaderMap panic (MaxSizeReached); with the release
    // profile's panic = "abort" that killed the function.
    for (total, value, what) in [
        (24_600, "v", "24,600 headers"),
        (
            callbridge_lambda::MAX_HEADERS + 1,
            "v",
            "one header over the count",
        ),
        (9, &"x".repeat(33 * 1024)[..], "33 KiB of header values"),
    ] {
        let (status, body) = invoke(&app, Operation::CreateCall, with_headers(total, value)).await;
        assert_eq!(status, 431, "{what}: {body}");
        let msg = assert_stream_error(&body, 431, 24);
        assert!(msg.starts_with("CreateCall"), "{msg}");
    }
    assert!(app.store().is_empty());
    // At the bound, answered as usual.
    let at_bound = with_headers(callbridge_lambda::MAX_HEADERS, "v");
    let (status, body) = invoke(&app, Operation::CreateCall, at_bound).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn header_names_differing_only_in_case_get_the_same_answer_every_time() {
    let app = app();
    let alice = user_token(json!({"user_id": "alice"}));
    let bob = user_token(json!({"user_id": "bob"}));
    let mut answers = Vec::new();
    for _ in 0..20 {
        // Each event's headers are a fresh HashMap, iterated in an order of its own.
        let req = event_edited("create-call", |v| {
            v["headers"]["authorization"] = json!(alice);
            v["headers"]["Authorization"] = json!(bob);
        });
        let (status, body) = invoke(&app, Operation::CreateCall, req).await;
        answers.push((status, body["code"].clone(), body["agora_uid"].clone()));
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    // Joined as API Gateway joins repeated headers, "<bob's>,<alice's>" is no token.
    assert_eq!(answers[0], (401, json!(5), Value::Null));
    assert!(app.store().is_empty());
}

#[tokio::test]
async fn wrong_method_and_wrong_route() {
    let app = app();
    let req = event_edited("create-call", |v| {
        v["requestContext"]["http"]["method"] = json!("GET")
    });
    let resp = callbridge_lambda::handle(&app, Operation::CreateCall, &req).await;
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "POST");
    // A get-call-token event sent to the create-call function.
    let req = event_edited("get-call-token", |v| {
        v.as_object_mut().unwrap().remove("pathParameters");
    });
    let (status, body) = invoke(&app, Operation::CreateCall, req).await;
    assert_eq!(status, 404);
    assert_stream_error(&body, 404, 16);
}

#[tokio::test]
async fn expired_calls_are_gone_and_can_be_created_again() {
    let now = Arc::new(AtomicU64::new(1_800_000_000));
    let clock: Clock = {
        let now = Arc::clone(&now);
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let app = Callbridge::with_clock(
        config_with(&[("CALLBRIDGE_CALL_TTL_SECONDS", "600")]),
        MemoryStore::new(),
        clock,
    );
    assert_eq!(create(&app, "create-call-audio").await.0, 201);
    now.fetch_add(599, Ordering::SeqCst);
    assert_eq!(token(&app, "get-call-token-encoded-id").await.0, 201);
    now.fetch_add(1, Ordering::SeqCst);
    let (status, body) = token(&app, "get-call-token-encoded-id").await;
    assert_eq!(status, 404, "{body}");
    // Re-created with the new request's type.
    let req = event_edited("create-call-audio", |v| {
        v["body"] = json!(r#"{"id":"call-messaging:general","type":"video"}"#);
    });
    let (status, body) = invoke(&app, Operation::CreateCall, req).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["call"]["type"], "video");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_creates_of_one_id_yield_one_call() {
    let app = Arc::new(app());
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let app = Arc::clone(&app);
        // A different letter case and a different user each time.
        let id: String = "race-call"
            .chars()
            .enumerate()
            .map(|(j, c)| {
                if i >> (j % 8) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        let type_ = if i % 2 == 0 { "video" } else { "audio" };
        tasks.push(tokio::spawn(async move {
            let req = event_edited("create-call", |v| {
                v["body"] = json!(format!(r#"{{"id":"{id}","type":"{type_}"}}"#));
                v["headers"]["authorization"] =
                    json!(user_token(json!({"user_id": format!("user-{i}")})));
            });
            invoke(&app, Operation::CreateCall, req).await
        }));
    }
    let mut calls = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        calls.push(body["call"].clone());
    }
    assert_eq!(app.store().len(), 1);
    assert!(
        calls.iter().all(|c| c == &calls[0]),
        "every response carries the same call"
    );
    assert_eq!(calls[0]["id"], "race-call");
}

#[tokio::test]
async fn secrets_never_reach_logs_or_responses() {
    let capture = LogCapture::global();
    let app = app();
    tracing::info!(config = ?app.config(), "config");
    let mut bodies = String::new();
    for name in [
        "create-call",
        "create-call-bad-signature",
        "create-call-alg-none",
        "create-call-expired-token",
        "create-call-wrong-api-key",
        "create-call-malformed-json",
        "get-call-token",
        "get-call-token-unknown",
    ] {
        let op = if name.starts_with("create") {
            Operation::CreateCall
        } else {
            Operation::GetCallToken
        };
        let (_, body) = invoke(&app, op, event(name)).await;
        bodies.push_str(&body.to_string());
    }
    let logs = capture.text();
    assert!(
        logs.contains("route=\"/channels/{type}/{id}/call\" status=201 code=0"),
        "{logs}"
    );
    assert!(logs.contains("status=401 code=43"), "{logs}");
    for secret in [API_SECRET, AGORA_CERT] {
        assert!(!logs.contains(secret), "secret in logs");
        assert!(!bodies.contains(secret), "secret in responses");
    }
}

// Hardening: answers that were wrong before (issue "what independent clients, fuzzing and
// fault injection found").

#[tokio::test]
async fn ids_made_only_of_dots_are_refused_with_the_reason() {
    let app = app();
    for id in [".", ".."] {
        let req = event_edited("create-call", |v| {
            v["body"] = json!(format!(r#"{{"id":"{id}","type":"video"}}"#));
        });
        let (status, body) = invoke(&app, Operation::CreateCall, req).await;
        assert_eq!(status, 400, "{body}");
        let msg = assert_stream_error(&body, 400, 4);
        assert!(msg.contains("only of dots"), "{msg}");
        // Get Call Token by raw path (curl --path-as-is), without API Gateway's parameters.
        let req = event_edited("get-call-token", |v| {
            v.as_object_mut().unwrap().remove("pathParameters");
            v["rawPath"] = json!(format!("/calls/{id}"));
        });
        let (status, body) = invoke(&app, Operation::GetCallToken, req).await;
        assert_eq!(status, 400, "{body}");
        let msg = assert_stream_error(&body, 400, 4);
        assert!(msg.starts_with("GetCallToken failed"), "{msg}");
        assert!(msg.contains("only of dots"), "{msg}");
    }
    assert!(app.store().is_empty());
}

#[tokio::test]
async fn a_path_that_lost_its_call_id_is_named_get_call_token() {
    let app = app();
    for path in [
        "/calls",
        "/prod/calls",
        "/calls/a/b",
        "/Calls/x",
        "/calls/a/./b",
    ] {
        let req = event_edited("get-call-token", |v| {
            v.as_object_mut().unwrap().remove("pathParameters");
            v["rawPath"] = json!(path);
        });
        // The local server routes by path alone.
        let resp = app
            .handle(callbridge::ApiRequest {
                method: &http::Method::POST,
                path: req.raw_path.as_deref().unwrap(),
                params: None,
                operation: None,
                query: Some("api_key=callbridge-fixture-key"),
                headers: &http::HeaderMap::new(),
                body: b"{}",
            })
            .await;
        assert_eq!(resp.status(), 404, "{path}");
        let body: Value = serde_json::from_slice(resp.body()).unwrap();
        let msg = assert_stream_error(&body, 404, 16);
        assert!(msg.starts_with("GetCallToken failed"), "{path}: {msg}");
    }
}

#[tokio::test]
async fn create_call_needs_join_call_too_for_the_token_it_answers_with() {
    let app = Callbridge::new(
        config_with(&[(
            "CALLBRIDGE_GRANTS",
            "user:create-call,join-call;maker:create-call",
        )]),
        MemoryStore::new(),
    );
    assert_eq!(create(&app, "create-call").await.0, 201);
    let maker = |body: &str| {
        let body = body.to_string();
        event_edited("create-call", move |v| {
            v["body"] = json!(body);
            v["headers"]["authorization"] =
                json!(user_token(json!({"user_id": "mia", "role": "maker"})));
        })
    };
    // The existing call: no join token without join-call (Get Call Token refuses it too).
    for body in [
        r#"{"id":"standup","type":"video"}"#,
        r#"{"id":"fresh","type":"video"}"#,
    ] {
        let (status, resp) = invoke(&app, Operation::CreateCall, maker(body)).await;
        assert_eq!(status, 403, "{resp}");
        let msg = assert_stream_error(&resp, 403, 17);
        assert!(msg.contains("join-call"), "{msg}");
        assert!(resp.get("token").is_none());
    }
    assert_eq!(app.store().len(), 1, "the new id was not written");
}

#[tokio::test]
async fn a_server_token_naming_two_users_is_refused() {
    let app = app();
    let req = event_edited("create-call-server-token", |v| {
        v["body"] = json!(
            r#"{"id":"x","type":"video","user_id":"alice","user":{"id":"bob","role":"guest"}}"#
        );
    });
    let (status, body) = invoke(&app, Operation::CreateCall, req).await;
    assert_eq!(status, 400, "{body}");
    let msg = assert_stream_error(&body, 400, 4);
    assert!(msg.contains("name different users"), "{msg}");
    assert!(app.store().is_empty());
}

#[tokio::test]
async fn padded_tokens_are_refused_as_rfc_7515_requires() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE;
    let app = app();
    assert_eq!(create(&app, "create-call").await.0, 201);
    let good = user_token(json!({"user_id": "alice"}));
    let with_token = |t: String| {
        event_edited("get-call-token", move |v| {
            v["headers"]["authorization"] = json!(t)
        })
    };
    // Padding after a valid signature: the signature part is not base64url without padding.
    let (status, body) = invoke(
        &app,
        Operation::GetCallToken,
        with_token(format!("{good}=")),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_stream_error(&body, 401, 43);
    // Padded header and payload, signed again with the right secret: still refused.
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64.encode(br#"{"user_id":"alice"}"#);
    assert!(header.ends_with('=') || payload.ends_with('='));
    // Signed with the right secret over exactly `input` ("header.payload").
    let signed = |input: String| {
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            callbridge::crypto::hmac_sha256(API_SECRET.as_bytes(), input.as_bytes()),
        );
        with_token(format!("{input}.{sig}"))
    };
    let (status, body) = invoke(
        &app,
        Operation::GetCallToken,
        signed(format!("{header}.{payload}")),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let msg = assert_stream_error(&body, 401, 5);
    assert!(msg.contains("base64url"), "{msg}");
    // The same token unpadded is accepted.
    let input = format!(
        "{}.{}",
        header.trim_end_matches('='),
        payload.trim_end_matches('=')
    );
    let (status, body) = invoke(&app, Operation::GetCallToken, signed(input)).await;
    assert_eq!(status, 201, "{body}");
}
