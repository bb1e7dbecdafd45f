//! Runs a Callbridge handler as an AWS Lambda function behind an API Gateway HTTP API.
//! Everything here is adaptation: API Gateway v2 events in, handler responses out.

use base64::Engine as _;
use bytes::Bytes;
pub use callbridge::Operation;
use callbridge::api::{ApiRequest, ApiResponse, PathParams};
use callbridge::config::ConfigError;
use callbridge::store::dynamodb::{self, DynamoStore};
use callbridge::store::{ReadOnly, Storage};
use callbridge::{Callbridge, Config, telemetry};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
pub use lambda_runtime::Error;
use lambda_runtime::{LambdaEvent, service_fn};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::Instrument as _;

/// The parts of an API Gateway HTTP API (payload format 2.0) event that Callbridge reads.
///
/// Read leniently on purpose: API Gateway passes the client's query string, headers and body
/// through as they came, and no client input may fail an invocation (that would be API
/// Gateway's own 500, outside Stream's error shape). So the query string stays a string for
/// the handler to parse, and a header whose value `http` cannot hold is dropped, not fatal.
/// Only an event without `requestContext.http.method` (not an HTTP API event at all) is
/// refused, as a function error.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpEvent {
    #[serde(default)]
    pub raw_path: Option<String>,
    #[serde(default)]
    pub raw_query_string: Option<String>,
    #[serde(default)]
    pub headers: Option<HashMap<String, String>>,
    #[serde(default)]
    pub path_parameters: Option<HashMap<String, String>>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub is_base64_encoded: bool,
    pub request_context: RequestContext,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    pub http: HttpDescription,
    /// API Gateway's id of the request, the `requestId` of its access log. Only a string is
    /// kept: anything else (or nothing) is no id, never a failed invocation.
    #[serde(default, deserialize_with = "lenient_string")]
    pub request_id: Option<String>,
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

#[derive(Clone, Debug, Deserialize)]
pub struct HttpDescription {
    #[serde(deserialize_with = "method")]
    pub method: Method,
    #[serde(default)]
    pub path: Option<String>,
}

fn method<'de, D: Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
    let name = String::deserialize(d)?;
    Method::from_bytes(name.as_bytes()).map_err(serde::de::Error::custom)
}

/// The API Gateway HTTP API response (payload format 2.0).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpResponse {
    pub status_code: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub is_base64_encoded: bool,
}

impl From<ApiResponse> for HttpResponse {
    fn from(response: ApiResponse) -> HttpResponse {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes());
            headers
                .entry(name.as_str().to_string())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        let status_code = response.status().as_u16();
        let (body, is_base64_encoded) = match String::from_utf8(response.into_body()) {
            Ok(text) => (text, false),
            Err(e) => (
                base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                true,
            ),
        };
        HttpResponse {
            status_code,
            headers,
            body,
            is_base64_encoded,
        }
    }
}

/// Adapts one API Gateway request to the domain handler.
pub async fn handle<S: Storage>(
    app: &Callbridge<S>,
    operation: Operation,
    event: &HttpEvent,
) -> ApiResponse {
    let mut headers = HeaderMap::new();
    for (name, value) in event.headers.iter().flatten() {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    let path = event
        .raw_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .or(event.request_context.http.path.as_deref())
        .unwrap_or("");
    let text = event.body.as_deref().unwrap_or("");
    // API Gateway base64-encodes bodies it does not take for text; it always sends valid
    // base64, and should it not, the text itself reaches the handler (which then refuses it
    // as malformed JSON, a 400).
    let decoded = if event.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.decode(text).ok()
    } else {
        None
    };
    let body = decoded.as_deref().unwrap_or(text.as_bytes());
    let params = event
        .path_parameters
        .as_ref()
        .filter(|p| !p.is_empty())
        .map(|p| PathParams {
            channel_type: p.get("type").map(String::as_str),
            id: p.get("id").map(String::as_str),
        });
    app.handle(ApiRequest {
        method: &event.request_context.http.method,
        path,
        params,
        operation: Some(operation),
        query: event.raw_query_string.as_deref().filter(|q| !q.is_empty()),
        headers: &headers,
        body,
    })
    .await
}

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

/// One invocation: the answer, in the invocation's span, then its metrics.
pub async fn invoke<S: Storage>(
    app: &Callbridge<S>,
    operation: Operation,
    metrics: Option<&Metrics>,
    event: &LambdaEvent<HttpEvent>,
) -> HttpResponse {
    let ids = RequestIds::of(event);
    let response = handle(app, operation, &event.payload)
        .instrument(ids.span())
        .await;
    let response = HttpResponse::from(response);
    if let Some(m) = metrics {
        m.emit(&ids);
    }
    response
}

