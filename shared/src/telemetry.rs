//! What Callbridge measures, recorded through the [`metrics`] facade only: whoever runs the
//! application installs a recorder (the Lambda functions write CloudWatch embedded metric
//! format), or none (the local server), and then every call here is a no-op.
//!
//! Every metric is a [`Count`](metrics::Unit::Count) or a latency in
//! [`Milliseconds`](metrics::Unit::Milliseconds); its labels become CloudWatch dimensions (the
//! exporter adds `FunctionName`). [`METRICS`] lists each with its labels: the contract the
//! alarms and the README rely on.

use crate::domain::{Operation, ProviderKind};
use crate::error::Error;
use http::StatusCode;
use metrics::{Unit, counter, histogram};
use std::time::Instant;

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "Callbridge";

/// Every request answered, by operation and status class (`2xx`, `4xx`, `5xx`).
pub const REQUESTS: &str = "Requests";
/// Every refusal, by operation and Stream code (`-1` for the 5xx without a Stream code).
pub const ERROR_CODES: &str = "ErrorCodes";
/// Answers with Stream code 9 (429: storage or a provider throttled us). Alarmed on.
pub const THROTTLED: &str = "Throttled";
/// Create Calls answered with a call, by provider and `Result` (`new` or `existing`).
pub const CALLS: &str = "Calls";
/// Calls ended by End Call, by provider and `Reason` (`given` when End Call carried a reason,
/// else `none`). A repeated End Call of an ended call does not count.
pub const CALLS_ENDED: &str = "CallsEnded";
/// Provider events received, by provider and `Result`: `recorded`, `duplicate`,
/// `unauthenticated`, or why one was ignored (`malformed`, `untracked`, `not_a_call`,
/// `unknown_call`, `another_room`, `before_this_call`, `too_many_events`, `empty`).
pub const PROVIDER_EVENTS: &str = "ProviderEvents";
/// Join tokens issued, by operation and provider.
pub const TOKENS_ISSUED: &str = "TokensIssued";
/// Create Calls that failed at the video provider: no usable answer after its retries, or it
/// rejected this deployment's credentials or defaults (not the caller's options, not
/// throttling). Alarmed on.
pub const PROVIDER_FAILURES: &str = "ProviderFailures";
/// Time to prepare a call at the video provider (100ms: create or find the room).
pub const PROVIDER_LATENCY: &str = "ProviderLatency";
/// Failed calls to the video provider, by `Kind`.
pub const PROVIDER_ERRORS: &str = "ProviderErrors";
/// Time of a Stream Chat membership query (cached answers are not measured).
pub const CHAT_LATENCY: &str = "ChatLatency";
/// Failed Stream Chat membership queries, by `Kind`.
pub const CHAT_ERRORS: &str = "ChatErrors";
/// Time of one DynamoDB operation, retries included, by `StorageOperation`.
pub const STORAGE_LATENCY: &str = "StorageLatency";
/// Failed DynamoDB operations (after the SDK's retries), by `StorageOperation` and `Kind`. A
/// conditional put that finds the call already there is not a failure.
pub const STORAGE_ERRORS: &str = "StorageErrors";
/// Attempts the SDK retried, by `StorageOperation`.
pub const STORAGE_RETRIES: &str = "StorageRetries";
/// Invocations that started a new process (written by the Lambda adapter).
pub const COLD_STARTS: &str = "ColdStarts";

/// Each metric: name, unit and the labels it is recorded with, in order (CloudWatch adds none;
/// the Lambda exporter puts `FunctionName` first).
pub const METRICS: &[(&str, Unit, &[&str])] = &[
    (REQUESTS, Unit::Count, &["Operation", "StatusClass"]),
    (ERROR_CODES, Unit::Count, &["Operation", "Code"]),
    (THROTTLED, Unit::Count, &["Operation"]),
    (CALLS, Unit::Count, &["Provider", "Result"]),
    (CALLS_ENDED, Unit::Count, &["Provider", "Reason"]),
    (PROVIDER_EVENTS, Unit::Count, &["Provider", "Result"]),
    (TOKENS_ISSUED, Unit::Count, &["Operation", "Provider"]),
    (PROVIDER_FAILURES, Unit::Count, &["Provider"]),
    (PROVIDER_LATENCY, Unit::Milliseconds, &["Provider"]),
    (PROVIDER_ERRORS, Unit::Count, &["Provider", "Kind"]),
    (CHAT_LATENCY, Unit::Milliseconds, &[]),
    (CHAT_ERRORS, Unit::Count, &["Kind"]),
    (STORAGE_LATENCY, Unit::Milliseconds, &["StorageOperation"]),
    (STORAGE_ERRORS, Unit::Count, &["StorageOperation", "Kind"]),
    (STORAGE_RETRIES, Unit::Count, &["StorageOperation"]),
    (COLD_STARTS, Unit::Count, &[]),
];

/// Tells the installed recorder each metric's unit. Call once, after installing it.
pub fn describe() {
    for (name, unit, _) in METRICS {
        match unit {
            Unit::Milliseconds => metrics::describe_histogram!(*name, *unit, ""),
            _ => metrics::describe_counter!(*name, *unit, ""),
        }
    }
}

