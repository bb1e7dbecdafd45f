//! Issue 3 budget: the DynamoDB adapter's per-request CPU stays within 20 us of the in-memory
//! store. The SDK runs its whole pipeline (serialisation, signing, retries, parsing) against an
//! HTTP client that answers instantly with canned DynamoDB responses, so the difference to
//! `hot_paths` is the adapter's own cost. Run: `cargo bench -p callbridge --bench dynamodb`.

#[path = "common/canned_dynamodb.rs"]
mod canned_dynamodb;
mod common;

use canned_dynamodb::{ITEM, SDK_VARIANTS, app, app_with};
use common::{create_request, headers, token_request};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let headers = headers();
    let create = create_request(&headers);
    let token_req = token_request(
        &headers,
        "/calls/call-messaging%3Ageneral",
        "call-messaging%3Ageneral",
    );

    let new = app(200, "{}");
    c.bench_function("dynamodb_create_call_new", |b| {
        b.to_async(&rt)
            .iter(|| async { assert_eq!(new.handle(create).await.status(), 201) })
    });
    let existing = app(
        400,
        &format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":{ITEM}}}"#
        ),
    );
    c.bench_function("dynamodb_create_call_existing", |b| {
        b.to_async(&rt)
            .iter(|| async { assert_eq!(existing.handle(create).await.status(), 201) })
    });
    let get = app(200, &format!(r#"{{"Item":{ITEM}}}"#));
    c.bench_function("dynamodb_get_call_token", |b| {
        b.to_async(&rt)
            .iter(|| async { assert_eq!(get.handle(token_req).await.status(), 201) })
    });
}

/// What the SDK's own options cost per Get Call Token, against the production configuration:
/// each variant drops one thing Callbridge keeps (retries, timeouts) or turns off one SDK
/// default (account-based endpoints), so the difference prices it. CPU time here drifts more
/// than these differ; `scripts/sdk_instructions.py` counts instructions for the same variants.
fn sdk_options(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let headers = headers();
    let token_req = token_request(
        &headers,
        "/calls/call-messaging%3Ageneral",
        "call-messaging%3Ageneral",
    );
    let body = format!(r#"{{"Item":{ITEM}}}"#);
    let mut group = c.benchmark_group("dynamodb_get_call_token_sdk");
    for (name, vary) in SDK_VARIANTS {
        let app = app_with(200, &body, vary);
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { assert_eq!(app.handle(token_req).await.status(), 201) })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, sdk_options);
criterion_main!(benches);
