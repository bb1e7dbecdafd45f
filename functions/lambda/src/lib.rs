//! Runs a Callbridge handler as an AWS Lambda function behind an API Gateway HTTP API.
//! Everything here is adaptation: API Gateway v2 events in, handler responses out.

mod event;
mod headers;
mod init;
mod metrics;

pub use event::*;
pub use headers::*;
pub use init::*;
pub use metrics::*;

use base64::Engine as _;
pub use callbridge::Operation;
use callbridge::api::{ApiRequest, ApiResponse, PathParams};
use callbridge::store::{ReadOnly, Storage};
use callbridge::{Callbridge, Config};
pub use lambda_runtime::Error;
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::value::RawValue;
use std::sync::Arc;
use tracing::Instrument as _;

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

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;
    use serde_json::{Value, json};
    use std::collections::{BTreeMap, HashMap};

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
