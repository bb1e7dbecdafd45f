//! The API Gateway HTTP API event (payload format 2.0) as Callbridge reads it, and the response
//! it answers with.

use base64::Engine as _;
use callbridge::api::ApiResponse;
use http::Method;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

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

pub(crate) fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
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

pub(crate) fn method<'de, D: Deserializer<'de>>(d: D) -> Result<Method, D::Error> {
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

pub(crate) fn kind(v: Option<&Value>) -> &'static str {
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

pub(crate) fn wrong(
    field: &'static str,
    expected: &'static str,
    found: Option<&Value>,
) -> EventError {
    EventError {
        field,
        expected,
        found: kind(found),
    }
}

pub(crate) fn object<'a>(
    field: &'static str,
    v: Option<&'a Value>,
) -> Result<&'a serde_json::Map<String, Value>, EventError> {
    match v {
        Some(Value::Object(o)) => Ok(o),
        other => Err(wrong(field, "an object", other)),
    }
}

pub(crate) fn optional_string(field: &'static str, v: Option<&Value>) -> Result<(), EventError> {
    match v {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        other => Err(wrong(field, "a string", other)),
    }
}

/// An optional object of strings (`values_field` names its values in a refusal).
pub(crate) fn optional_strings(
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

pub(crate) fn check_shape(event: &Value) -> Result<(), EventError> {
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