/// The metrics of this process, when it runs as a Lambda function (which names it).
fn install_metrics() -> Option<&'static Metrics> {
    let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok()?;
    match Metrics::install(&name) {
        Ok(m) => Some(Box::leak(Box::new(m))),
        Err(e) => {
            tracing::warn!(error = %e, "metrics are off");
            None
        }
    }
}

/// Builds the application once (cold start) and serves `operation` until the runtime stops.
pub async fn run_with<S: Storage>(
    operation: Operation,
    config: Config,
    store: S,
) -> Result<(), Error> {
    let app = match Callbridge::start(config, store) {
        Ok(app) => Arc::new(app),
        Err(e) => {
            tracing::error!("{e}");
            report_init_error("Runtime.StartError", &e.to_string()).await;
            return Err(e.into());
        }
    };
    let metrics = install_metrics();
    // Boxed: the runtime's future type nests deep enough to exceed rustc's layout query
    // limit in the binaries that await it.
    Box::pin(lambda_runtime::run(service_fn(
        move |event: LambdaEvent<HttpEvent>| {
            let app = Arc::clone(&app);
            // Boxed too, for the same limit: one allocation per invocation.
            async move {
                let response = Box::pin(invoke(&app, operation, metrics, &event)).await;
                Ok::<_, Error>(response)
            }
        },
    )))
    .await
}

/// Entry point of the `create-call` function: reads and writes the table.
pub async fn run_create_call() -> Result<(), Error> {
    let (config, store) = init().await?;
    run_with(Operation::CreateCall, config, store).await
}

/// Entry point of the `get-call-token` function: only reads the table (its IAM policy grants
/// `GetItem` alone), so it holds no writer at all.
pub async fn run_get_call_token() -> Result<(), Error> {
    let (config, store) = init().await?;
    run_with(Operation::GetCallToken, config, ReadOnly(store)).await
}

/// Cold start of each function: configuration and the DynamoDB client are built once. A bad
/// setting fails the start with a message naming the variable, reported to the Lambda Runtime
/// API as an init error (so it shows in the invocation's error, not only in the logs).
async fn init() -> Result<(Config, DynamoStore), Error> {
    init_logging();
    let config = match load_config() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            report_init_error("Runtime.ConfigError", &e.to_string()).await;
            return Err(e.into());
        }
    };
    let table = config
        .table_name
        .clone()
        .expect("load_config checked the table");
    let store = DynamoStore::new(dynamodb::client_from_env().await, table);
    Ok((config, store))
}

fn load_config() -> Result<Config, ConfigError> {
    let config = Config::from_env()?;
    if config.table_name.is_none() {
        return Err(ConfigError {
            var: "CALLBRIDGE_TABLE_NAME",
            reason: "is not set; the functions store calls in DynamoDB".into(),
        });
    }
    Ok(config)
}

/// Posts `/runtime/init/error` to the Runtime API (best effort, 2 s at most).
pub async fn report_init_error(error_type: &str, message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body =
        serde_json::json!({"errorType": error_type, "errorMessage": message, "stackTrace": []});
    let request = http::Request::post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", error_type)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())));
    let Ok(request) = request else {
        return;
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    match tokio::time::timeout(Duration::from_secs(2), client.request(request)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "could not report the init error"),
        Err(_) => tracing::error!("could not report the init error: no answer in 2 s"),
    }
}

/// JSON logs when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`), at the level Lambda
/// passes (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG` read as a level, else INFO).
///
/// The level applies to Callbridge's own crates. Dependencies log at DEBUG at most: at TRACE
/// the Lambda runtime logs every raw event (with the caller's `Authorization` header) and
/// response, and the HTTP and AWS SDK crates log request details; none of that may reach
/// CloudWatch.
fn init_logging() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(|l| parse_level(&l))
        .unwrap_or(LevelFilter::INFO);
    let filter = Targets::new()
        .with_default(level.min(LevelFilter::DEBUG))
        .with_target("callbridge", level)
        .with_target("callbridge_lambda", level);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        // The invocation's span (request ids) as `span` on every line; not the runtime's
        // outer span again.
        registry
            .with(fmt.json().with_current_span(true).with_span_list(false))
            .init();
    } else {
        registry.with(fmt).init();
    }
}

/// Lambda's level names (FATAL is ERROR here); anything unknown is INFO.
fn parse_level(name: &str) -> tracing_subscriber::filter::LevelFilter {
    use tracing_subscriber::filter::LevelFilter;
    match name.trim().to_ascii_uppercase().as_str() {
        "TRACE" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "WARN" => LevelFilter::WARN,
        "ERROR" | "FATAL" => LevelFilter::ERROR,
        "OFF" => LevelFilter::OFF,
        _ => LevelFilter::INFO,
    }
}
