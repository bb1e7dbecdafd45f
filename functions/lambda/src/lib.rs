//! Runs a Callbridge handler as an AWS Lambda function behind an API Gateway HTTP API.
//! Everything here is adaptation: API Gateway v2 events in, handler responses out.

use base64::Engine as _;
use bytes::Bytes;
pub use callbridge::Operation;
use callbridge::api::{ApiRequest, ApiResponse, PathParams};
use callbridge::config::ConfigError;
use callbridge::store::dynamodb::{self, DynamoStore};
use callbridge::store::{ReadOnly, Storage};
use callbridge::{ApiError, Callbridge, Config, telemetry};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
pub use lambda_runtime::Error;
use lambda_runtime::{LambdaEvent, service_fn};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
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
/// Only an event that is not an HTTP API event at all (no `requestContext.http.method`, or a
/// field of the wrong type: direct invokes, other event sources) is refused, as a function
/// error; [`parse_event`] reads it so that the refusal never repeats the event's values.
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

/// Why an invocation's payload is not an HTTP API request. It names the field and the kinds of
/// value expected and found, never the value: an event carries the caller's credentials, and
/// this message is logged and posted to the Runtime API (serde's own messages quote the
/// offending value, a string holding `authorization: <JWT>` for instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventError {
    pub field: &'static str,
    pub expected: &'static str,
    pub found: &'static str,
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not an API Gateway HTTP API (payload format 2.0) event: {} must be {}, not {}",
            self.field, self.expected, self.found
        )
    }
}

impl std::error::Error for EventError {}

impl From<EventError> for lambda_runtime::Diagnostic {
    fn from(e: EventError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: "Callbridge.InvalidEvent".into(),
            error_message: e.to_string(),
        }
    }
}

/// Reads an invocation's payload as an [`HttpEvent`]. The shape is checked on the JSON value
/// first, field by field, so that a refusal names a field, not a value; the check accepts what
/// `HttpEvent`'s deserialisation accepts.
pub fn parse_event(payload: Value) -> Result<HttpEvent, EventError> {
    check_shape(&payload)?;
    serde_json::from_value(payload).map_err(|_| EventError {
        field: "the event",
        expected: "an HTTP API request",
        found: "one of another shape",
    })
}

/// Reads an invocation's payload (JSON text) as an [`HttpEvent`]: straight into it, as API
/// Gateway's events are read, without building a JSON value first; anything that does not read
/// so goes through [`parse_event`], whose refusal names the field. The same events are accepted
/// and refused as by [`parse_event`] on the parsed value: its check accepts what the
/// deserialisation accepts, and a duplicated key (refused by the derived deserialiser, the last
/// value kept by a JSON value) takes the second way.
pub fn read_event(json: &str) -> Result<HttpEvent, EventError> {
    match serde_json::from_str::<HttpEvent>(json) {
        Ok(event) => Ok(event),
        Err(_) => parse_event(serde_json::from_str(json).map_err(|_| EventError {
            field: "the event",
            expected: "an HTTP API request",
            found: "one of another shape",
        })?),
    }
}

fn kind(v: Option<&Value>) -> &'static str {
    match v {
        None => "missing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

fn wrong(field: &'static str, expected: &'static str, found: Option<&Value>) -> EventError {
    EventError {
        field,
        expected,
        found: kind(found),
    }
}

fn object<'a>(
    field: &'static str,
    v: Option<&'a Value>,
) -> Result<&'a serde_json::Map<String, Value>, EventError> {
    match v {
        Some(Value::Object(o)) => Ok(o),
        other => Err(wrong(field, "an object", other)),
    }
}

fn optional_string(field: &'static str, v: Option<&Value>) -> Result<(), EventError> {
    match v {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        other => Err(wrong(field, "a string", other)),
    }
}

/// An optional object of strings (`values_field` names its values in a refusal).
fn optional_strings(
    field: &'static str,
    values_field: &'static str,
    v: Option<&Value>,
) -> Result<(), EventError> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(o)) => o
            .values()
            .find(|v| !v.is_string())
            .map_or(Ok(()), |v| Err(wrong(values_field, "a string", Some(v)))),
        other => Err(wrong(field, "an object of strings", other)),
    }
}

