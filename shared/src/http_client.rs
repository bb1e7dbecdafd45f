//! The one client for outbound HTTPS (100ms's REST API; Stream Chat's): hyper with rustls on
//! aws-lc-rs, the TLS stack the AWS SDK already links; and the DynamoDB client's HTTP client on
//! the same stack. Built once per process; clones share their connection pools.
//!
//! Trust roots are compiled in, so that starting reads and parses no certificate store (the
//! system's is a few hundred files): Mozilla's (webpki-roots) for 100ms and Stream, Amazon Trust
//! Services' for AWS. `SSL_CERT_FILE` or `SSL_CERT_DIR`, when set, switch both clients to the
//! system's store instead (a corporate CA, a proxy that re-signs).

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
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
    "no trusted CA certificates could be loaded from the system store that SSL_CERT_FILE / SSL_CERT_DIR name ({0}); HTTPS to the providers would fail. Point them at a CA bundle, or unset both to use the compiled-in roots"
)]
pub struct NoTrustRoots(String);

/// Where the trust roots of outbound HTTPS come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustRoots {
    /// Compiled into the binary: nothing to read or parse at start.
    Compiled,
    /// The system's store, as `SSL_CERT_FILE` / `SSL_CERT_DIR` name it.
    System,
}

impl TrustRoots {
    pub fn from_env() -> Self {
        let set = |name| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        Self::from_vars(set("SSL_CERT_FILE"), set("SSL_CERT_DIR"))
    }

    fn from_vars(cert_file: bool, cert_dir: bool) -> Self {
        if cert_file || cert_dir {
            TrustRoots::System
        } else {
            TrustRoots::Compiled
        }
    }
}

/// Amazon Trust Services' roots, which every AWS endpoint's certificate chains to.
pub const AWS_ROOTS_PEM: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// A client that connects within `connect_timeout`.
pub fn https_client(connect_timeout: Duration) -> Result<HttpsClient, NoTrustRoots> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(connect_timeout));
    http.enforce_http(false);
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match TrustRoots::from_env() {
        TrustRoots::Compiled => builder
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| NoTrustRoots(e.to_string()))?,
        TrustRoots::System => builder
            .with_provider_and_native_roots(provider)
            .map_err(|e| NoTrustRoots(e.to_string()))?,
    };
    let https = builder.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https))
}

/// What an answer means for one request: `Some(Ok)` an answer, `Some(Err)` an unreadable one
/// (retried), `None` the general meaning of its status (each client decides it).
pub type Read<'a, T> = &'a (dyn Fn(u16, &[u8]) -> Option<Result<T, String>> + Sync);

/// Why a REST request got no answer, in the terms every service shares; each client names it
/// in its own error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 401 or 403: the service refused the configured credentials.
    Credentials { status: u16, reason: String },
    /// 429, with the seconds to wait (`Retry-After`, 1 to 60, else 1).
    RateLimited { retry_after: u64 },
    /// Another 4xx: the service refused the request.
    Refused { status: u16, reason: String },
    /// No usable answer after the retry: no connection, no answer in time, 5xx, garbage.
    Unavailable(String),
}

/// How a REST request is sent: its time bound per attempt, one retry after `pause` when there
/// was no usable answer, and, for services whose credentials are tokens of ours, `renew`: called
/// once on a 401 before the request is sent again (that attempt is not the retry).
#[derive(Clone, Copy)]
pub struct Retry<'a> {
    pub attempt_limit: Duration,
    pub pause: Duration,
    pub renew: Option<&'a (dyn Fn() + Sync)>,
}

