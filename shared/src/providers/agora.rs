//! Agora: channels from call ids, uids from user ids, and RTC join tokens.

use super::access_token2::{self as at2, Service, TokenContent};
use super::{AgoraJoin, JoinToken, Provider, ProviderEnd, TokenFor};
use crate::crypto;
use crate::domain::{Call, CallId, CallOptions, CallType, KickRule, ProviderDetails};
use crate::error::Error;
use crate::http_client::{self, HttpsClient, Read, snippet};
use crate::secret::Secret;
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// Agora's RESTful API host (docs.agora.io, Channel Management REST API).
pub const DEFAULT_API_BASE: &str = "https://api.agora.io";
/// Bounds on one RESTful request: two attempts of at most 2.5 s and a 0.2 s pause.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2500);
pub const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Agora's bounds on a kicking rule's `time_in_seconds` (values outside are clamped by Agora).
pub const MIN_RULE_SECS: u64 = 10;
pub const MAX_RULE_SECS: u64 = 86_430;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgoraRole {
    Publisher,
    Subscriber,
}

impl AgoraRole {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "publisher" => Some(AgoraRole::Publisher),
            "subscriber" => Some(AgoraRole::Subscriber),
            _ => None,
        }
    }
}

/// Agora settings (Stream's `agora_options`).
#[derive(Clone, Debug)]
pub struct AgoraConfig {
    pub app_id: String,
    pub app_certificate: Secret,
    /// Stream role -> Agora role; roles not listed are publishers.
    pub role_map: HashMap<String, AgoraRole>,
    /// Agora's RESTful API (`AGORA_CUSTOMER_ID`, `AGORA_CUSTOMER_SECRET`), to remove everyone
    /// from an ended call's channel; `None`: ending a call stops new tokens only.
    pub rest: Option<AgoraRestConfig>,
}

/// Agora's RESTful API credentials (Basic auth with the customer id and secret).
#[derive(Clone, Debug)]
pub struct AgoraRestConfig {
    pub customer_id: String,
    pub customer_secret: Secret,
    /// `https://api.agora.io` unless configured (`AGORA_API_BASE_URL`; tests use a mock).
    pub api_base: String,
}

impl AgoraConfig {
    pub fn role_for(&self, stream_role: &str) -> AgoraRole {
        self.role_map
            .get(stream_role)
            .copied()
            .unwrap_or(AgoraRole::Publisher)
    }
}

/// The Agora provider: channels derived from call ids, tokens signed here; with RESTful API
/// credentials, ended calls' channels emptied through kicking rules.
#[derive(Clone)]
pub struct Agora {
    cfg: AgoraConfig,
    /// With `cfg.rest`: the process's HTTPS client and the `Authorization` header value.
    rest: Option<(HttpsClient, Secret)>,
}

impl std::fmt::Debug for Agora {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agora")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Why Agora's RESTful API did not do what was asked.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AgoraRestError {
    #[error("Agora rejected the RESTful API credentials (HTTP {status}): {reason}")]
    Credentials { status: u16, reason: String },
    #[error("Agora is rate limiting RESTful API requests")]
    RateLimited,
    #[error("Agora refused the request (HTTP {status}): {reason}")]
    Refused { status: u16, reason: String },
    #[error("Agora did not answer usably: {0}")]
    Unavailable(String),
}

#[derive(Serialize)]
struct NewRule<'a> {
    appid: &'a str,
    cname: &'a str,
    time_in_seconds: u64,
    privileges: [&'static str; 1],
}

#[derive(Serialize)]
struct DeleteRule<'a> {
    appid: &'a str,
    id: u64,
}

#[derive(Deserialize)]
struct RuleAnswer {
    status: Option<String>,
    id: Option<u64>,
}

