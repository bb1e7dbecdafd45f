//! Issue 10 budgets: CPU added per request by a membership check <= 30 us against a Stream
//! Chat mock answering at once, and <= 1 us for a cached answer (criterion medians). The mock
//! runs in this process on loopback, so the uncached figure is the client's and the mock's work
//! together, an upper bound on what a check adds. Run: `cargo bench -p callbridge --bench membership`.

use bytes::Bytes;
use callbridge::chat::Membership;
use callbridge::chat::stream::{StreamChat, StreamConfig};
use callbridge::domain::ChannelCid;
use callbridge::http_client::https_client;
use callbridge::secret::Secret;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::time::Duration;

const ANSWER: &str =
    r#"{"members":[{"user_id":"alice","user":{"id":"alice"}}],"duration":"0.10ms"}"#;

/// A Stream Chat mock on a free loopback port that answers every query at once.
async fn mock() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                        Bytes::from_static(ANSWER.as_bytes()),
                    )))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn members(base: &str, cache_secs: u64) -> StreamChat {
    StreamChat::new(
        StreamConfig {
            api_key: "bench-key".into(),
            api_secret: Secret::new("bench-secret"),
            api_base: base.into(),
            cache_secs,
        },
        https_client(Duration::from_secs(1)).unwrap(),
    )
}

fn membership(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = rt.block_on(mock());
    let cid = ChannelCid::parse("messaging", "general").unwrap();

    let uncached = members(&base, 0);
    c.bench_function("membership_check_uncached", |b| {
        b.to_async(&rt).iter(|| async {
            let m = uncached.check(&cid, "alice", 1_800_000_000).await.unwrap();
            assert_eq!(m, Membership::Member);
        })
    });

    let cached = members(&base, 60);
    rt.block_on(cached.check(&cid, "alice", 1_800_000_000))
        .unwrap();
    c.bench_function("membership_check_cached", |b| {
        b.to_async(&rt).iter(|| async {
            let m = cached.check(&cid, "alice", 1_800_000_001).await.unwrap();
            assert_eq!(m, Membership::Member);
        })
    });
}

criterion_group!(benches, membership);
criterion_main!(benches);
