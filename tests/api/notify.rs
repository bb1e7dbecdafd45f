//! New calls announced in their channel by Callbridge, against a local Stream Chat mock over
//! real HTTP (wiremock), on the memory store and on DynamoDB (moto).
//!
//! The requests asserted here are what Stream's official server-side SDK sends for the same
//! operations: stream-chat-js (GetStream/stream-chat-js, release 9.49.0, commit 77fb9c87),
//! src/channel.ts: `_sendMessage` posts `{message, ...options}` to `_channelURL() + '/message'`
//! (server-side, `message.user_id` names the sender), `sendEvent` posts `{event}` to
//! `_channelURL() + '/event'`, `updatePartial` PATCHes `_channelURL()` with `{set}`;
//! `_channelURL()` is `{baseURL}/channels/{encodeURIComponent(type)}/{encodeURIComponent(id)}`;
//! src/client.ts `_enrichAxiosOptions` adds `api_key`, `Authorization`, `stream-auth-type:
//! jwt`; src/signing.ts `JWTServerToken` signs `{"server":true}`. A repeated message id is
//! assumed refused with 400 code 4 "... already exists" (Stream's duplicate-message error).

use callbridge::store::memory::MemoryStore;
use callbridge::{Callbridge, Operation};
use callbridge_tests::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn notify_app(base: &str, notify: &str) -> (Callbridge<Arc<MemoryStore>>, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let app = Callbridge::new(
        config_with(&[("CALLBRIDGE_NOTIFY", notify), ("STREAM_API_BASE_URL", base)]),
        Arc::clone(&store),
    );
    (app, store)
}

fn ok() -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({"duration": "2.10ms"}))
}

fn duplicate() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({
        "code": 4, "StatusCode": 400, "duration": "0.90ms", "details": [],
        "message": "SendMessage failed with error: \"a message with ID callbridge-1 already exists\"",
        "more_info": "https://getstream.io/chat/docs/api_errors_response"
    }))
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

/// Stream's server headers: its server token, the JWT auth type, JSON, the API key alone.
fn assert_server_request(req: &Request) {
    assert_server_token(req.headers["authorization"].to_str().unwrap());
    assert_eq!(req.headers["stream-auth-type"], "jwt");
    assert_eq!(req.headers["content-type"], "application/json");
    let q: Vec<(String, String)> = req.url.query_pairs().into_owned().collect();
    assert_eq!(q, [("api_key".to_string(), API_KEY.to_string())]);
}

fn stored(store: &MemoryStore, id: &str) -> callbridge::domain::Call {
    store
        .peek(&callbridge::domain::CallId::parse(id).unwrap())
        .expect("stored call")
}

#[tokio::test]
async fn message_mode_sends_one_message_as_the_creator_with_the_call_attached() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/channels/messaging/general/message"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let (app, store) = notify_app(&server.uri(), "message");
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    let reqs = received(&server).await;
    assert_eq!(reqs.len(), 1, "exactly one request to Stream");
    assert_server_request(&reqs[0]);
    let sent: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    let call = stored(&store, "standup");
    let message = &sent["message"];
    assert_eq!(sent.as_object().unwrap().len(), 1);
    assert_eq!(
        message["id"],
        callbridge::chat::stream::message_id(&call),
        "derived from the call"
    );
    assert!(
        message["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("callbridge-{}-", call.created_at))
    );
    assert_eq!(message["text"], "");
    assert_eq!(message["user_id"], "alice");
    assert_eq!(message["attachments"].as_array().unwrap().len(), 1);
    assert_eq!(message["attachments"][0]["type"], "call");
    assert_eq!(
        message["attachments"][0]["call"], body["call"],
        "the response's call"
    );
    assert_eq!(message.as_object().unwrap().len(), 4);
    assert!(!call.pending_announcement, "cleared once told");

    // The existing call is not announced again.
    let (status, _) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201);
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn event_and_channel_modes_send_streams_shapes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/channels/messaging/general/event"))
        .respond_with(ok())
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/channels/messaging/general"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let (events, _) = notify_app(&server.uri(), "event");
    let (status, body) = invoke(&events, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    let reqs = received(&server).await;
    assert_eq!(reqs.len(), 1);
    assert_server_request(&reqs[0]);
    let sent: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"event": {"type": "call.created", "call": body["call"], "user_id": "alice"}})
    );

    let (channel, store) = notify_app(&server.uri(), "channel");
    let (status, body) = invoke(&channel, Operation::CreateCall, event("create-call-audio")).await;
    assert_eq!(status, 201, "{body}");
    let reqs = received(&server).await;
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].method.as_str(), "PATCH");
    assert_server_request(&reqs[1]);
    let sent: Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(sent, json!({"set": {"call": body["call"]}}));
    assert!(!stored(&store, "call-messaging:general").pending_announcement);
}