fn millis(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1e3
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Stream codes as label values, without formatting on the hot path.
fn code_label(code: i32) -> metrics::SharedString {
    match code {
        -1 => "-1".into(),
        2 => "2".into(),
        4 => "4".into(),
        5 => "5".into(),
        9 => "9".into(),
        16 => "16".into(),
        17 => "17".into(),
        22 => "22".into(),
        40 => "40".into(),
        41 => "41".into(),
        42 => "42".into(),
        43 => "43".into(),
        other => other.to_string().into(),
    }
}

/// One answered request: its status and Stream code (0 on success).
pub fn request(op: Operation, status: StatusCode, code: i32) {
    let op = op.name();
    counter!(REQUESTS, "Operation" => op, "StatusClass" => status_class(status)).increment(1);
    if code != 0 {
        counter!(ERROR_CODES, "Operation" => op, "Code" => code_label(code)).increment(1);
    }
    if code == 9 {
        counter!(THROTTLED, "Operation" => op).increment(1);
    }
}

/// A Create Call answered with a call: created by this request (`new`) or found.
pub fn call_answered(provider: ProviderKind, new: bool) {
    let result = if new { "new" } else { "existing" };
    counter!(CALLS, "Provider" => provider.as_str(), "Result" => result).increment(1);
}

/// A call ended by End Call (see [`CALLS_ENDED`]).
pub fn call_ended(provider: ProviderKind, reason_given: bool) {
    let reason = if reason_given { "given" } else { "none" };
    counter!(CALLS_ENDED, "Provider" => provider.as_str(), "Reason" => reason).increment(1);
}

/// A provider event received (see [`PROVIDER_EVENTS`]).
pub fn provider_event(provider: ProviderKind, result: &'static str) {
    counter!(PROVIDER_EVENTS, "Provider" => provider.as_str(), "Result" => result).increment(1);
}

/// A join token issued.
pub fn token_issued(op: Operation, provider: ProviderKind) {
    counter!(TOKENS_ISSUED, "Operation" => op.name(), "Provider" => provider.as_str()).increment(1);
}

/// One preparation of a call at the provider, `started` when it was asked; on failure, its
/// `Kind` and the error the request is answered with.
pub fn provider_prepared(
    provider: ProviderKind,
    started: Instant,
    failed: Option<(&'static str, &Error)>,
) {
    let name = provider.as_str();
    histogram!(PROVIDER_LATENCY, "Provider" => name).record(millis(started));
    let Some((kind, e)) = failed else {
        return;
    };
    counter!(PROVIDER_ERRORS, "Provider" => name, "Kind" => kind).increment(1);
    // The caller's own options refused (400) and throttling (429) do not count.
    if matches!(e, Error::Provider { .. } | Error::ProviderRejected { .. }) {
        provider_failure(provider);
    }
}

/// A Create Call that failed at the video provider (see [`PROVIDER_FAILURES`]).
pub fn provider_failure(provider: ProviderKind) {
    counter!(PROVIDER_FAILURES, "Provider" => provider.as_str()).increment(1);
}

/// One membership query to Stream Chat, `started` when it was asked; `failed`: the `Kind` of
/// its failure, as the Stream Chat client names it.
pub fn chat_queried(started: Instant, failed: Option<&'static str>) {
    histogram!(CHAT_LATENCY).record(millis(started));
    if let Some(kind) = failed {
        counter!(CHAT_ERRORS, "Kind" => kind).increment(1);
    }
}

/// The first invocation of a process.
pub fn cold_start() {
    counter!(COLD_STARTS).increment(1);
}

/// One storage operation (`op`, as DynamoDB names it), `started` when it was sent: its latency,
/// the attempts retried, and, when it failed after them, the `Kind` of the failure as the
/// storage adapter names it.
pub fn storage_operation(
    op: metrics::SharedString,
    started: Option<Instant>,
    attempts: u32,
    failed: Option<&'static str>,
) {
    if let Some(started) = started {
        histogram!(STORAGE_LATENCY, "StorageOperation" => op.clone()).record(millis(started));
    }
    if attempts > 1 {
        counter!(STORAGE_RETRIES, "StorageOperation" => op.clone())
            .increment(u64::from(attempts - 1));
    }
    if let Some(kind) = failed {
        counter!(STORAGE_ERRORS, "StorageOperation" => op, "Kind" => kind).increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes_and_codes() {
        assert_eq!(status_class(StatusCode::CREATED), "2xx");
        assert_eq!(status_class(StatusCode::TOO_MANY_REQUESTS), "4xx");
        assert_eq!(status_class(StatusCode::BAD_GATEWAY), "5xx");
        for code in [-1, 2, 4, 5, 9, 16, 17, 22, 40, 41, 42, 43, 77] {
            assert_eq!(code_label(code).as_ref(), code.to_string());
        }
    }

    #[test]
    fn every_metric_is_listed_once_with_its_unit() {
        let mut names: Vec<&str> = METRICS.iter().map(|(n, _, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
        // The alarms' contract (README, template.yaml, scripts/check_template.py).
        assert!(METRICS.contains(&(PROVIDER_FAILURES, Unit::Count, &["Provider"])));
        assert!(METRICS.contains(&(THROTTLED, Unit::Count, &["Operation"])));
    }
}
