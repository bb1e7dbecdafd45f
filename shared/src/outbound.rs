//! The one client for outbound HTTPS (100ms's REST API; Stream Chat's): hyper with rustls on
//! aws-lc-rs, the TLS stack the AWS SDK already links, and the system's trust roots. Built once
//! per process; clones share its connection pool.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why the client could not be built: the process must not start without it.
#[derive(Debug, thiserror::Error)]
#[error(
    "no trusted CA certificates could be loaded from the system store ({0}); HTTPS to the providers would fail. Install the CA bundle (ca-certificates) or point SSL_CERT_FILE at one"
)]
pub struct NoTrustRoots(String);

/// A client that connects within `connect_timeout`.
pub fn https_client(connect_timeout: Duration) -> Result<HttpsClient, NoTrustRoots> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.enforce_http(false);
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| NoTrustRoots(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https))
}

/// One request: the status, the headers and the whole body within `limit`, or why there was
/// no answer (no connection, a dropped one, a cut-off body, no answer in time).
pub async fn exchange(
    client: &HttpsClient,
    req: http::Request<Full<Bytes>>,
    limit: Duration,
) -> Result<(u16, http::HeaderMap, Bytes), String> {
    let exchange = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let bytes = body
            .collect()
            .await
            .map_err(|e| format!("answer cut off: {e}"))?
            .to_bytes();
        Ok((status, parts.headers, bytes))
    };
    match tokio::time::timeout(limit, exchange).await {
        Err(_) => Err(format!("no answer within {limit:?}")),
        Ok(r) => r,
    }
}
