//! What metrics and request ids cost an invocation (budget: 5 us of CPU per request), each
//! inside lambda_runtime's own invocation span and with the functions' JSON log subscriber
//! (writing to a sink), as in Lambda:
//! - `before`: the handler as the functions ran it before (`handle`; span list on, no
//!   recorder);
//! - `ids_no_recorder`: `invoke` (the invocation span with the three ids; span list off);
//! - `after`: that, with the EMF recorder installed, plus writing the invocation's documents
//!   (into memory: the write to stdout is I/O, like the log line's).
//!
//! Memory store, Agora. Measured in CPU time of the benchmark's thread (the runtime is
//! current-thread), not wall time: on the shared 2-core build machine, time the thread spends
//! preempted would otherwise be counted.
//! Run: `cargo bench -p callbridge-lambda --bench invocation`.

use callbridge::store::memory::MemoryStore;
use callbridge::{Callbridge, Config};
use callbridge_lambda::{HttpEvent, HttpResponse, Metrics, Operation, RequestIds, handle, invoke};
use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lambda_runtime::layers::trace::request_span;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;
use tracing::Instrument as _;

const SECRET: &str = "bench-secret";

fn config() -> Config {
    Config::from_pairs(&[
        ("STREAM_API_KEY", "bench-key"),
        ("STREAM_API_SECRET", SECRET),
        ("CALLBRIDGE_MEMBERSHIP", "off"),
        ("AGORA_APP_ID", "970CA35de60c44645bbae8a215061b33"),
        ("AGORA_APP_CERTIFICATE", "5CFd2fd1755d40ecb72977518be15d3b"),
    ])
    .unwrap()
}

fn event(path: &str, params: serde_json::Value, body: &str) -> LambdaEvent<HttpEvent> {
    let token = callbridge::hs256::sign_hs256(&json!({"user_id": "alice"}), SECRET.as_bytes());
    let payload: HttpEvent = serde_json::from_value(json!({
        "rawPath": path,
        "rawQueryString": "api_key=bench-key&user_id=alice&connection_id=c",
        "headers": {"authorization": token, "stream-auth-type": "jwt",
                    "content-type": "application/json"},
        "pathParameters": params,
        "body": body,
        "isBase64Encoded": false,
        "requestContext": {"http": {"method": "POST", "path": path},
                           "requestId": "JKJaXmPLvHcESHA="}
    }))
    .unwrap();
    let mut context = Context::default();
    context.request_id = "8f5c9b2e-1d7a-4c1e-9a57-3b0e6f2d4a10".into();
    context.xray_trace_id =
        Some("Root=1-5e1b4151-5ac6c58f3375aa3c7c6b73c9;Parent=53995c3f42cd8ad8;Sampled=1".into());
    LambdaEvent::new(payload, context)
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`), in nanoseconds.
struct ThreadCpu;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given, which outlives the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, started: u64) -> u64 {
        thread_cpu_ns() - started
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Micros
    }
}

/// Nanoseconds shown as microseconds of CPU.
struct Micros;

impl ValueFormatter for Micros {
    fn scale_values(&self, _typical: f64, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e3);
        "µs cpu"
    }
    fn scale_throughputs(&self, _: f64, _: &Throughput, values: &mut [f64]) -> &'static str {
        values.iter_mut().for_each(|v| *v /= 1e3);
        "µs cpu"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

/// The functions' JSON log subscriber, writing to a sink; `span_list` as main had it (on), or
/// as now (off: the invocation's span alone, as `span`).
fn subscriber(span_list: bool) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(span_list)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::sink)
        .finish()
}

fn invocations(c: &mut Criterion<ThreadCpu>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let app = Callbridge::new(config(), MemoryStore::new());
    let create = event(
        "/channels/messaging/general/call",
        json!({"type": "messaging", "id": "general"}),
        r#"{"id":"standup","type":"video"}"#,
    );
    let token = event("/calls/standup", json!({"id": "standup"}), "{}");
    let cases = [
        ("create_call_existing", Operation::CreateCall, &create),
        ("get_call_token", Operation::GetCallToken, &token),
    ];
    // The call exists from here on.
    let first = rt.block_on(handle(&app, Operation::CreateCall, &create.payload));
    assert_eq!(first.status(), 201);

    // Every invocation runs in lambda_runtime's own span (request id, trace id), as in Lambda.
    let logs = tracing::subscriber::set_default(subscriber(true));
    for (name, op, event) in cases {
        c.bench_function(&format!("{name}/before"), |b| {
            b.to_async(&rt).iter(|| async {
                let span = request_span(&event.context);
                let r = HttpResponse::from(handle(&app, op, &event.payload).instrument(span).await);
                assert_eq!(r.status_code, 201);
                r
            })
        });
    }
    drop(logs);

    let _logs = tracing::subscriber::set_default(subscriber(false));
    for (name, op, event) in cases {
        c.bench_function(&format!("{name}/ids_no_recorder"), |b| {
            b.to_async(&rt).iter(|| async {
                let span = request_span(&event.context);
                let r = invoke(&app, op, None, event).instrument(span).await;
                assert_eq!(r.status_code, 201);
                r
            })
        });
    }

    // From here on the process has a recorder, as a function has.
    let metrics = Metrics::install("callbridge-bench").unwrap();
    for (name, op, event) in cases {
        c.bench_function(&format!("{name}/after"), |b| {
            b.to_async(&rt).iter(|| async {
                let span = request_span(&event.context);
                let r = invoke(&app, op, None, event).instrument(span).await;
                assert_eq!(r.status_code, 201);
                // As Metrics::emit, less the write to stdout.
                let mut out = Vec::with_capacity(2048);
                metrics.write(&RequestIds::of(event), &mut out);
                assert!(!out.is_empty());
                (r, out)
            })
        });
    }
    // What one Get Call Token writes.
    rt.block_on(invoke(&app, Operation::GetCallToken, None, &token));
    let mut out = Vec::new();
    metrics.write(&RequestIds::of(&token), &mut out);
    eprintln!(
        "one Get Call Token writes {} bytes of metrics:\n{}",
        out.len(),
        String::from_utf8_lossy(&out)
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = invocations
}
criterion_main!(benches);
