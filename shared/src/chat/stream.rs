//! Channel membership from Stream Chat: the query-members operation, sent as Stream's official
//! server-side SDK sends it (stream-chat-js `Channel.queryMembers`: `GET /members` with a
//! `payload` query parameter; a server token `{"server":true}` signed with the API secret,
//! `api_key`, `stream-auth-type: jwt`), behind a bounded cache of positive answers and a single
//! flight per (channel, user).

use super::{BoxFuture, Members, Membership};
use crate::domain::ChannelCid;
use crate::error::Error;
use crate::flight::SingleFlight;
use crate::jwt;
use crate::outbound::HttpsClient;
use crate::secret::Secret;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Stream's public chat API host (stream-chat-js's default `baseURL`).
pub const DEFAULT_API_BASE: &str = "https://chat.stream-io-api.com";
/// Bounds on one membership check: two attempts of at most 1.5 s and a 0.1 s pause, 3.1 s at
/// worst, inside the functions' 20 s timeout with 100ms's 7.7 s and DynamoDB's 2 x 3 s.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);
pub const DEFAULT_CACHE_SECS: u64 = 60;
pub const MAX_CACHE_SECS: u64 = 3600;
/// Cached positive answers at most; when full, expired ones go, and if none has expired the
/// cache starts again empty (memory stays bounded; the next checks ask Stream).
pub const MAX_CACHED: usize = 10_000;

/// Settings of the membership check.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    pub api_key: String,
    pub api_secret: Secret,
    /// Without a trailing slash.
    pub api_base: String,
    /// Seconds a positive answer is kept; 0 keeps none.
    pub cache_secs: u64,
}

/// Why Stream Chat gave no answer; cloneable, so that one failure answers a whole flight.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StreamError {
    #[error("Stream Chat rejected the credentials (HTTP {status}): {reason}")]
    Credentials { status: u16, reason: String },
    #[error("Stream Chat is rate limiting (retry after {0} s)")]
    RateLimited(u64),
    #[error("Stream Chat refused the query (HTTP {status}): {reason}")]
    Refused { status: u16, reason: String },
    #[error("Stream Chat did not answer usably: {0}")]
    Unavailable(String),
}

/// Membership checks against Stream Chat.
pub struct StreamMembers {
    cfg: StreamConfig,
    client: HttpsClient,
    /// `{"server":true}` signed once: Stream's server tokens carry no time claims.
    server_token: String,
    cache: Mutex<HashMap<String, u64>>,
    in_flight: SingleFlight<Result<Membership, StreamError>>,
}

impl std::fmt::Debug for StreamMembers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamMembers")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct ServerClaims {
    server: bool,
}

/// The query-members payload, fields in the order stream-chat-js writes them.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    channel_type: &'a str,
    id: &'a str,
    sort: [(); 0],
    filter_conditions: Filter<'a>,
}

#[derive(Serialize)]
struct Filter<'a> {
    id: Eq<'a>,
}

#[derive(Serialize)]
struct Eq<'a> {
    #[serde(rename = "$eq")]
    eq: &'a str,
}

#[derive(Deserialize)]
struct Answer {
    members: Vec<MemberEntry>,
}

#[derive(Deserialize)]
struct MemberEntry {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user: Option<UserEntry>,
}

#[derive(Deserialize)]
struct UserEntry {
    #[serde(default)]
    id: Option<String>,
}

enum Attempt {
    Done(Membership),
    Retry(String),
    Fail(StreamError),
}

impl StreamMembers {
    pub fn new(cfg: StreamConfig, client: HttpsClient) -> Self {
        let server_token = jwt::sign_hs256(
            &ServerClaims { server: true },
            cfg.api_secret.expose().as_bytes(),
        );
        StreamMembers {
            cfg,
            client,
            server_token,
            cache: Mutex::new(HashMap::new()),
            in_flight: SingleFlight::default(),
        }
    }

    /// The answer for `user_id` in `cid`: cached if a positive one is, else asked of Stream
    /// (once for all concurrent asks of the same pair).
    pub async fn check(
        &self,
        cid: &ChannelCid,
        user_id: &str,
        now: u64,
    ) -> Result<Membership, StreamError> {
        let key = format!("{}\n{user_id}", cid.as_str());
        if self.cached(&key, now) {
            return Ok(Membership::Member);
        }
        let started = std::time::Instant::now();
        let answer = self
            .in_flight
            .run(&key, || self.query_members(cid, user_id))
            .await;
        crate::telemetry::chat_queried(started, &answer);
        let answer = answer?;
        if answer == Membership::Member {
            self.remember(key, now);
        }
        Ok(answer)
    }