#[tokio::test]
async fn off_sends_nothing_and_stores_nothing_pending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let (app, store) = notify_app(&server.uri(), "off");
    assert_eq!(
        invoke(&app, Operation::CreateCall, event("create-call"))
            .await
            .0,
        201
    );
    assert!(received(&server).await.is_empty());
    assert!(!stored(&store, "standup").pending_announcement);
}

#[tokio::test]
async fn a_duplicate_message_refusal_is_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(duplicate())
        .mount(&server)
        .await;
    let (app, store) = notify_app(&server.uri(), "message");
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(received(&server).await.len(), 1, "not retried");
    assert!(!stored(&store, "standup").pending_announcement);
    // The same refusal for an event is a refusal (events have no ids).
    let (events, _) = notify_app(&server.uri(), "event");
    let (status, body) = invoke(&events, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 502, "{body}");
}

/// Stream failing (5xx, timeout, dropped connection), then recovering: the first answer says
/// the call exists and the channel was not told, the call stays pending, and the same request
/// completes the announcement with exactly one message accepted in the end.
#[tokio::test]
async fn failures_leave_the_call_pending_and_a_repeat_completes_it_once() {
    for failure in ["5xx", "timeout", "drop"] {
        let (base, server, dropper) = match failure {
            "drop" => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                let task = tokio::spawn(async move {
                    loop {
                        let (sock, _) = listener.accept().await.unwrap();
                        drop(sock);
                    }
                });
                (format!("http://127.0.0.1:{port}"), None, Some(task))
            }
            _ => {
                let server = MockServer::start().await;
                let answer = if failure == "5xx" {
                    ResponseTemplate::new(500).set_body_string("boom")
                } else {
                    ok().set_delay(Duration::from_secs(3))
                };
                Mock::given(method("POST"))
                    .respond_with(answer)
                    .mount(&server)
                    .await;
                (server.uri(), Some(server), None)
            }
        };
        let (app, store) = notify_app(&base, "message");
        let resp =
            callbridge_lambda::handle(&app, Operation::CreateCall, &event("create-call")).await;
        assert_eq!(resp.status(), 502, "{failure}");
        assert_eq!(resp.headers()["retry-after"], "1", "{failure}");
        let body: Value = serde_json::from_slice(resp.body()).unwrap();
        let msg = assert_stream_error(&body, 502, -1);
        assert!(
            msg.contains("call \"standup\" exists, but its channel was not told"),
            "{msg}"
        );
        assert!(
            msg.contains("repeating the same request completes the announcement"),
            "{msg}"
        );
        assert!(
            stored(&store, "standup").pending_announcement,
            "{failure}: still pending"
        );
        if let Some(task) = dropper {
            task.abort();
        }

        // Stream recovers: a mock that accepts; the same request answers 201.
        let good = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/channels/messaging/general/message"))
            .respond_with(ok())
            .mount(&good)
            .await;
        let store2 = Arc::clone(&store);
        let recovered = Callbridge::new(
            config_with(&[
                ("CALLBRIDGE_NOTIFY", "message"),
                ("STREAM_API_BASE_URL", &good.uri()),
            ]),
            store2,
        );
        let (status, body) = invoke(&recovered, Operation::CreateCall, event("create-call")).await;
        assert_eq!(status, 201, "{failure}: {body}");
        assert_eq!(
            received(&good).await.len(),
            1,
            "{failure}: one message in the end"
        );
        assert!(!stored(&store, "standup").pending_announcement);
        let (status, _) = invoke(&recovered, Operation::CreateCall, event("create-call")).await;
        assert_eq!(status, 201);
        assert_eq!(received(&good).await.len(), 1, "{failure}: not again");
        drop(server);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_new_id_announce_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok().set_delay(Duration::from_millis(200)))
        .mount(&server)
        .await;
    let (app, store) = notify_app(&server.uri(), "event");
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let req = event_edited("create-call", |v| {
                    v["headers"]["authorization"] =
                        json!(user_token(json!({"user_id": format!("u{i}")})));
                });
                invoke(&app, Operation::CreateCall, req).await
            })
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(received(&server).await.len(), 1, "one announcement");
    assert_eq!(store.len(), 1);
}