fn check_shape(event: &Value) -> Result<(), EventError> {
    let top = object("the event", Some(event))?;
    optional_string("rawPath", top.get("rawPath"))?;
    optional_string("rawQueryString", top.get("rawQueryString"))?;
    optional_string("body", top.get("body"))?;
    optional_strings("headers", "each value of headers", top.get("headers"))?;
    optional_strings(
        "pathParameters",
        "each value of pathParameters",
        top.get("pathParameters"),
    )?;
    match top.get("isBase64Encoded") {
        None | Some(Value::Bool(_)) => {}
        other => return Err(wrong("isBase64Encoded", "a boolean", other)),
    }
    let context = object("requestContext", top.get("requestContext"))?;
    let http = object("requestContext.http", context.get("http"))?;
    optional_string("requestContext.http.path", http.get("path"))?;
    match http.get("method") {
        Some(Value::String(m)) if Method::from_bytes(m.as_bytes()).is_ok() => Ok(()),
        Some(Value::String(_)) => Err(EventError {
            field: "requestContext.http.method",
            expected: "an HTTP method",
            found: "a string that is not one",
        }),
        other => Err(wrong("requestContext.http.method", "a string", other)),
    }
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

/// Bounds on the headers the adapter copies from an event. API Gateway's HTTP API caps the
/// request line and header values at 10240 bytes in all ("Total combined size of request line
/// and header values", not adjustable: Quotas for configuring and running an HTTP API,
/// https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html) and
/// documents no count; these bounds, 100 headers (as hyper serves the local server) and 32 KiB
/// of names and values, are met only by events API Gateway does not deliver (direct invokes,
/// other event sources). Over them an event is answered 431 (Stream's code 24).
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The event's headers as an `http` map, within [`MAX_HEADERS`] and [`MAX_HEADER_BYTES`],
/// counted before anything is built; names or values `http` cannot hold are dropped, and
/// names that differ only in case are joined into one header.
fn header_map(headers: Option<&HashMap<String, String>>) -> Result<HeaderMap, ApiError> {
    let Some(headers) = headers else {
        return Ok(HeaderMap::new());
    };
    if headers.len() > MAX_HEADERS {
        return Err(ApiError::HeadersTooLarge(format!(
            "more than {MAX_HEADERS} headers"
        )));
    }
    let bytes: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge(format!(
            "more than {MAX_HEADER_BYTES} bytes of header names and values"
        )));
    }
    let too_many = |_| ApiError::HeadersTooLarge(format!("more than {MAX_HEADERS} headers"));
    // API Gateway (payload 2.0) lowercases every name: then no two names are one header, and
    // each goes in as it is, without the grouping below (the same map, fewer allocations).
    if headers
        .keys()
        .all(|name| !name.bytes().any(|b| b.is_ascii_uppercase()))
    {
        let mut map = HeaderMap::try_with_capacity(headers.len()).map_err(too_many)?;
        for (name, value) in headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                map.try_append(name, value).map_err(too_many)?;
            }
        }
        return Ok(map);
    }
    // Names that differ only in case are one header, and the event's map iterates in no fixed
    // order, so which spelling won used to change from run to run. API Gateway (payload 2.0)
    // lowercases names and combines repeated headers with commas; an event from elsewhere
    // holding `authorization` and `Authorization` is read the same way: the values joined with
    // "," in the byte order of the names as written. Joined, two tokens are no token (401,
    // code 5), every time. Refusing such an event (400) would also be deterministic, but it
    // would answer differently from the same request through API Gateway.
    let mut grouped: BTreeMap<String, Vec<(&str, &str)>> = BTreeMap::new();
    for (name, value) in headers {
        if HeaderValue::from_str(value).is_ok() {
            grouped
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push((name, value));
        }
    }
    let mut map = HeaderMap::try_with_capacity(grouped.len()).map_err(too_many)?;
    for (name, mut spellings) in grouped {
        spellings.sort_unstable();
        let values: Vec<&str> = spellings.iter().map(|(_, v)| *v).collect();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&values.join(",")),
        ) {
            map.try_append(name, value).map_err(too_many)?;
        }
    }
    Ok(map)
}