    fn cached(&self, key: &str, now: u64) -> bool {
        if self.cfg.cache_secs == 0 {
            return false;
        }
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).is_some_and(|expires| now < *expires)
    }

    fn remember(&self, key: String, now: u64) {
        if self.cfg.cache_secs == 0 {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, expires| now < *expires);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(key, now + self.cfg.cache_secs);
    }

    /// Number of cached answers (tests).
    pub fn cached_len(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// One query, retried once when Stream gave no usable answer (the query only reads).
    async fn query_members(
        &self,
        cid: &ChannelCid,
        user_id: &str,
    ) -> Result<Membership, StreamError> {
        let (channel_type, channel_id) = cid.parts();
        let payload = serde_json::to_string(&Payload {
            channel_type,
            id: channel_id,
            sort: [],
            filter_conditions: Filter {
                id: Eq { eq: user_id },
            },
        })
        .expect("payload serialises");
        let uri = format!(
            "{}/members?api_key={}&payload={}",
            self.cfg.api_base,
            utf8_percent_encode(&self.cfg.api_key, NON_ALPHANUMERIC),
            utf8_percent_encode(&payload, NON_ALPHANUMERIC),
        );
        let mut retried = false;
        loop {
            match self.attempt(&uri, user_id).await {
                Attempt::Done(m) => return Ok(m),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(reason) if !retried => {
                    retried = true;
                    tracing::warn!(reason, "Stream Chat membership query failed; retrying once");
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                Attempt::Retry(reason) => return Err(StreamError::Unavailable(reason)),
            }
        }
    }

    async fn attempt(&self, uri: &str, user_id: &str) -> Attempt {
        let req = http::Request::get(uri)
            .header(http::header::AUTHORIZATION, &self.server_token)
            .header("stream-auth-type", "jwt")
            .header(
                "X-Stream-Client",
                concat!("callbridge-", env!("CARGO_PKG_VERSION")),
            )
            .header(
                "x-client-request-id",
                uuid::Uuid::new_v4().hyphenated().to_string(),
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::new()));
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                return Attempt::Fail(StreamError::Unavailable(format!(
                    "the request could not be built: {e}"
                )));
            }
        };
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            let status = resp.status().as_u16();
            let retry_after = retry_after(resp.headers());
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("answer cut off: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, retry_after, bytes))
        };
        let (status, retry_after, bytes) =
            match tokio::time::timeout(ATTEMPT_TIMEOUT, exchange).await {
                Err(_) => return Attempt::Retry(format!("no answer within {ATTEMPT_TIMEOUT:?}")),
                Ok(Err(e)) => return Attempt::Retry(e),
                Ok(Ok(x)) => x,
            };
        match status {
            200..=299 => match serde_json::from_slice::<Answer>(&bytes) {
                Ok(answer) => {
                    let listed = answer.members.iter().any(|m| {
                        m.user_id.as_deref() == Some(user_id)
                            || m.user.as_ref().and_then(|u| u.id.as_deref()) == Some(user_id)
                    });
                    Attempt::Done(if listed {
                        Membership::Member
                    } else {
                        Membership::NotMember
                    })
                }
                Err(e) => Attempt::Retry(format!("HTTP {status} with an unreadable answer: {e}")),
            },
            404 => Attempt::Done(Membership::NoChannel),
            401 | 403 => Attempt::Fail(StreamError::Credentials {
                status,
                reason: reason(&bytes),
            }),
            429 => Attempt::Fail(StreamError::RateLimited(retry_after)),
            500..=599 => Attempt::Retry(format!("HTTP {status}: {}", reason(&bytes))),
            _ => Attempt::Fail(StreamError::Refused {
                status,
                reason: reason(&bytes),
            }),
        }
    }
}

/// Seconds to wait after a 429: Stream's `Retry-After`, else 1; at most 60.
fn retry_after(headers: &http::HeaderMap) -> u64 {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, 60)
}

/// Stream's `message`, or a snippet of the body.
fn reason(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(ErrorBody { message: Some(m) }) => m.chars().take(300).collect(),
        _ => {
            let s: String = String::from_utf8_lossy(bytes).chars().take(120).collect();
            if s.is_empty() {
                "(empty body)".into()
            } else {
                s
            }
        }
    }
}

/// Each Stream failure as the client is told it. Nothing is stored after any of them.
impl From<StreamError> for Error {
    fn from(e: StreamError) -> Error {
        match e {
            e @ StreamError::Credentials { .. } => Error::ProviderRejected {
                message: "Stream Chat rejected the configured credentials (STREAM_API_KEY, STREAM_API_SECRET) when asked for channel members".into(),
                cause: Some(Box::new(e)),
            },
            StreamError::RateLimited(secs) => Error::RateLimited {
                message: format!(
                    "Stream Chat is rate limiting the membership check; retry after {secs} s"
                ),
                retry_after_secs: secs,
                cause: None,
            },
            e @ StreamError::Refused { .. } => Error::ProviderRejected {
                message: "Stream Chat refused the membership check; nothing was stored".into(),
                cause: Some(Box::new(e)),
            },
            e @ StreamError::Unavailable(_) => Error::Provider {
                message: "Stream Chat did not answer the membership check usably; nothing was stored, retry shortly".into(),
                cause: Some(Box::new(e)),
            },
        }
    }
}

impl Members for StreamMembers {
    fn membership<'a>(
        &'a self,
        cid: &'a ChannelCid,
        user_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Membership, Error>> {
        Box::pin(async move { Ok(self.check(cid, user_id, now).await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_what_stream_chat_js_sends() {
        let p = serde_json::to_string(&Payload {
            channel_type: "messaging",
            id: "general",
            sort: [],
            filter_conditions: Filter {
                id: Eq { eq: "alice" },
            },
        })
        .unwrap();
        assert_eq!(
            p,
            r#"{"type":"messaging","id":"general","sort":[],"filter_conditions":{"id":{"$eq":"alice"}}}"#
        );
    }

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
    fn errors_say_what_happened_and_never_carry_secrets() {
        let e = Error::from(StreamError::Credentials {
            status: 401,
            reason: "bad token".into(),
        });
        assert!(matches!(e, Error::ProviderRejected { .. }));
        assert!(
            e.to_string()
                .contains("rejected the configured credentials")
        );
        let e = Error::from(StreamError::RateLimited(3));
        assert!(matches!(
            e,
            Error::RateLimited {
                retry_after_secs: 3,
                ..
            }
        ));
        let e = Error::from(StreamError::Unavailable("x".into()));
        assert!(matches!(e, Error::Provider { .. }));
        assert!(e.to_string().contains("nothing was stored"));
        assert_eq!(
            reason(br#"{"code":16,"message":"channel not found"}"#),
            "channel not found"
        );
        assert_eq!(reason(b""), "(empty body)");
    }
}
