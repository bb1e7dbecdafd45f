//! Hot-path budgets (issue 21): Agora token build <= 2 us, Create Call (existing call) and Get
//! Call Token handlers (memory store, Agora) <= 10 us each; Get Call Token for a 100ms call
//! <= 15 us (issue 4); each a median on the 2-core build machine.
//! Run: `cargo bench -p callbridge` (or `make bench`).

use callbridge::api::{ApiRequest, PathParams};
use callbridge::domain::CallType;
use callbridge::providers::agora::{self, AgoraConfig, AgoraRole};
use callbridge::secret::Secret;
use callbridge::store::memory::MemoryStore;
use callbridge::{Callbridge, Operation};
mod common;

use common::{config_with, create_request, headers, token_request};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn agora_token(c: &mut Criterion) {
    let cfg = AgoraConfig {
        app_id: "970CA35de60c44645bbae8a215061b33".into(),
        app_certificate: Secret::new("5CFd2fd1755d40ecb72977518be15d3b"),
        role_map: Default::default(),
        rest: None,
    };
    c.bench_function("agora_rtc_token_build", |b| {
        b.iter(|| {
            agora::rtc_token(
                black_box(&cfg),
                black_box("call-messaging:general"),
                black_box(735_577_802),
                AgoraRole::Publisher,
                CallType::Video,
                1_800_000_000,
                3600,
                agora::random_salt(),
            )
            .unwrap()
        })
    });
}

fn handlers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let headers = headers();
    let create_req = create_request(&headers);

    c.bench_function("create_call_handler_new_call", |b| {
        b.to_async(&rt).iter_batched(
            || Callbridge::new(config_with(&[]), MemoryStore::new()),
            |app| async move {
                let r = app.handle(create_req).await;
                assert_eq!(r.status(), 201);
                app
            },
            BatchSize::SmallInput,
        )
    });

    let app = Callbridge::new(config_with(&[]), MemoryStore::new());
    rt.block_on(app.handle(create_req));
    c.bench_function("create_call_handler_existing_call", |b| {
        b.to_async(&rt).iter(|| async {
            let r = app.handle(create_req).await;
            assert_eq!(r.status(), 201);
        })
    });

    let token_req = token_request(
        &headers,
        "/calls/call-messaging%3Ageneral",
        "call-messaging%3Ageneral",
    );
    c.bench_function("get_call_token_handler", |b| {
        b.to_async(&rt).iter(|| async {
            let r = app.handle(token_req).await;
            assert_eq!(r.status(), 201);
        })
    });
}

/// The output of a future that completes without waiting (the memory store, Agora): setup
/// code runs inside criterion's runtime, where `block_on` is not allowed.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => panic!("the setup future waited"),
    }
}

/// End Call on the memory store with Agora (budget: 25 us): ending a live call (one
/// conditional write), and ending it again (a read).
fn end_call(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let headers = headers();
    let create_req = create_request(&headers);
    let end_req = ApiRequest {
        method: &http::Method::POST,
        path: "/calls/call-messaging%3Ageneral/end",
        params: Some(PathParams {
            channel_type: None,
            id: Some("call-messaging%3Ageneral"),
        }),
        operation: Some(Operation::EndCall),
        query: Some("api_key=bench-key"),
        headers: &headers,
        body: br#"{"reason":"standup is over"}"#,
    };
    c.bench_function("end_call_handler", |b| {
        b.to_async(&rt).iter_batched(
            || {
                let app = Callbridge::new(config_with(&[]), MemoryStore::new());
                let created = ready(app.handle(create_req));
                assert_eq!(created.status(), 201);
                app
            },
            |app| async move {
                let r = app.handle(end_req).await;
                assert_eq!(r.status(), 200);
                app
            },
            BatchSize::SmallInput,
        )
    });
    let app = Callbridge::new(config_with(&[]), MemoryStore::new());
    rt.block_on(app.handle(create_req));
    rt.block_on(app.handle(end_req));
    c.bench_function("end_call_handler_ended_call", |b| {
        b.to_async(&rt).iter(|| async {
            let r = app.handle(end_req).await;
            assert_eq!(r.status(), 200);
        })
    });
}

