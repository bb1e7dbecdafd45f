//! Metrics (CloudWatch embedded metric format) and the ids that follow one invocation.

use crate::*;
use callbridge::telemetry;
use lambda_runtime::Error;
use lambda_runtime::LambdaEvent;
use std::sync::atomic::{AtomicBool, Ordering};

/// The ids that follow one request: Lambda's (`LambdaEvent.context.request_id`), API
/// Gateway's (its access log's `requestId`) and the X-Ray trace's.
#[derive(Clone, Copy, Debug)]
pub struct RequestIds<'a> {
    pub lambda: &'a str,
    pub api_gateway: Option<&'a str>,
    pub xray_trace: Option<&'a str>,
}

impl<'a> RequestIds<'a> {
    pub fn of(event: &'a LambdaEvent<HttpEvent>) -> Self {
        RequestIds {
            lambda: &event.context.request_id,
            api_gateway: event.payload.request_context.request_id.as_deref(),
            xray_trace: event.context.xray_trace_id.as_deref(),
        }
    }

    /// The span every log line of the invocation is written in (the JSON logs show its fields
    /// as `span`). At ERROR level so that no log level turns it off.
    pub fn span(&self) -> tracing::Span {
        tracing::error_span!(
            "invocation",
            requestId = self.lambda,
            apiRequestId = self.api_gateway,
            xrayTraceId = self.xray_trace,
        )
    }
}

/// The process's metrics: CloudWatch embedded metric format, `FunctionName` a dimension of
/// every metric, Lambda's and API Gateway's request ids properties of every document (the
/// trace id is in the log lines), written once per invocation.
pub struct Metrics {
    collector: &'static metrics_cloudwatch_embedded::Collector,
    cold_start: AtomicBool,
}

impl Metrics {
    /// Installs the process's one metrics recorder; fails if one is installed.
    pub fn install(function_name: &str) -> Result<Metrics, Error> {
        let collector = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(telemetry::NAMESPACE)
            .with_dimension("FunctionName", function_name.to_string())
            .init()?;
        telemetry::describe();
        Ok(Metrics {
            collector,
            cold_start: AtomicBool::new(true),
        })
    }

    /// Writes what was recorded since the last call, one JSON document a line, to `out`.
    pub fn write(&self, ids: &RequestIds<'_>, out: &mut Vec<u8>) {
        if self.cold_start.swap(false, Ordering::Relaxed) {
            telemetry::cold_start();
        }
        let c = self.collector;
        c.set_property("requestId", ids.lambda);
        match ids.api_gateway {
            Some(id) => c.set_property("apiRequestId", id),
            None => c.remove_property("apiRequestId"),
        };
        // Writing to a Vec cannot fail.
        let _ = c.flush(&mut *out);
    }

    /// [`Metrics::write`] to standard output, each document a log record of its own.
    pub fn emit(&self, ids: &RequestIds<'_>) {
        let mut out = Vec::with_capacity(2048);
        self.write(ids, &mut out);
        if let Err(e) = std::io::Write::write_all(&mut std::io::stdout().lock(), &out) {
            tracing::warn!(error = %e, "could not write the metrics");
        }
    }
}

/// The metrics of this process, when it runs as a Lambda function (which names it).
pub(crate) fn install_metrics() -> Option<&'static Metrics> {
    let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok()?;
    match Metrics::install(&name) {
        Ok(m) => Some(Box::leak(Box::new(m))),
        Err(e) => {
            tracing::warn!(error = %e, "metrics are off");
            None
        }
    }
}