impl Agora {
    /// The provider; `client` is needed only with RESTful API credentials (`cfg.rest`).
    pub fn new(cfg: AgoraConfig, client: Option<HttpsClient>) -> Self {
        let rest = cfg.rest.as_ref().zip(client).map(|(r, client)| {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                r.customer_id,
                r.customer_secret.expose()
            ));
            (client, Secret::new(format!("Basic {basic}")))
        });
        Agora { cfg, rest }
    }

    /// Whether this deployment can remove everyone from a channel (RESTful API credentials).
    pub fn can_remove(&self) -> bool {
        self.rest.is_some()
    }

    /// A kicking rule on `channel` with `join_channel`: Agora's documented way to remove
    /// everyone from a channel and keep them out for `secs` (clamped to Agora's 10 to 86430).
    /// (docs.agora.io, Channel Management REST API, "Create a banning rule".)
    pub async fn kick_everyone(&self, channel: &str, secs: u64) -> Result<u64, AgoraRestError> {
        let body = serde_json::to_vec(&NewRule {
            appid: &self.cfg.app_id,
            cname: channel,
            time_in_seconds: secs.clamp(MIN_RULE_SECS, MAX_RULE_SECS),
            privileges: ["join_channel"],
        })
        .expect("rule serialises");
        let read = |status: u16, bytes: &[u8]| match status {
            200..=299 => Some(match serde_json::from_slice::<RuleAnswer>(bytes) {
                Ok(RuleAnswer {
                    status: Some(s),
                    id: Some(id),
                }) if s == "success" => Ok(id),
                _ => Err(format!(
                    "HTTP {status} without a rule id: {}",
                    snippet(bytes)
                )),
            }),
            _ => None,
        };
        self.rest_request(http::Method::POST, Bytes::from(body), &read)
            .await
    }

    /// Deletes a kicking rule; one that no longer exists is deleted.
    pub async fn delete_rule(&self, id: u64) -> Result<(), AgoraRestError> {
        let body = serde_json::to_vec(&DeleteRule {
            appid: &self.cfg.app_id,
            id,
        })
        .expect("rule serialises");
        let read = |status: u16, _: &[u8]| match status {
            200..=299 | 404 => Some(Ok(())),
            _ => None,
        };
        self.rest_request(http::Method::DELETE, Bytes::from(body), &read)
            .await
    }

    /// Removes an earlier call's kicking rule (see [`super::Providers::remove_rule`]).
    pub async fn remove_rule(&self, rule: KickRule) -> Result<(), Error> {
        self.delete_rule(rule.id).await.map_err(|e| Error::Provider {
            message: format!(
                "the call exists, but Agora still keeps everyone out of its channel (a kicking rule left by an earlier call with this id, lapsing at Unix time {}, could not be removed); repeating the same request retries",
                rule.until
            ),
            cause: Some(Box::new(e)),
        })
    }

    /// One request to `/dev/v1/kicking-rule`, retried once when Agora gave no usable answer.
    async fn rest_request<T>(
        &self,
        method: http::Method,
        body: Bytes,
        read: Read<'_, T>,
    ) -> Result<T, AgoraRestError> {
        let (Some((client, auth)), Some(cfg)) = (&self.rest, &self.cfg.rest) else {
            return Err(AgoraRestError::Unavailable(
                "no RESTful API credentials are configured".into(),
            ));
        };
        let uri = format!("{}/dev/v1/kicking-rule", cfg.api_base);
        let build = || {
            http::Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header(http::header::AUTHORIZATION, auth.expose())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::ACCEPT, "application/json")
                .body(Full::new(body.clone()))
                .map_err(|e| format!("bad request URI: {e}"))
        };
        let retry = http_client::Retry {
            attempt_limit: ATTEMPT_TIMEOUT,
            pause: RETRY_PAUSE,
            renew: None,
        };
        http_client::rest(client, retry, "Agora", build, read, snippet)
            .await
            .map_err(|f| match f {
                http_client::Failure::Credentials { status, reason } => {
                    AgoraRestError::Credentials { status, reason }
                }
                http_client::Failure::RateLimited { .. } => AgoraRestError::RateLimited,
                http_client::Failure::Refused { status, reason } => {
                    AgoraRestError::Refused { status, reason }
                }
                http_client::Failure::Unavailable(why) => AgoraRestError::Unavailable(why),
            })
    }
}

/// A failure to empty the channel, as the End Call answer names it (after "the call is ended,
/// but").
fn end_error(e: AgoraRestError) -> Error {
    match e {
        e @ (AgoraRestError::Credentials { .. } | AgoraRestError::Refused { .. }) => {
            Error::ProviderRejected {
                message: "Agora refused the kicking rule that removes everyone from its channel (check AGORA_CUSTOMER_ID, AGORA_CUSTOMER_SECRET, AGORA_API_BASE_URL), so participants may stay until their tokens expire".into(),
                cause: Some(Box::new(e)),
            }
        }
        e => Error::Provider {
            message: "Agora did not confirm the kicking rule that removes everyone from its channel (it did not answer usably, or is rate limiting), so participants may stay until their tokens expire".into(),
            cause: Some(Box::new(e)),
        },
    }
}

