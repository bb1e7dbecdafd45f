//! The local development server: both handlers in one process, on the in-memory store (or
//! DynamoDB when a table is configured), over plain HTTP on loopback.

use bytes::Bytes;
use callbridge::api::{
    AGORA_EVENTS_ROUTE, ApiRequest, CREATE_CALL_ROUTE, END_CALL_ROUTE, GET_CALL_TOKEN_ROUTE,
    HMS_EVENTS_ROUTE, MAX_BODY_BYTES, log_request, route_of,
};
use callbridge::hs256;
use callbridge::store::Storage;
use callbridge::{ApiError, Callbridge, Operation};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;

mod refusals;
use refusals::{HYPER_MAX_URI_BYTES, Refusals, Render, UNREAD_METHOD};

/// Demo settings of the sandbox, in groups. A group is filled in only when every variable in
/// it is unset, and the sandbox only starts when the Stream credentials are unset: a
/// half-configured environment (say, a real `STREAM_API_SECRET` without its key) fails on the
/// missing variable instead of running a sandbox beside a real secret.
pub const SANDBOX_GROUPS: &[&[(&str, &str)]] = &[
    &[
        ("STREAM_API_KEY", "callbridge-sandbox-key"),
        (
            "STREAM_API_SECRET",
            "callbridge-sandbox-secret-not-for-production",
        ),
    ],
    &[
        ("AGORA_APP_ID", "00000000000000000000000000000000"),
        ("AGORA_APP_CERTIFICATE", "11111111111111111111111111111111"),
    ],
    &[("CALLBRIDGE_ALLOW_DEV_TOKENS", "true")],
    // The sandbox's demo key is no Stream app: nobody to ask who is a member.
    &[("CALLBRIDGE_MEMBERSHIP", "off")],
];

/// Settings for the local server: the environment (empty values count as unset), or the
/// sandbox when no Stream credentials are set. Returns the lookup and the names of the
/// variables the sandbox filled in (empty outside the sandbox).
pub fn local_lookup(
    env: impl Fn(&str) -> Option<String>,
) -> (impl Fn(&str) -> Option<String>, Vec<&'static str>) {
    let env = move |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let all_unset = |group: &[(&str, &str)]| group.iter().all(|(k, _)| env(k).is_none());
    let mut values: Vec<(&'static str, &'static str)> = Vec::new();
    if all_unset(SANDBOX_GROUPS[0]) {
        for group in SANDBOX_GROUPS {
            if all_unset(group) {
                values.extend_from_slice(group);
            }
        }
    }
    let filled = values.iter().map(|(k, _)| *k).collect();
    let lookup = move |k: &str| {
        values
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
            .or_else(|| env(k))
    };
    (lookup, filled)
}

/// A Stream-style user token for `user_id`, signed with `secret` (printed by the sandbox).
pub fn user_token(user_id: &str, secret: &str) -> String {
    hs256::sign_hs256(&serde_json_user(user_id), secret.as_bytes())
}

fn serde_json_user(user_id: &str) -> std::collections::BTreeMap<&'static str, &str> {
    std::collections::BTreeMap::from([("user_id", user_id)])
}

/// The Lambda function (the `[[bin]]` of functions/create-call, functions/get-call-token or
/// functions/end-call) that serves `op` in the cloud.
pub fn function_name(op: Operation) -> &'static str {
    match op {
        Operation::CreateCall => "create-call",
        Operation::GetCallToken => "get-call-token",
        Operation::EndCall => "end-call",
        Operation::ProviderEvent => "provider-events",
    }
}