/// Adapts one API Gateway request to the domain handler.
pub async fn handle<S: Storage>(
    app: &Callbridge<S>,
    operation: Operation,
    event: &HttpEvent,
) -> ApiResponse {
    let started = std::time::Instant::now();
    let path = event
        .raw_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .or(event.request_context.http.path.as_deref())
        .unwrap_or("");
    let headers = match header_map(event.headers.as_ref()) {
        Ok(h) => h,
        Err(e) => return app.refuse(&event.request_context.http.method, path, e, started),
    };
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
        move |event: LambdaEvent<Box<RawValue>>| {
            let app = Arc::clone(&app);
            // Boxed too, for the same limit: one allocation per invocation.
            async move {
                // The runtime checks that the payload is JSON (a syntax error's message quotes
                // no value) and hands its text over; read_event reads it as an HTTP API event.
                let LambdaEvent { payload, context } = event;
                let payload = read_event(payload.get()).map_err(|e| {
                    tracing::warn!(error = %e, "invocation refused");
                    lambda_runtime::Diagnostic::from(e)
                })?;
                let event = LambdaEvent::new(payload, context);
                let response = Box::pin(invoke(&app, operation, metrics, &event)).await;
                Ok::<_, lambda_runtime::Diagnostic>(response)
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

/// Entry point of the `end-call` function: reads the call and updates it (its IAM policy grants
/// `GetItem` and `UpdateItem`).
pub async fn run_end_call() -> Result<(), Error> {
    let (config, store) = init().await?;
    run_with(Operation::EndCall, config, store).await
}

/// Entry point of the `provider-events` function: 100ms's webhooks and Agora's NCS events
/// (`POST /webhooks/100ms`, `POST /webhooks/agora`); reads calls and adds events to them.
pub async fn run_provider_events() -> Result<(), Error> {
    let (config, store) = init().await?;
    run_with(Operation::ProviderEvent, config, store).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({"rawPath": "/calls/x", "headers": {"authorization": "t"},
               "requestContext": {"http": {"method": "POST", "path": "/calls/x"}}})
    }

    #[test]
    fn a_refused_event_names_the_field_never_the_value() {
        const SECRET: &str = "eyJhbGciOiJIUzI1NiJ9.secret-part";
        type Edit = fn(&mut Value);
        let cases: &[(Edit, &str)] = &[
            (
                |v| v["headers"] = json!(format!("authorization: {SECRET}")),
                "headers must be an object of strings, not a string",
            ),
            (
                |v| v["headers"] = json!({"authorization": [SECRET]}),
                "each value of headers must be a string, not an array",
            ),
            (
                |v| v["pathParameters"] = json!(SECRET),
                "pathParameters must be an object of strings, not a string",
            ),
            (
                |v| v["rawPath"] = json!({"p": SECRET}),
                "rawPath must be a string, not an object",
            ),
            (
                |v| v["rawQueryString"] = json!(7),
                "rawQueryString must be a string, not a number",
            ),
            (
                |v| v["body"] = json!([SECRET]),
                "body must be a string, not an array",
            ),
            (
                |v| v["isBase64Encoded"] = json!(SECRET),
                "isBase64Encoded must be a boolean, not a string",
            ),
            (
                |v| v["isBase64Encoded"] = Value::Null,
                "isBase64Encoded must be a boolean, not null",
            ),
            (
                |v| v["requestContext"] = json!(SECRET),
                "requestContext must be an object, not a string",
            ),
            (
                |v| {
                    v.as_object_mut().unwrap().remove("requestContext");
                },
                "requestContext must be an object, not missing",
            ),
            (
                |v| v["requestContext"]["http"] = json!(SECRET),
                "requestContext.http must be an object, not a string",
            ),
            (
                |v| v["requestContext"]["http"]["method"] = json!(format!("P T {SECRET}")),
                "requestContext.http.method must be an HTTP method, not a string that is not one",
            ),
            (
                |v| v["requestContext"]["http"]["method"] = Value::Null,
                "requestContext.http.method must be a string, not null",
            ),
            (
                |v| v["requestContext"]["http"]["path"] = json!(1),
                "requestContext.http.path must be a string, not a number",
            ),
            (
                |v| *v = json!(SECRET),
                "the event must be an object, not a string",
            ),
        ];
        for (edit, expected) in cases {
            let mut v = minimal();
            edit(&mut v);
            let err = parse_event(v.clone()).expect_err(expected);
            let text = format!(
                "{err} {err:?} {:?}",
                lambda_runtime::Diagnostic::from(err.clone())
            );
            assert!(text.contains(expected), "{text}");
            assert!(!text.contains("secret-part"), "{text}");
        }
    }

    #[test]
    fn spellings_of_one_header_are_joined_in_the_order_of_their_names() {
        let headers: HashMap<String, String> = [
            ("x-a", "lower"),
            ("X-A", "upper"),
            ("X-a", "mixed"),
            ("x-b", "alone"),
            ("X-B", "bad\u{0}value"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let map = header_map(Some(&headers)).unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map["x-a"], "upper,mixed,lower");
        // A value http cannot hold is dropped, not joined.
        assert_eq!(map["x-b"], "alone");
    }

    #[test]
    fn lowercase_names_go_in_as_they_are() {
        let headers: HashMap<String, String> = [
            ("authorization", "t"),
            ("stream-auth-type", "jwt"),
            ("x-bad", "bad\u{0}value"),
            ("x-empty", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let map = header_map(Some(&headers)).unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(map["authorization"], "t");
        assert_eq!(map["stream-auth-type"], "jwt");
        assert_eq!(map["x-empty"], "");
        assert!(map.get("x-bad").is_none());
        // The same headers with one name in capitals: the same map.
        let mut mixed = headers.clone();
        let t = mixed.remove("authorization").unwrap();
        mixed.insert("Authorization".into(), t);
        assert_eq!(header_map(Some(&mixed)).unwrap(), map);
    }

    /// An event's fields, its maps in the order of their keys.
    fn canonical(e: &HttpEvent) -> String {
        fn sorted(m: &Option<HashMap<String, String>>) -> Option<BTreeMap<&String, &String>> {
            m.as_ref().map(|m| m.iter().collect())
        }
        format!(
            "{:?} {:?} {:?} {:?} {:?} {} {:?} {:?} {:?}",
            e.raw_path,
            e.raw_query_string,
            sorted(&e.headers),
            sorted(&e.path_parameters),
            e.body,
            e.is_base64_encoded,
            e.request_context.http.method,
            e.request_context.http.path,
            e.request_context.request_id
        )
    }

    #[test]
    fn read_event_answers_as_parse_event() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/events");
        let mut texts: Vec<String> = std::fs::read_dir(&fixtures)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect();
        assert!(texts.len() > 30);
        texts.extend(
            [
                r#"{"requestContext":{"http":{"method":"POST"}},"rawPath":"/a","rawPath":"/b"}"#,
                r#"{"requestContext":{"http":{"method":"POST"}},"headers":{"a":"1","a":"2"}}"#,
                r#"{"requestContext":{"http":{"method":"GET","path":null}},"body":null}"#,
                r#"{"requestContext":{"http":{"method":"P T"}}}"#,
                r#"{"requestContext":{"http":{"method":"POST"},"requestId":7}}"#,
                r#"{"requestContext":{"http":{"method":"POST"}},"isBase64Encoded":null}"#,
                r#"{"requestContext":{"http":{"method":"POST"}},"headers":{"a":1}}"#,
                r#"[1,2]"#,
                r#""text""#,
            ]
            .map(String::from),
        );
        let mut v = minimal();
        v["nested"] = json!([[[[{"deep": [1, {"x": null}]}]]]]);
        texts.push(v.to_string());
        for text in &texts {
            let direct = read_event(text);
            let via_value = parse_event(serde_json::from_str(text).unwrap());
            match (direct, via_value) {
                (Ok(a), Ok(b)) => assert_eq!(canonical(&a), canonical(&b), "{text}"),
                (Err(a), Err(b)) => assert_eq!(a, b, "{text}"),
                (a, b) => panic!("{text}: {a:?} / {b:?}"),
            }
        }
    }

    #[test]
    fn what_the_check_accepts_deserialises() {
        let mut nulls = minimal();
        for f in [
            "rawPath",
            "rawQueryString",
            "headers",
            "pathParameters",
            "body",
        ] {
            nulls[f] = Value::Null;
        }
        nulls["requestContext"]["http"]["path"] = Value::Null;
        let bare = json!({"requestContext": {"http": {"method": "GET"}}, "unknown": [1]});
        for v in [minimal(), nulls, bare] {
            let e = parse_event(v.clone()).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert!(
                e.request_context.http.method == Method::POST
                    || e.request_context.http.method == Method::GET
            );
        }
    }
}