impl Provider for Agora {
    type Options = ();

    /// Agora channels take no options; any object is accepted and ignored.
    fn options(&self, _: &CallOptions) -> Result<(), Error> {
        Ok(())
    }

    fn prepares_remotely(&self) -> bool {
        false
    }

    async fn prepare(&self, id: &CallId, _: &(), _now: u64) -> Result<ProviderDetails, Error> {
        Ok(ProviderDetails::Agora {
            channel: channel_for(id),
        })
    }

    /// With RESTful API credentials: a kicking rule on the channel that lasts until the last
    /// token issued for the call expires. Without them: nothing (tokens stay valid).
    async fn end(
        &self,
        call: &Call,
        _reason: Option<&str>,
        tokens_until: u64,
        now: u64,
    ) -> Result<ProviderEnd, Error> {
        let ProviderDetails::Agora { channel } = &call.provider else {
            return Err(Error::Internal(
                "an Agora end was asked for a call elsewhere".into(),
            ));
        };
        if !self.can_remove() {
            return Ok(ProviderEnd::Nothing);
        }
        let secs = tokens_until.saturating_sub(now);
        let id = self.kick_everyone(channel, secs).await.map_err(end_error)?;
        Ok(ProviderEnd::Removed(KickRule {
            id,
            until: now + secs.clamp(MIN_RULE_SECS, MAX_RULE_SECS),
        }))
    }

    fn join_token(&self, call: &Call, to: TokenFor<'_>) -> Result<JoinToken, Error> {
        let (actor, lifetime, now) = (to.actor, to.lifetime, to.now);
        let ProviderDetails::Agora { channel } = &call.provider else {
            return Err(Error::Internal(
                "an Agora token was asked for a call elsewhere".into(),
            ));
        };
        let uid = agora_uid(&actor.user_id);
        let issue_ts = u32::try_from(now).map_err(|_| Error::Internal("clock past 2106".into()))?;
        let token = rtc_token(
            &self.cfg,
            channel,
            uid,
            self.cfg.role_for(&actor.role),
            call.call_type,
            issue_ts,
            lifetime,
            random_salt(),
        )
        .map_err(|e| Error::Internal(Box::new(e)))?;
        Ok(JoinToken {
            token,
            agora: Some(AgoraJoin {
                uid,
                app_id: self.cfg.app_id.clone(),
            }),
        })
    }
}

/// The Agora channel of a call. Canonical ids of up to 63 characters are their own channel
/// (every id character is valid in an Agora channel name). A 64-character id does not fit
/// Agora's "less than 64 bytes": its channel is its first 41 characters, `~`, and the first 21
/// hex digits of SHA-256(id). `~` never occurs in an id, so no two calls share a channel.
pub fn channel_for(id: &CallId) -> String {
    let s = id.as_str();
    if s.len() <= 63 {
        return s.to_string();
    }
    let digest = crypto::sha256(s.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}~{}", &s[..41], &hex[..21])
}

/// The Agora uid of a chat user: `(u32_be(SHA-256(user_id)[0..4]) & 0x7FFFFFFF) % 2147483647 + 1`,
/// always in 1..=2^31-1 (0 would mean "any uid"; 2^31 and above turn negative on Android).
pub fn agora_uid(user_id: &str) -> u32 {
    let d = crypto::sha256(user_id.as_bytes());
    let n = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & 0x7FFF_FFFF;
    n % 0x7FFF_FFFF + 1
}