/// `callbridge-local describe`: what the code expects of its deployment (routes, environment
/// variables, DynamoDB table and IAM actions), as one JSON document for
/// scripts/check_template.py. Every value comes from the `callbridge` crate.
pub fn describe() -> serde_json::Value {
    use callbridge::store::dynamodb;
    let operations = [
        (
            Operation::CreateCall,
            CREATE_CALL_ROUTE,
            dynamodb::CREATE_CALL_ACTIONS,
        ),
        (
            Operation::GetCallToken,
            GET_CALL_TOKEN_ROUTE,
            dynamodb::GET_CALL_TOKEN_ACTIONS,
        ),
        (
            Operation::EndCall,
            END_CALL_ROUTE,
            dynamodb::END_CALL_ACTIONS,
        ),
        // One function serves both providers' events.
        (
            Operation::ProviderEvent,
            HMS_EVENTS_ROUTE,
            dynamodb::PROVIDER_EVENTS_ACTIONS,
        ),
        (
            Operation::ProviderEvent,
            AGORA_EVENTS_ROUTE,
            dynamodb::PROVIDER_EVENTS_ACTIONS,
        ),
    ];
    let routes: Vec<_> = operations
        .iter()
        .map(|(op, path, _)| {
            serde_json::json!({
                "method": Method::POST.as_str(),
                "path": path,
                "operation": op.name(),
                "function": function_name(*op),
            })
        })
        .collect();
    let actions: serde_json::Map<_, _> = operations
        .iter()
        .map(|(op, _, actions)| (function_name(*op).to_string(), serde_json::json!(actions)))
        .collect();
    // The dimensions of each metric as the Lambda functions write it (FunctionName first).
    let metrics: serde_json::Map<_, _> = callbridge::telemetry::METRICS
        .iter()
        .map(|(name, _, labels)| {
            let dims: Vec<&str> = std::iter::once("FunctionName")
                .chain(labels.iter().copied())
                .collect();
            (name.to_string(), serde_json::json!(dims))
        })
        .collect();
    serde_json::json!({
        "routes": routes,
        "variables": callbridge::config::VARIABLES,
        "metrics": {
            "namespace": callbridge::telemetry::NAMESPACE,
            "dimensions": metrics,
        },
        "dynamodb": {
            "key": dynamodb::KEY_ATTRIBUTE,
            "ttl_attribute": dynamodb::TTL_ATTRIBUTE,
            "actions": actions,
        },
    })
}

/// How long clients may take and how many are served at once.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Time a request's headers have to arrive (also the idle time allowed between requests on
    /// a kept-alive connection); hyper closes the connection after it, without an answer.
    pub header_timeout: Duration,
    /// Time a request's body has to arrive in full, counted from the end of its headers; after
    /// it the request is answered 408 (Stream's code 23) and the connection closed.
    pub body_timeout: Duration,
    /// Connections served at once. Further ones wait in the listen backlog ([`listen`]; the kernel
    /// completes their handshake; the server accepts them as places free up), so a burst of
    /// clients that stall cannot take every file descriptor from the ones that follow.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 256,
        }
    }
}

/// Connections the listen backlog holds (the kernel caps it at `net.core.somaxconn`, 4096 on
/// current Linux): beyond the [`ServeOptions::max_connections`] served at once, a burst of
/// clients waits there with its handshake done, instead of having its SYNs dropped and
/// retransmitted seconds later, as with the 128 of tokio's `TcpListener::bind`.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` with [`LISTEN_BACKLOG`] (and SO_REUSEADDR, as `TcpListener::bind`).
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves both endpoints on `listener` until `shutdown` resolves, then drains open connections
/// (at most 10 seconds), with the default [`ServeOptions`].
pub async fn serve<S: Storage>(
    listener: TcpListener,
    app: Arc<Callbridge<S>>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, app, ServeOptions::default(), shutdown).await
}

/// [`serve`] with these options.
pub async fn serve_with<S: Storage>(
    listener: TcpListener,
    app: Arc<Callbridge<S>>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let options = Arc::new(options);
    let render: Render = {
        let app = Arc::clone(&app);
        Arc::new(move |status, date| hyper_refusal(&app, status, date))
    };
    let places = Arc::new(Semaphore::new(
        options.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A place first, then a connection: while every place is taken, new connections wait
        // in the listen backlog rather than being accepted and left unserved.
        let place = tokio::select! {
            place = Arc::clone(&places).acquire_owned() => place,
            _ = &mut shutdown => break,
        };
        let Ok(place) = place else { break };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (app, opts) = (Arc::clone(&app), Arc::clone(&options));
                let conn = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(options.header_timeout)
                    // One flat buffer per write: how Refusals finds hyper's own answers.
                    .writev(false)
                    .serve_connection(
                        TokioIo::new(Refusals::new(stream, Arc::clone(&render))),
                        service_fn(move |req| {
                            let (app, opts) = (Arc::clone(&app), Arc::clone(&opts));
                            async move {
                                Ok::<_, std::convert::Infallible>(handle(&app, &opts, req).await)
                            }
                        }),
                    );
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection closed with an error");
                    }
                    drop(place);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing them");
    }
}