/// On DynamoDB: the pending state is in the item, the budget is one PutItem plus one
/// UpdateItem for a new call, and a failed announcement leaves the mark for the repeat.
#[tokio::test]
async fn dynamodb_holds_the_pending_state_and_clears_it() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok())
        .mount(&server)
        .await;
    let (store, client, log) = fresh_dynamo_store().await;
    let table = store.table().to_string();
    let app = Callbridge::new(
        config_with(&[
            ("CALLBRIDGE_NOTIFY", "message"),
            ("STREAM_API_BASE_URL", &server.uri()),
        ]),
        store,
    );
    let item = || async {
        client
            .get_item()
            .table_name(&table)
            .key("pk", AttributeValue::S("standup".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .unwrap()
    };
    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        log.take(),
        ["PutItem"],
        "no update after a failed announcement"
    );
    assert_eq!(
        item().await.get("announce_pending"),
        Some(&AttributeValue::Bool(true))
    );
    log.take(); // the test's own GetItem

    let (status, body) = invoke(&app, Operation::CreateCall, event("create-call")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(log.take(), ["PutItem", "UpdateItem"]);
    assert_eq!(item().await.get("announce_pending"), None, "cleared");
    assert_eq!(
        received(&server).await.len(),
        3,
        "two failed attempts, one message"
    );

    // A new call with a working Stream: exactly one request to Stream, one write beyond today's.
    log.take(); // the test's own GetItem above
    let req = event_edited("create-call", |v| {
        v["body"] = json!(r#"{"id":"fresh","type":"video"}"#)
    });
    let (status, _) = invoke(&app, Operation::CreateCall, req).await;
    assert_eq!(status, 201);
    assert_eq!(log.take(), ["PutItem", "UpdateItem"]);
    assert_eq!(received(&server).await.len(), 4);
}

/// Review defect: concurrent creates of one new id each cleared the pending mark (17 to 20
/// UpdateItems for one call). Now one per call per process.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_on_dynamodb_clear_the_mark_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok().set_delay(Duration::from_millis(100)))
        .mount(&server)
        .await;
    let (store, _client, log) = fresh_dynamo_store().await;
    let app = Arc::new(Callbridge::new(
        config_with(&[
            ("CALLBRIDGE_NOTIFY", "event"),
            ("STREAM_API_BASE_URL", &server.uri()),
        ]),
        store,
    ));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(
                async move { invoke(&app, Operation::CreateCall, event("create-call")).await },
            )
        })
        .collect();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let ops = log.take();
    assert_eq!(
        ops.iter().filter(|o| *o == "PutItem").count(),
        20,
        "{ops:?}"
    );
    assert_eq!(
        ops.iter().filter(|o| *o == "UpdateItem").count(),
        1,
        "{ops:?}"
    );
    assert_eq!(received(&server).await.len(), 1, "one announcement");
}