/// Builds an RTC token for `uid` in `channel`. Publishers get join + publish audio, video (video
/// calls only) and data; subscribers get join only. Every privilege lasts as long as the token.
#[allow(clippy::too_many_arguments)]
pub fn rtc_token(
    cfg: &AgoraConfig,
    channel: &str,
    uid: u32,
    role: AgoraRole,
    call_type: CallType,
    issue_ts: u32,
    lifetime: u32,
    salt: u32,
) -> Result<String, at2::TokenError> {
    let mut privileges = Vec::with_capacity(4);
    privileges.push((at2::PRIV_JOIN_CHANNEL, lifetime));
    if role == AgoraRole::Publisher {
        privileges.push((at2::PRIV_PUBLISH_AUDIO, lifetime));
        if call_type == CallType::Video {
            privileges.push((at2::PRIV_PUBLISH_VIDEO, lifetime));
        }
        privileges.push((at2::PRIV_PUBLISH_DATA, lifetime));
    }
    let content = TokenContent {
        app_id: cfg.app_id.clone(),
        issue_ts,
        expire: lifetime,
        salt,
        services: vec![Service::Rtc {
            channel: channel.to_string(),
            account: uid.to_string(),
            privileges,
        }],
    };
    at2::build(&content, cfg.app_certificate.expose())
}

/// A salt as the official builders draw it: uniform in 1..=99,999,999.
pub fn random_salt() -> u32 {
    fastrand::u32(1..=99_999_999)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AgoraConfig {
        AgoraConfig {
            app_id: "970CA35de60c44645bbae8a215061b33".into(),
            app_certificate: Secret::new("5CFd2fd1755d40ecb72977518be15d3b"),
            role_map: HashMap::from([
                ("guest".to_string(), AgoraRole::Subscriber),
                ("host".to_string(), AgoraRole::Publisher),
            ]),
            rest: None,
        }
    }

    #[test]
    fn uid_is_deterministic_and_in_range() {
        assert_eq!(agora_uid("alice"), agora_uid("alice"));
        assert_ne!(agora_uid("alice"), agora_uid("Alice"));
        // Pinned so that clients can rely on it (see the README).
        let d = crypto::sha256(b"alice");
        let expect = (u32::from_be_bytes([d[0], d[1], d[2], d[3]]) & 0x7fff_ffff) % 0x7fff_ffff + 1;
        assert_eq!(agora_uid("alice"), expect);
        assert_eq!(agora_uid("alice"), 735_577_802); // computed independently with Python hashlib
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..10_000 {
            let u: String = (0..rng.usize(1..40)).map(|_| rng.alphanumeric()).collect();
            let uid = agora_uid(&u);
            assert!((1..=0x7FFF_FFFF).contains(&uid), "{u} -> {uid}");
        }
    }

    #[test]
    fn channels_fit_agora_and_do_not_collide() {
        let short = CallId::parse("Standup").unwrap();
        assert_eq!(channel_for(&short), "standup");
        let max63 = CallId::parse(&"a".repeat(63)).unwrap();
        assert_eq!(channel_for(&max63), "a".repeat(63));
        let a = CallId::parse(&format!("{}1", "a".repeat(63))).unwrap();
        let b = CallId::parse(&format!("{}2", "a".repeat(63))).unwrap();
        let (ca, cb) = (channel_for(&a), channel_for(&b));
        assert_eq!(ca.len(), 63);
        assert_ne!(ca, cb);
        assert_eq!(ca, channel_for(&a));
        assert!(ca.starts_with(&"a".repeat(41)) && ca.as_bytes()[41] == b'~');
    }

    #[test]
    fn privileges_by_role_and_call_type() {
        let privs = |role, t| {
            let tok = rtc_token(&cfg(), "standup", 42, role, t, 1_700_000_000, 3600, 5).unwrap();
            match &at2::parse(&tok).unwrap().content.services[0] {
                Service::Rtc {
                    privileges,
                    account,
                    channel,
                } => {
                    assert_eq!(account, "42");
                    assert_eq!(channel, "standup");
                    privileges.iter().map(|p| p.0).collect::<Vec<_>>()
                }
                _ => unreachable!(),
            }
        };
        assert_eq!(
            privs(AgoraRole::Publisher, CallType::Video),
            vec![1, 2, 3, 4]
        );
        assert_eq!(privs(AgoraRole::Publisher, CallType::Audio), vec![1, 2, 4]);
        assert_eq!(privs(AgoraRole::Subscriber, CallType::Video), vec![1]);
    }

    #[test]
    fn role_map() {
        let c = cfg();
        assert_eq!(c.role_for("guest"), AgoraRole::Subscriber);
        assert_eq!(c.role_for("user"), AgoraRole::Publisher);
    }

    #[test]
    fn salt_range() {
        for _ in 0..1000 {
            assert!((1..=99_999_999).contains(&random_salt()));
        }
    }
}