/// The answer replacing hyper's own (empty) one to a request it could not parse: Stream's error
/// shape, logged like every other answer. The method and path are unknown (the request line
/// may be what failed), so the log names neither, and the message names Create Call.
fn hyper_refusal<S: Storage>(
    app: &Callbridge<S>,
    status: StatusCode,
    date: Option<&[u8]>,
) -> Vec<u8> {
    let started = std::time::Instant::now();
    let err = match status {
        StatusCode::URI_TOO_LONG => ApiError::UriTooLong {
            limit: HYPER_MAX_URI_BYTES,
        },
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ApiError::HeadersTooLarge(
            "more than 100 headers, or more than 408 KiB of request line and headers".into(),
        ),
        _ => ApiError::input(
            "the request is not valid HTTP/1.1 (its request line, a header or its body framing)",
        ),
    };
    let response = app.refuse(&UNREAD_METHOD, "", err, started);
    let mut out = format!("HTTP/1.1 {}\r\n", response.status()).into_bytes();
    for (name, value) in response.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"access-control-allow-origin: *\r\nconnection: close\r\n");
    out.extend_from_slice(format!("content-length: {}\r\n", response.body().len()).as_bytes());
    if let Some(date) = date {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(response.body());
    out
}

/// The codings of `name`'s values, lowercased (an unreadable value is a coding of its own).
fn codings(headers: &HeaderMap, name: http::header::HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect()
}

/// A request whose body the server cannot decode, refused before the handler reads it.
///
/// Both are input errors (400, Stream's code 4), the client's to fix, like hyper's own refusal
/// of a Transfer-Encoding that does not end in `chunked`. RFC 9112 6.1 suggests 501 for an
/// unknown transfer coding and RFC 9110 15.5.16 allows 415 for a content coding; Stream has
/// codes for neither, and no client input is answered with a 5xx here.
fn undecodable_body(headers: &HeaderMap) -> Option<ApiError> {
    // hyper decodes `chunked` alone, and lets a request through when `chunked` is merely the
    // last coding (`gzip, chunked`), handing over the still-gzipped bytes.
    let transfer = codings(headers, http::header::TRANSFER_ENCODING);
    if !transfer.is_empty() && transfer != ["chunked"] {
        return Some(ApiError::input(
            "Transfer-Encoding other than chunked is not supported; send the body uncompressed",
        ));
    }
    // Nothing decodes a content coding: the JSON parser would get compressed bytes.
    if codings(headers, http::header::CONTENT_ENCODING)
        .iter()
        .any(|c| c != "identity")
    {
        return Some(ApiError::input(
            "Content-Encoding other than identity is not supported; send the body uncompressed",
        ));
    }
    None
}