/// One REST request, retried once when there was no usable answer. `build` makes each
/// attempt's request; `read` says what a status and body mean for this request (`None`: the
/// general meaning, see [`Failure`]; 2xx and 5xx answers it does not take are retried);
/// `reason` reads the service's reason out of an error body; `service` names it in the log.
pub async fn rest<T>(
    client: &HttpsClient,
    retry: Retry<'_>,
    service: &str,
    build: impl Fn() -> Result<http::Request<Full<Bytes>>, String>,
    read: Read<'_, T>,
    reason: fn(&[u8]) -> String,
) -> Result<T, Failure> {
    let mut retried = false;
    let mut renew = retry.renew;
    loop {
        let req = build().map_err(Failure::Unavailable)?;
        let why = match exchange(client, req, retry.attempt_limit).await {
            Err(why) => why,
            Ok((status, headers, bytes)) => match read(status, &bytes) {
                Some(Ok(answer)) => return Ok(answer),
                Some(Err(why)) => why,
                None => match status {
                    401 if renew.is_some() => {
                        if let Some(renew) = renew.take() {
                            renew();
                        }
                        continue;
                    }
                    401 | 403 => {
                        return Err(Failure::Credentials {
                            status,
                            reason: reason(&bytes),
                        });
                    }
                    429 => {
                        return Err(Failure::RateLimited {
                            retry_after: retry_after(&headers),
                        });
                    }
                    500..=599 => format!("HTTP {status}: {}", reason(&bytes)),
                    200..=299 => format!("HTTP {status} with an unreadable answer"),
                    _ => {
                        return Err(Failure::Refused {
                            status,
                            reason: reason(&bytes),
                        });
                    }
                },
            },
        };
        if retried {
            return Err(Failure::Unavailable(why));
        }
        retried = true;
        tracing::warn!(reason = why, service, "request failed; retrying once");
        tokio::time::sleep(retry.pause).await;
    }
}

/// The start of an answer's body, for errors and logs: at most 120 characters.
pub fn snippet(bytes: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(bytes).chars().take(120).collect();
    if s.is_empty() {
        "(empty body)".into()
    } else {
        s
    }
}

/// Seconds to wait after a 429: the service's `Retry-After`, else 1; at most 60.
pub fn retry_after(headers: &http::HeaderMap) -> u64 {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, 60)
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

/// The AWS SDK's HTTP client (rustls on aws-lc-rs, as the SDK's default one), trusting Amazon
/// Trust Services' roots unless the system's are asked for.
pub fn aws_http_client() -> SharedHttpClient {
    let trust = match TrustRoots::from_env() {
        TrustRoots::Compiled => TrustStore::empty().with_pem_certificate(AWS_ROOTS_PEM),
        TrustRoots::System => TrustStore::default(),
    };
    let tls = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a trust store without options is valid");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls)
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_bounded() {
        let mut h = http::HeaderMap::new();
        assert_eq!(retry_after(&h), 1);
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h), 7);
        h.insert("retry-after", "9999".parse().unwrap());
        assert_eq!(retry_after(&h), 60);
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), 1);
    }

    #[test]
    fn system_roots_only_when_asked_for() {
        assert_eq!(TrustRoots::from_vars(false, false), TrustRoots::Compiled);
        assert_eq!(TrustRoots::from_vars(true, false), TrustRoots::System);
        assert_eq!(TrustRoots::from_vars(false, true), TrustRoots::System);
    }

    #[test]
    fn the_aws_roots_are_the_five_amazon_trust_services_roots() {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(AWS_ROOTS_PEM)
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert_eq!(certs.len(), 5);
        let mut roots = rustls::RootCertStore::empty();
        let (valid, invalid) = roots.add_parsable_certificates(certs.iter().cloned());
        assert_eq!((valid, invalid), (5, 0));
        // Amazon Root CA 1, by its SHA-256 fingerprint.
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &certs[0]);
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            hex,
            "8ECDE6884F3D87B1125BA31AC3FCB13D7016DE7F57CC904FE1CB97C6AE98196E"
        );
    }

    #[test]
    fn compiled_roots_build_a_client() {
        // (No SSL_CERT_* in the test environment: `make test` sets none.)
        if TrustRoots::from_env() == TrustRoots::Compiled {
            https_client(Duration::from_secs(1)).expect("webpki roots");
        }
    }
}
