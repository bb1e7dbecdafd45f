//! The DynamoDB adapter against a real DynamoDB wire protocol (moto), through the handlers.

use aws_sdk_dynamodb::types::AttributeValue;
use callbridge::api::Clock;
use callbridge::domain::{Call, CallType, ProviderDetails};
use callbridge::domain::{CallId, ChannelCid};
use callbridge::store::dynamodb::DynamoStore;
use callbridge::store::{CallReader, CallWriter, Inserted};
use callbridge::{Callbridge, Operation};
use callbridge_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn with_body(name: &str, body: &str, user: &str) -> HttpEvent {
    event_edited(name, |v| {
        v["body"] = json!(body);
        v["headers"]["authorization"] = json!(user_token(json!({ "user_id": user })));
    })
}

async fn scan_count(client: &aws_sdk_dynamodb::Client, table: &str) -> i32 {
    client
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .count()
}

#[tokio::test]
async fn one_request_per_create_new_or_existing_and_per_token() {
    let (store, client, log) = fresh_dynamo_store().await;
    let table = store.table().to_string();
    let app = Callbridge::new(config(), store);

    let (status, first) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(log.take(), vec!["PutItem"]);

    let (status, second) = invoke(
        &app,
        Operation::CreateCall,
        with_body("create-call", r#"{"id":"STANDUP","type":"audio"}"#, "bob"),
    )
    .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(
        log.take(),
        vec!["PutItem"],
        "the existing call comes back from the failed put"
    );
    assert_eq!(second["call"], first["call"]);
    assert_eq!(second["call"]["type"], "video", "the stored call wins");
    assert_agora_token(&second, "bob", "standup");

    let (status, body) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
    assert_eq!(status, 201, "{body}");
    assert_agora_token(&body, "alice", "standup");
    assert_eq!(log.take(), vec!["GetItem"]);

    let (status, body) = invoke(
        &app,
        Operation::GetCallToken,
        event("get-call-token-unknown"),
    )
    .await;
    assert_eq!(status, 404);
    assert_stream_error(&body, 404, 16);
    assert_eq!(log.take(), vec!["GetItem"]);

    // Refused requests never reach DynamoDB.
    for name in [
        "create-call-bad-type",
        "create-call-expired-token",
        "create-call-forbidden-role",
    ] {
        let (status, _) = invoke(&app, Operation::CreateCall, event(name)).await;
        assert!((400..500).contains(&status));
    }
    assert!(log.take().is_empty());
    assert_eq!(scan_count(&client, &table).await, 1);
}

#[tokio::test]
async fn another_channel_cannot_take_over_an_id() {
    let (store, _client, _log) = fresh_dynamo_store().await;
    let app = Callbridge::new(config(), store);
    assert_eq!(
        invoke(&app, Operation::CreateCall, event("create-call"))
            .await
            .0,
        201
    );
    let req = event_edited("create-call", |v| {
        v["pathParameters"]["id"] = json!("random");
        v["rawPath"] = json!("/channels/messaging/random/call");
    });
    let (status, body) = invoke(&app, Operation::CreateCall, req).await;
    assert_eq!(status, 403);
    assert_stream_error(&body, 403, 17);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_creates_yield_one_item() {
    let (store, client, log) = fresh_dynamo_store().await;
    let table = store.table().to_string();
    let app = Arc::new(Callbridge::new(config(), store));
    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let app = Arc::clone(&app);
        let id: String = "Race:Call"
            .chars()
            .enumerate()
            .map(|(j, c)| {
                if (i >> (j % 6)) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let body = format!(
                r#"{{"id":"{id}","type":"{}"}}"#,
                if i % 2 == 0 { "video" } else { "audio" }
            );
            invoke(
                &app,
                Operation::CreateCall,
                with_body("create-call", &body, &format!("u{i}")),
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
    assert!(
        calls.iter().all(|c| c == &calls[0]),
        "identical call objects"
    );
    assert_eq!(calls[0]["id"], "race:call");
    assert_eq!(
        log.take(),
        vec!["PutItem"; 64],
        "one PutItem per request, no retries, no reads"
    );
    assert_eq!(scan_count(&client, &table).await, 1);
}

#[tokio::test]
async fn expired_calls_are_not_found_and_are_created_again() {
    let (store, client, log) = fresh_dynamo_store().await;
    let table = store.table().to_string();
    let now = Arc::new(AtomicU64::new(1_800_000_000));
    let clock: Clock = {
        let now = Arc::clone(&now);
        Arc::new(move || now.load(Ordering::SeqCst))
    };
    let app = Callbridge::with_clock(
        config_with(&[("CALLBRIDGE_CALL_TTL_SECONDS", "600")]),
        store,
        clock,
    );
    let (status, _) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201);
    let item = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("standup".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        item.item().unwrap()["expires_at"],
        AttributeValue::N("1800000600".into())
    );

    now.store(1_800_000_600, Ordering::SeqCst);
    log.take();
    let (status, body) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
    assert_eq!(status, 404, "{body}");
    assert_stream_error(&body, 404, 16);

    // Created again (by another channel, even): one conditional put replaces the expired item.
    let req = event_edited("create-call", |v| {
        v["pathParameters"]["id"] = json!("random");
        v["rawPath"] = json!("/channels/messaging/random/call");
        v["body"] = json!(r#"{"id":"standup","type":"audio"}"#);
    });
    let (status, body) = invoke(&app, Operation::CreateCall, req).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["call"]["type"], "audio");
    assert_eq!(log.take(), vec!["GetItem", "PutItem"]);
    let item = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("standup".into()))
        .send()
        .await
        .unwrap();
    let item = item.item().unwrap();
    assert_eq!(item["cid"], AttributeValue::S("messaging:random".into()));
    assert_eq!(item["expires_at"], AttributeValue::N("1800001200".into()));
    assert_eq!(scan_count(&client, &table).await, 1);
}

#[tokio::test]
async fn items_read_back_equal_field_by_field() {
    let (store, client, _log) = fresh_dynamo_store().await;
    let calls = [
        Call {
            id: CallId::parse("Call-Messaging:General").unwrap(),
            cid: ChannelCid::parse("messaging", "General").unwrap(),
            call_type: CallType::Audio,
            provider: ProviderDetails::Agora {
                channel: "call-messaging:general".into(),
            },
            created_by: "alice@example.com".into(),
            created_at: 1_800_000_000,
            expires_at: 1_802_592_000,
            pending_announcement: false,
            ends_at: None,
            ended: None,
            stale_kick_rule: None,
            media: Default::default(),
        },
        Call {
            id: CallId::parse("room.1").unwrap(),
            cid: ChannelCid::parse("team", "eng").unwrap(),
            call_type: CallType::Video,
            provider: ProviderDetails::Hms {
                room_id: "6470b7a5e3f47d5e9a1c0f22".into(),
                room_name: "room.1".into(),
            },
            created_by: "Ünïcode user".into(),
            created_at: 1_800_000_001,
            expires_at: 1_800_000_601,
            pending_announcement: false,
            ends_at: None,
            ended: None,
            stale_kick_rule: None,
            media: Default::default(),
        },
    ];
    for call in &calls {
        assert_eq!(
            store.insert_if_absent(call, 1_800_000_000).await.unwrap(),
            Inserted::New { replaced: None }
        );
        assert_eq!(
            store.get(&call.id, 1_800_000_000).await.unwrap().as_ref(),
            Some(call)
        );
        assert_eq!(
            store.insert_if_absent(call, 1_800_000_000).await.unwrap(),
            Inserted::Existing(call.clone())
        );
    }
    let raw = client
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S("call-messaging:general".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let raw = raw.item().unwrap();
    let s = |v: &str| AttributeValue::S(v.into());
    assert_eq!(raw["pk"], s("call-messaging:general"));
    assert_eq!(raw["cid"], s("messaging:General"));
    assert_eq!(raw["call_type"], s("audio"));
    assert_eq!(raw["provider"], s("agora"));
    assert_eq!(raw["agora_channel"], s("call-messaging:general"));
    assert_eq!(raw["created_by"], s("alice@example.com"));
    assert_eq!(raw["created_at"], AttributeValue::N("1800000000".into()));
    assert_eq!(raw["expires_at"], AttributeValue::N("1802592000".into()));
    assert_eq!(raw.len(), 8, "no other attributes: {raw:?}");
}

#[tokio::test]
async fn a_missing_table_is_a_clear_503_without_retry_after() {
    let (client, _log) = dynamo_client(&dynamodb_endpoint());
    let app = Callbridge::new(
        config(),
        DynamoStore::new(client, unique_table("never-created")),
    );
    for (op, name) in [
        (Operation::CreateCall, "create-call"),
        (Operation::GetCallToken, "get-call-token"),
    ] {
        let resp = callbridge_lambda::handle(&app, op, &event(name)).await;
        let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        assert_eq!(resp.status(), 503, "{body}");
        assert!(
            resp.headers().get("retry-after").is_none(),
            "a retry cannot help"
        );
        let msg = assert_stream_error(&body, 503, -1);
        assert!(
            msg.contains("refused this deployment's configuration"),
            "{msg}"
        );
    }
}

/// Access denied (a policy without the action, say) is the deployment's to fix: 503 without
/// `Retry-After`, after one request (the SDK does not retry it).
#[tokio::test]
async fn access_denied_is_a_configuration_error() {
    let (_server, app, log) = on_mock_dynamodb(
        400,
        r#"{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User: arn:aws:sts::123456789012:assumed-role/fn is not authorized to perform: dynamodb:PutItem"}"#,
    )
    .await;
    let resp = callbridge_lambda::handle(&app, Operation::CreateCall, &event("create-call")).await;
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_none());
    let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    let msg = assert_stream_error(&body, 503, -1);
    assert!(
        !msg.contains("arn:aws"),
        "the cause is logged, not sent: {msg}"
    );
    assert_eq!(log.take().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_stopped_mid_test_answers_503_then_recovers() {
    let mut moto = OwnMoto::start();
    let (client, _log) = dynamo_client(&moto.endpoint());
    let store = DynamoStore::new(client, "outage-test");
    store.create_table().await.unwrap();
    let app = Callbridge::new(config(), store.clone());
    assert_eq!(
        invoke(&app, Operation::CreateCall, event("create-call"))
            .await
            .0,
        201
    );

    moto.stop();
    for (op, name, says) in [
        // The put may have been sent before the connection failed: its outcome is unknown.
        (
            Operation::CreateCall,
            "create-call-audio",
            "may or may not have been stored",
        ),
        // A read changes nothing.
        (
            Operation::GetCallToken,
            "get-call-token",
            "nothing was changed",
        ),
    ] {
        let started = std::time::Instant::now();
        let resp = callbridge_lambda::handle(&app, op, &event(name)).await;
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "1");
        let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        let msg = assert_stream_error(&body, 503, -1);
        assert!(msg.contains(says), "{name}: {msg}");
        assert!(
            started.elapsed()
                < callbridge::store::dynamodb::OPERATION_TIMEOUT
                    + std::time::Duration::from_secs(1)
        );
    }

    moto.restart(); // moto keeps no state: the table is made again, as an operator would.
    store.create_table().await.unwrap();
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call-audio")).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = invoke(
        &app,
        Operation::GetCallToken,
        event("get-call-token-encoded-id"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// DynamoDB frozen while a create is in flight: the put reaches its socket, the client gives up
/// after its timeouts, and DynamoDB applies the put once it thaws. The answer must not claim
/// that nothing was written, and repeating the request must answer the stored call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_create_says_the_outcome_is_unknown_and_a_repeat_is_safe() {
    let moto = OwnMoto::start();
    let (client, log) = dynamo_client(&moto.endpoint());
    let store = DynamoStore::new(client, "frozen-test");
    store.create_table().await.unwrap();
    let app = Callbridge::new(config(), store.clone());
    log.take();

    moto.signal("-STOP");
    let resp = callbridge_lambda::handle(&app, Operation::CreateCall, &event("create-call")).await;
    moto.signal("-CONT");
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    let msg = assert_stream_error(&body, 503, -1);
    assert!(!msg.contains("nothing"), "claims more than it knows: {msg}");
    assert!(msg.contains("may or may not have been stored"), "{msg}");
    assert!(msg.contains("repeating the same request is safe"), "{msg}");
    assert!(!log.take().is_empty());

    // The same request again: the stored call (written late, or now) is answered.
    let mut last = (0, Value::Null);
    for _ in 0..20 {
        last = invoke(&app, Operation::CreateCall, event("create-call")).await;
        if last.0 == 201 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(last.0, 201, "{}", last.1);
    assert_eq!(last.1["call"]["id"], "standup");
    let (status, body) = invoke(&app, Operation::GetCallToken, event("get-call-token")).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let (_server, app, log) = on_mock_dynamodb(
        400,
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"slow down"}"#,
    )
    .await;
    let resp = callbridge_lambda::handle(&app, Operation::CreateCall, &event("create-call")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    assert_stream_error(&body, 429, 9);
    assert_eq!(log.take().len(), 3, "the SDK retried within its bound");
}

#[tokio::test]
async fn a_server_error_after_retries_is_503_and_nothing_is_stored() {
    use wiremock::matchers::method;
    use wiremock::{Mock, ResponseTemplate};
    let (server, app, _log) = on_mock_dynamodb(
        500,
        r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"boom"}"#,
    )
    .await;
    let resp =
        callbridge_lambda::handle(&app, Operation::GetCallToken, &event("get-call-token")).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1", "a failure may pass");
    let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    let msg = assert_stream_error(&body, 503, -1);
    assert!(msg.contains("nothing was changed"), "a read: {msg}");
    // A 500 on a put: DynamoDB may have applied it.
    let resp = callbridge_lambda::handle(&app, Operation::CreateCall, &event("create-call")).await;
    assert_eq!(resp.status(), 503);
    let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    let msg = assert_stream_error(&body, 503, -1);
    assert!(
        msg.contains("may or may not have been stored"),
        "a write: {msg}"
    );
    // A slow DynamoDB is cut by the attempt timeout, then answered with 503.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(5)))
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let (status, _) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 503);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_local_server_runs_on_dynamodb() {
    let table = unique_table("local");
    let endpoint = dynamodb_endpoint();
    let env = |cmd: &mut std::process::Command| {
        cmd.env_clear()
            .env("CALLBRIDGE_TABLE_NAME", &table)
            .env("AWS_ENDPOINT_URL_DYNAMODB", &endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    };
    let bin = workspace_binary("callbridge-local");
    let mut cmd = std::process::Command::new(&bin);
    env(&mut cmd);
    let out = cmd.arg("create-table").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Twice is fine.
    let mut cmd = std::process::Command::new(&bin);
    env(&mut cmd);
    assert!(cmd.arg("create-table").output().unwrap().status.success());

    let mut cmd = std::process::Command::new(&bin);
    env(&mut cmd);
    cmd.env("CALLBRIDGE_PORT", "0");
    let server = LocalBinary::start(cmd);
    let (base, banner) = (server.base.clone(), server.banner.clone());
    assert!(
        banner.contains(&format!("DynamoDB table {table}")),
        "{banner}"
    );
    let token =
        callbridge_local::user_token("alice", "callbridge-sandbox-secret-not-for-production");
    let client = http_client();
    let url = format!("{base}/channels/messaging/general/call?api_key=callbridge-sandbox-key");
    let (status, _, body) = send(
        &client,
        "POST",
        &url,
        &[("authorization", &token)],
        r#"{"id":"persisted","type":"video"}"#,
    )
    .await;
    drop(server);
    assert_eq!(status, 201, "{body}");
    let (dclient, _) = dynamo_client(&endpoint);
    assert_eq!(scan_count(&dclient, &table).await, 1);
}

/// An app on a mock DynamoDB that answers every request with `status` and the error `body`.
async fn on_mock_dynamodb(
    status: u16,
    body: &str,
) -> (wiremock::MockServer, Callbridge<DynamoStore>, RequestLog) {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(status).set_body_raw(body, "application/x-amz-json-1.0"),
        )
        .mount(&server)
        .await;
    let (client, log) = dynamo_client(&server.uri());
    (
        server,
        Callbridge::new(config(), DynamoStore::new(client, "t")),
        log,
    )
}

/// `create_table` twice: the second finds the table and its TTL (asked of DynamoDB, not read
/// from an error's text) and succeeds.
#[tokio::test]
async fn creating_the_table_twice_is_fine() {
    let (store, client, _log) = fresh_dynamo_store().await;
    store.create_table().await.expect("second create_table");
    let ttl = client
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}
