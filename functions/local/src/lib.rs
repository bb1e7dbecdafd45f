//! The local development server: both handlers in one process, on the in-memory store (or
//! DynamoDB when a table is configured), over plain HTTP on loopback.

use bytes::Bytes;
use callbridge::api::{ApiRequest, MAX_BODY_BYTES, error_response};
use callbridge::jwt;
use callbridge::store::CallStore;
use callbridge::{ApiError, Callbridge, Operation};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Demo settings used for every variable left unset when `STREAM_API_KEY` is unset.
pub const SANDBOX_DEFAULTS: &[(&str, &str)] = &[
    ("STREAM_API_KEY", "callbridge-sandbox-key"),
    (
        "STREAM_API_SECRET",
        "callbridge-sandbox-secret-not-for-production",
    ),
    ("AGORA_APP_ID", "00000000000000000000000000000000"),
    ("AGORA_APP_CERTIFICATE", "11111111111111111111111111111111"),
    ("CALLBRIDGE_ALLOW_DEV_TOKENS", "true"),
];

/// Settings for the local server: the environment, or the sandbox when no Stream credentials
/// are set. Returns the lookup and the names of the variables the sandbox filled in.
pub fn local_lookup(
    env: impl Fn(&str) -> Option<String>,
) -> (impl Fn(&str) -> Option<String>, Vec<&'static str>) {
    let sandbox = env("STREAM_API_KEY").is_none_or(|v| v.trim().is_empty());
    let mut filled = Vec::new();
    let mut values: Vec<(&'static str, String)> = Vec::new();
    for (k, v) in SANDBOX_DEFAULTS {
        let unset = env(k).is_none_or(|x| x.trim().is_empty());
        if sandbox && unset {
            filled.push(*k);
            values.push((k, v.to_string()));
        }
    }
    let lookup = move |k: &str| {
        values
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| env(k))
    };
    (lookup, filled)
}

/// A Stream-style user token for `user_id`, signed with `secret` (printed by the sandbox).
pub fn user_token(user_id: &str, secret: &str) -> String {
    jwt::sign_hs256(&serde_json_user(user_id), secret.as_bytes())
}

fn serde_json_user(user_id: &str) -> std::collections::BTreeMap<&'static str, &str> {
    std::collections::BTreeMap::from([("user_id", user_id)])
}

/// Serves both endpoints on `listener` until `shutdown` resolves, then drains open connections
/// (at most 10 seconds).
pub async fn serve<S: CallStore>(
    listener: TcpListener,
    app: Arc<Callbridge<S>>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
                let app = Arc::clone(&app);
                let conn = http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |req| {
                            let app = Arc::clone(&app);
                            async move { Ok::<_, std::convert::Infallible>(handle(&app, req).await) }
                        }),
                    );
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection closed with an error");
                    }
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

async fn handle<S: CallStore>(
    app: &Callbridge<S>,
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
        r
    } else {
        match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => {
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
            Err(e) => {
                let err = if e.is::<http_body_util::LengthLimitError>() {
                    ApiError::PayloadTooLarge {
                        limit: MAX_BODY_BYTES,
                    }
                } else {
                    ApiError::input("request body could not be read")
                };
                let op = if parts.uri.path().contains("/channels/") {
                    Operation::CreateCall
                } else {
                    Operation::GetCallToken
                };
                let duration = format!("{:.2}ms", started.elapsed().as_secs_f64() * 1000.0);
                error_response(op, &err, duration)
            }
        }
    };
    response
        .headers_mut()
        .insert("access-control-allow-origin", HeaderValue::from_static("*"));
    response.map(|b| Full::new(Bytes::from(b)))
}