async fn handle<S: Storage>(
    app: &Callbridge<S>,
    options: &ServeOptions,
    req: hyper::Request<Incoming>,
) -> Response<Full<Bytes>> {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let mut response = if parts.method == Method::OPTIONS {
        let mut r = Response::new(Vec::new());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("POST, OPTIONS"),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static(
                "authorization, content-type, stream-auth-type, x-stream-client, x-client-request-id",
            ),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
        log_request(
            &parts.method,
            route_of(parts.uri.path()),
            r.status(),
            0,
            started,
        );
        r
    } else if let Some(err) = undecodable_body(&parts.headers) {
        // The body is not read, so the connection cannot carry another request.
        let mut r = app.refuse(&parts.method, parts.uri.path(), err, started);
        r.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        r
    } else {
        // The body's whole arrival is bounded, not each read: a client trickling a byte now
        // and then holds the connection no longer than one that sends nothing.
        let body = Limited::new(body, MAX_BODY_BYTES).collect();
        match tokio::time::timeout(options.body_timeout, body).await {
            Ok(Ok(collected)) => {
                let body = collected.to_bytes();
                app.handle(ApiRequest {
                    method: &parts.method,
                    path: parts.uri.path(),
                    params: None,
                    operation: None,
                    query: parts.uri.query(),
                    headers: &parts.headers,
                    body: &body,
                })
                .await
            }
            Ok(Err(e)) => {
                let err = if e.is::<http_body_util::LengthLimitError>() {
                    ApiError::PayloadTooLarge {
                        limit: MAX_BODY_BYTES,
                    }
                } else {
                    ApiError::input("request body could not be read")
                };
                app.refuse(&parts.method, parts.uri.path(), err, started)
            }
            // Stream's own Request Timeout Error (408, code 23), not an input error (4): the
            // request was not wrong, it did not arrive. The rest of the body may still come, so
            // the connection cannot carry another request: it is closed after the answer.
            Err(_) => {
                let err = ApiError::RequestTimeout {
                    limit_secs: options.body_timeout.as_secs_f64().ceil() as u64,
                };
                let mut r = app.refuse(&parts.method, parts.uri.path(), err, started);
                r.headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
        }
    };
    response
        .headers_mut()
        .insert("access-control-allow-origin", HeaderValue::from_static("*"));
    response.map(|b| Full::new(Bytes::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use callbridge::Config;
    use std::collections::HashMap;

    fn lookup_with(
        vars: &[(&str, &str)],
    ) -> (impl Fn(&str) -> Option<String> + use<>, Vec<&'static str>) {
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        local_lookup(move |k| env.get(k).cloned())
    }

    #[test]
    fn nothing_set_is_the_whole_sandbox() {
        let (lookup, filled) = lookup_with(&[]);
        let all: Vec<&str> = SANDBOX_GROUPS
            .iter()
            .flat_map(|g| g.iter().map(|(k, _)| *k))
            .collect();
        assert_eq!(filled, all);
        let config = Config::from_lookup(lookup).unwrap();
        assert!(config.allow_dev_tokens);
        assert_eq!(config.api_key, "callbridge-sandbox-key");
    }

    #[test]
    fn empty_values_count_as_unset() {
        let (lookup, filled) = lookup_with(&[("STREAM_API_KEY", ""), ("CALLBRIDGE_PORT", " ")]);
        assert!(filled.contains(&"STREAM_API_KEY"));
        assert_eq!(lookup("CALLBRIDGE_PORT"), None);
    }

    #[test]
    fn a_half_set_stream_configuration_is_an_error_not_a_sandbox() {
        for (set, missing) in [
            ("STREAM_API_SECRET", "STREAM_API_KEY"),
            ("STREAM_API_KEY", "STREAM_API_SECRET"),
        ] {
            let (lookup, filled) = lookup_with(&[(set, "real-value-from-the-team")]);
            assert!(filled.is_empty(), "{filled:?}");
            assert_eq!(lookup("CALLBRIDGE_ALLOW_DEV_TOKENS"), None);
            let err = Config::from_lookup(lookup).unwrap_err();
            assert_eq!(err.var, missing);
        }
    }

    #[test]
    fn real_provider_credentials_are_kept_in_the_sandbox() {
        let (lookup, filled) = lookup_with(&[
            ("AGORA_APP_ID", "970CA35de60c44645bbae8a215061b33"),
            ("AGORA_APP_CERTIFICATE", "5CFd2fd1755d40ecb72977518be15d3b"),
            ("CALLBRIDGE_ALLOW_DEV_TOKENS", "false"),
        ]);
        assert_eq!(
            filled,
            [
                "STREAM_API_KEY",
                "STREAM_API_SECRET",
                "CALLBRIDGE_MEMBERSHIP"
            ]
        );
        assert_eq!(
            lookup("AGORA_APP_ID").as_deref(),
            Some("970CA35de60c44645bbae8a215061b33")
        );
        assert!(!Config::from_lookup(lookup).unwrap().allow_dev_tokens);
        // Half of the Agora pair set: not filled, so the start names the other half.
        let (lookup, filled) = lookup_with(&[("AGORA_APP_ID", "970CA35de60c44645bbae8a215061b33")]);
        assert!(!filled.contains(&"AGORA_APP_CERTIFICATE"));
        assert_eq!(
            Config::from_lookup(lookup).unwrap_err().var,
            "AGORA_APP_CERTIFICATE"
        );
    }

    #[test]
    fn describe_states_the_code_facts() {
        let d = describe();
        assert_eq!(
            d["routes"],
            serde_json::json!([
                {"method": "POST", "path": "/channels/{type}/{id}/call",
                 "operation": "CreateCall", "function": "create-call"},
                {"method": "POST", "path": "/calls/{id}",
                 "operation": "GetCallToken", "function": "get-call-token"},
                {"method": "POST", "path": "/calls/{id}/end",
                 "operation": "EndCall", "function": "end-call"},
                {"method": "POST", "path": "/webhooks/100ms",
                 "operation": "ProviderEvent", "function": "provider-events"},
                {"method": "POST", "path": "/webhooks/agora",
                 "operation": "ProviderEvent", "function": "provider-events"},
            ])
        );
        assert_eq!(
            d["variables"],
            serde_json::json!(callbridge::config::VARIABLES)
        );
        assert_eq!(
            d["dynamodb"],
            serde_json::json!({
                "key": "pk",
                "ttl_attribute": "expires_at",
                "actions": {
                    "create-call": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    "get-call-token": ["dynamodb:GetItem"],
                    "end-call": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                    "provider-events": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
                },
            })
        );
    }

    #[test]
    fn function_names_are_the_binaries_of_the_function_crates() {
        for op in [
            Operation::CreateCall,
            Operation::GetCallToken,
            Operation::EndCall,
            Operation::ProviderEvent,
        ] {
            let name = function_name(op);
            let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(name)
                .join("Cargo.toml");
            let text = std::fs::read_to_string(&manifest).unwrap();
            let bin = text.split("[[bin]]").nth(1).expect("a [[bin]] section");
            assert!(
                bin.contains(&format!("name = \"{name}\"")),
                "{}: no [[bin]] {name}",
                manifest.display()
            );
        }
    }
}
