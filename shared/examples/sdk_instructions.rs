//! Runs N Get Call Token (or Create Call) requests on the DynamoDB client production builds,
//! answered at once with canned responses, with one SDK option varied. Under valgrind it gives
//! instruction counts, which unlike CPU time on a shared machine do not drift: the difference
//! between two values of N, divided by their difference, is the instructions of one request.
//! `scripts/sdk_instructions.py` does that for every variant.
//!
//!     sdk_instructions <memory_store|production|no_retries|no_timeouts|account_id_endpoints_disabled>
//!                      <get|create> <N>

#[path = "../benches/common/canned_dynamodb.rs"]
#[allow(dead_code)]
mod canned_dynamodb;
#[path = "../benches/common/mod.rs"]
#[allow(dead_code)]
mod common;

use callbridge::Callbridge;
use callbridge::api::ApiRequest;
use callbridge::store::Storage;
use callbridge::store::memory::MemoryStore;
use canned_dynamodb::{ITEM, SDK_VARIANTS, app_with};
use common::{config_with, create_request, headers, token_request};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        let names: Vec<_> = SDK_VARIANTS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "usage: sdk_instructions <memory_store|{}> <get|create> <N>",
            names.join("|")
        );
        ExitCode::from(2)
    };
    let [variant, operation, n] = args.as_slice() else {
        return usage();
    };
    // `memory_store` runs the requests on the in-memory store instead (no SDK at all).
    let vary = SDK_VARIANTS.iter().find(|(name, _)| name == variant);
    if vary.is_none() && variant != "memory_store" {
        return usage();
    }
    let Ok(n) = n.parse::<u32>() else {
        return usage();
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let headers = headers();
    let create = create_request(&headers);
    let get = token_request(
        &headers,
        "/calls/call-messaging%3Ageneral",
        "call-messaging%3Ageneral",
    );
    let request = match operation.as_str() {
        "get" => get,
        "create" => create,
        _ => return usage(),
    };
    if variant == "memory_store" {
        // The same requests without DynamoDB: the call Get Call Token reads is made first.
        let app = Callbridge::new(config_with(&[]), MemoryStore::new());
        rt.block_on(async {
            assert_eq!(app.handle(create).await.status(), 201);
            repeat(&app, request, n).await
        });
    } else {
        let answer = match operation.as_str() {
            "get" => format!(r#"{{"Item":{ITEM}}}"#),
            _ => "{}".to_string(),
        };
        let (_, vary) = vary.expect("checked above");
        let app = app_with(200, &answer, *vary);
        rt.block_on(repeat(&app, request, n));
    }
    ExitCode::SUCCESS
}

async fn repeat<S: Storage>(app: &Callbridge<S>, request: ApiRequest<'_>, n: u32) {
    for _ in 0..n {
        let status = app.handle(request).await.status();
        assert_eq!(status, 201, "the canned answer is a success");
    }
}