/// A provider event on the memory store (budget: 30 us of CPU): an Agora NCS join, signed,
/// applied to a call with a live session; and the same event again (a duplicate).
fn provider_event(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let headers = headers();
    let create_req = create_request(&headers);
    let config = || config_with(&[("AGORA_NCS_SECRET", "bench-ncs-secret")]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = |notice: &str, event_type: u32, seq: u32| {
        format!(
            r#"{{"noticeId":"{notice}","productId":1,"eventType":{event_type},"notifyMs":{}000,"payload":{{"channelName":"call-messaging:general","uid":42,"platform":1,"clientSeq":{seq},"ts":{now}}}}}"#,
            now
        )
    };
    let signed = |body: &str| {
        let tag = callbridge::crypto::hmac_sha256(b"bench-ncs-secret", body.as_bytes());
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let mut h = http::HeaderMap::new();
        h.insert("agora-signature-v2", hex.parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        h
    };
    let open = body("open", 101, 0);
    let open_headers = signed(&open);
    let join = body("join", 107, 1);
    let join_headers = signed(&join);
    let event = |headers: &'static http::HeaderMap, body: &'static str| ApiRequest {
        method: &http::Method::POST,
        path: "/webhooks/agora",
        params: None,
        operation: Some(Operation::ProviderEvent),
        query: None,
        headers,
        body: body.as_bytes(),
    };
    // Leaked once: the requests borrow them for the whole bench.
    let open_req = event(
        Box::leak(Box::new(open_headers)),
        Box::leak(open.into_boxed_str()),
    );
    let join_req = event(
        Box::leak(Box::new(join_headers)),
        Box::leak(join.into_boxed_str()),
    );
    c.bench_function("provider_event_handler", |b| {
        b.to_async(&rt).iter_batched(
            || {
                let app = Callbridge::new(config(), MemoryStore::new());
                assert_eq!(ready(app.handle(create_req)).status(), 201);
                assert_eq!(ready(app.handle(open_req)).status(), 200);
                app
            },
            |app| async move {
                let r = app.handle(join_req).await;
                assert_eq!(r.status(), 200);
                debug_assert!(String::from_utf8_lossy(r.body()).contains(r#""result":"recorded""#));
                app
            },
            BatchSize::SmallInput,
        )
    });
    let app = Callbridge::new(config(), MemoryStore::new());
    rt.block_on(app.handle(create_req));
    rt.block_on(app.handle(open_req));
    rt.block_on(app.handle(join_req));
    c.bench_function("provider_event_handler_duplicate", |b| {
        b.to_async(&rt).iter(|| async {
            let r = app.handle(join_req).await;
            assert_eq!(r.status(), 200);
            debug_assert!(String::from_utf8_lossy(r.body()).contains(r#""result":"duplicate""#));
        })
    });
}

fn hms_token(c: &mut Criterion) {
    use callbridge::domain::{Call, ProviderDetails};
    use callbridge::domain::{CallId, ChannelCid};
    use callbridge::store::CallWriter;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let config = config_with(&[
        ("CALLBRIDGE_PROVIDER", "hms"),
        ("HMS_APP_ACCESS_KEY", "6470b7a5e3f47d5e9a1c0f11"),
        ("HMS_APP_SECRET", "bench-hms-secret"),
        ("HMS_TEMPLATE_ID", "tmpl"),
        ("HMS_DEFAULT_ROLE", "guest"),
    ]);
    let app = Callbridge::new(config, MemoryStore::new());
    let call = Call {
        id: CallId::parse("standup").unwrap(),
        cid: ChannelCid::parse("messaging", "general").unwrap(),
        call_type: CallType::Video,
        provider: ProviderDetails::Hms {
            room_id: "6470b7a5e3f47d5e9a1c0f22".into(),
            room_name: "standup".into(),
        },
        created_by: "alice".into(),
        created_at: 1_800_000_000,
        expires_at: u64::MAX,
        pending_announcement: false,
        ends_at: None,
        ended: None,
        stale_kick_rule: None,
        media: Default::default(),
    };
    rt.block_on(app.store().insert_if_absent(&call, 1_800_000_000))
        .unwrap();
    let headers = headers();
    let req = token_request(&headers, "/calls/standup", "standup");
    c.bench_function("get_call_token_handler_hms", |b| {
        b.to_async(&rt).iter(|| async {
            let r = app.handle(req).await;
            assert_eq!(r.status(), 201);
        })
    });
}

criterion_group!(
    benches,
    agora_token,
    handlers,
    end_call,
    provider_event,
    hms_token
);
criterion_main!(benches);
