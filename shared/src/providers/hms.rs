//! 100ms: rooms over the REST API, management tokens (cached), app tokens (signed locally).

use super::{JoinToken, Provider, ProviderEnd, TokenFor};
use crate::domain::{Call, CallId, CallOptions, OptionValue, ProviderDetails, ProviderKind};
use crate::error::Error;
use crate::flight::SingleFlight;
use crate::jwt;
use crate::outbound::{self, HttpsClient, Read};
use crate::secret::Secret;
use crate::telemetry;
use bytes::Bytes;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const DEFAULT_API_BASE: &str = "https://api.100ms.live/v2";
/// Bounds on one 100ms request. Worst case for room creation: three attempts of at most 2.5 s
/// each (a 401 answered by renewing the management token, then a failure answered by one
/// retry) plus a 0.2 s pause: 7.7 s. The function timeout in template.yaml counts on it.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2500);
pub const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Management tokens live 24 hours and are renewed an hour before they expire.
pub const MANAGEMENT_TOKEN_SECS: u64 = 86_400;
pub const MANAGEMENT_RENEW_BEFORE_SECS: u64 = 3_600;
/// Tokens are issued this many seconds in the past (as 100ms's server SDK does) for clock skew.
pub const CLOCK_SKEW_SECS: u64 = 10;
pub const REGIONS: &[&str] = &["in", "us", "eu", "auto"];
/// 100ms's bounds on a room's `max_duration_seconds` (it refuses others with a 400).
pub const HMS_MIN_DURATION_SECS: u64 = 120;
pub const HMS_MAX_DURATION_SECS: u64 = 43_200;
/// Room options forwarded to `POST /rooms`; any other key is refused.
pub const OPTION_KEYS: &[&str] = &[
    "template_id",
    "region",
    "description",
    "size",
    "max_duration_seconds",
    "large_room",
];

/// 100ms settings (Stream's `hms_options`).
#[derive(Clone, Debug)]
pub struct HmsConfig {
    pub app_access_key: String,
    pub app_secret: Secret,
    pub template_id: String,
    pub default_role: String,
    pub region: Option<String>,
    /// Stream role -> 100ms role; roles not listed get `default_role`.
    pub role_map: HashMap<String, String>,
    /// `https://api.100ms.live/v2` unless configured (tests use a local mock).
    pub api_base: String,
    /// Set on every room created (`HMS_WEBHOOK_URL`): where 100ms sends its events, and the
    /// secret header it sends with them.
    pub webhook: Option<HmsWebhook>,
}

/// A room's webhook: 100ms posts its events to `url` with the header
/// `X-Callbridge-Webhook-Secret: <secret>`.
#[derive(Clone, Debug)]
pub struct HmsWebhook {
    pub url: String,
    pub secret: Secret,
}

impl HmsConfig {
    pub fn role_for(&self, stream_role: &str) -> &str {
        self.role_map
            .get(stream_role)
            .map(String::as_str)
            .unwrap_or(&self.default_role)
    }
}

/// A 100ms room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    pub id: String,
    pub name: String,
    /// `false` when 100ms answered with a disabled room (nobody can join it).
    pub enabled: bool,
}

/// Validated room options from the Create Call body.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RoomOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_duration_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub large_room: Option<bool>,
}

impl RoomOptions {
    /// Validates the Create Call options (a known key set to null is unset, as JSON clients
    /// often send optional fields). Errors are client-facing messages.
    pub fn from_options(options: &CallOptions) -> Result<Self, String> {
        let mut o = RoomOptions::default();
        for (key, value) in &options.0 {
            if *value == OptionValue::Null && OPTION_KEYS.contains(&key.as_str()) {
                continue;
            }
            let bad = |what: &str| format!("options.{key} must be {what}");
            match key.as_str() {
                "template_id" => {
                    let s = value.as_str().filter(|s| {
                        !s.is_empty()
                            && s.len() <= 64
                            && s.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    });
                    o.template_id = Some(
                        s.ok_or_else(|| {
                            bad("a template id (1 to 64 characters of a-z A-Z 0-9 - _)")
                        })?
                        .to_string(),
                    );
                }
                "region" => {
                    let s = value.as_str().filter(|s| REGIONS.contains(s));
                    o.region = Some(s.ok_or_else(|| bad("one of in, us, eu, auto"))?.to_string());
                }
                "description" => {
                    let s = value.as_str().filter(|s| s.chars().count() <= 500);
                    o.description = Some(
                        s.ok_or_else(|| bad("a string of at most 500 characters"))?
                            .to_string(),
                    );
                }
                "size" => {
                    o.size = Some(
                        value
                            .as_count()
                            .filter(|n| *n <= 20_000)
                            .ok_or_else(|| bad("an integer from 0 to 20000"))?,
                    );
                }
                "max_duration_seconds" => {
                    o.max_duration_seconds = Some(
                        value
                            .as_count()
                            .filter(|n| (HMS_MIN_DURATION_SECS..=HMS_MAX_DURATION_SECS).contains(n))
                            .ok_or_else(|| {
                                bad("an integer from 120 to 43200 (100ms's limits on a room)")
                            })?,
                    );
                }
                "large_room" => {
                    o.large_room = Some(value.as_bool().ok_or_else(|| bad("true or false"))?);
                }
                other => {
                    return Err(format!(
                        "options.{other} is not accepted; accepted keys: {}",
                        OPTION_KEYS.join(", ")
                    ));
                }
            }
        }
        if o.large_room != Some(true) && o.size.is_some_and(|s| s > 2_500) {
            return Err("options.size above 2500 needs options.large_room = true".into());
        }
        Ok(o)
    }
}

/// Why a room could not be created.
#[derive(Clone, Debug, thiserror::Error)]
pub enum HmsError {
    /// 100ms refused the request because of the caller's options (a 400): the reason is 100ms's.
    #[error("100ms refused the room: {0}")]
    Rejected(String),
    /// 100ms refused the configured credentials (401 after a renewed token, or 403).
    #[error("100ms rejected the configured credentials (HTTP {status}): {reason}")]
    Credentials { status: u16, reason: String },
    /// 100ms asks us to slow down.
    #[error("100ms is rate limiting requests")]
    RateLimited,
    /// No usable answer after the retry: 5xx, timeout, dropped connection or garbage.
    #[error("100ms did not answer usably: {0}")]
    Unavailable(String),
    /// 100ms has no such API at the configured address (404, 405): `HMS_API_BASE_URL` is off.
    #[error("100ms answered HTTP {status} for {url}: no such API there")]
    NoSuchApi { status: u16, url: String },
    /// 100ms answered with a disabled room and did not enable it when asked.
    #[error("100ms keeps room {0} disabled")]
    Disabled(String),
}

impl HmsError {
    /// The failure as a `Kind` of the `ProviderErrors` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            HmsError::Rejected(_) => "rejected",
            HmsError::Credentials { .. } => "credentials",
            HmsError::RateLimited => "throttled",
            HmsError::Unavailable(_) => "unavailable",
            HmsError::NoSuchApi { .. } => "misconfigured",
            HmsError::Disabled(_) => "disabled",
        }
    }
}

/// The 100ms provider: configuration, one HTTP client and the cached management token.
pub struct Hms {
    cfg: HmsConfig,
    client: HttpsClient,
    management: Mutex<Option<(String, u64)>>,
    /// Room requests under way, by room name: concurrent creates of one new call in this
    /// process share one request (across processes the conditional put still decides).
    rooms_in_flight: SingleFlight<Result<Room, HmsError>>,
}

impl std::fmt::Debug for Hms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hms")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The claims of a 100ms token, in the order 100ms's server SDK writes them; app tokens add
/// their room, role and user before `jti`.
#[derive(Serialize)]
struct Claims<'a> {
    access_key: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    version: u8,
    iat: u64,
    nbf: u64,
    exp: u64,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    app: Option<AppClaims<'a>>,
    jti: &'a str,
}

#[derive(Serialize)]
struct AppClaims<'a> {
    room_id: &'a str,
    role: &'a str,
    user_id: &'a str,
}

#[derive(Deserialize)]
struct RoomAnswer {
    id: Option<Value>,
    name: Option<Value>,
    enabled: Option<Value>,
}

/// A 100ms token: `kind` is `app` or `management`; valid from `issued_at` for `lifetime` s.
fn signed(
    access_key: &str,
    secret: &Secret,
    kind: &'static str,
    app: Option<AppClaims<'_>>,
    issued_at: u64,
    lifetime: u64,
    jti: &str,
) -> String {
    let claims = Claims {
        access_key,
        kind,
        version: 2,
        iat: issued_at,
        nbf: issued_at,
        exp: issued_at + lifetime,
        app,
        jti,
    };
    jwt::sign_hs256(&claims, secret.expose().as_bytes())
}

/// An app token: a client joins `room_id` with it as `user_id` in `role`.
#[allow(clippy::too_many_arguments)]
pub fn app_token(
    access_key: &str,
    secret: &Secret,
    room_id: &str,
    role: &str,
    user_id: &str,
    issued_at: u64,
    lifetime: u64,
    jti: &str,
) -> String {
    let app = AppClaims {
        room_id,
        role,
        user_id,
    };
    signed(
        access_key,
        secret,
        "app",
        Some(app),
        issued_at,
        lifetime,
        jti,
    )
}

/// A management token for the REST API.
pub fn management_token(
    access_key: &str,
    secret: &Secret,
    issued_at: u64,
    lifetime: u64,
    jti: &str,
) -> String {
    signed(
        access_key,
        secret,
        "management",
        None,
        issued_at,
        lifetime,
        jti,
    )
}

impl Hms {
    /// The provider on the process's shared HTTPS client.
    pub fn new(cfg: HmsConfig, client: HttpsClient) -> Self {
        Hms {
            cfg,
            client,
            management: Mutex::new(None),
            rooms_in_flight: SingleFlight::default(),
        }
    }

    /// An app token for `user_id` in `room_id`, role from the role map. No network.
    /// Like 100ms's server SDK, it is issued (and valid from) [`CLOCK_SKEW_SECS`] ago, so a
    /// 100ms clock slightly behind ours does not refuse it as not yet valid.
    pub fn app_token_for(
        &self,
        room_id: &str,
        stream_role: &str,
        user_id: &str,
        now: u64,
        lifetime: u64,
    ) -> String {
        let jti = uuid::Uuid::new_v4().hyphenated().to_string();
        app_token(
            &self.cfg.app_access_key,
            &self.cfg.app_secret,
            room_id,
            self.cfg.role_for(stream_role),
            user_id,
            now.saturating_sub(CLOCK_SKEW_SECS),
            lifetime,
            &jti,
        )
    }

    /// The cached management token, renewed an hour before expiry (or when `force`d).
    fn management_token(&self, now: u64, force: bool) -> String {
        let mut cached = self.management.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((token, exp)) = cached.as_ref()
            && !force
            && now + MANAGEMENT_RENEW_BEFORE_SECS < *exp
        {
            return token.clone();
        }
        let jti = uuid::Uuid::new_v4().hyphenated().to_string();
        let issued_at = now.saturating_sub(CLOCK_SKEW_SECS);
        let token = management_token(
            &self.cfg.app_access_key,
            &self.cfg.app_secret,
            issued_at,
            MANAGEMENT_TOKEN_SECS,
            &jti,
        );
        *cached = Some((token.clone(), issued_at + MANAGEMENT_TOKEN_SECS));
        token
    }

    /// Creates (or, 100ms rooms being unique by name, finds) the room named `name`, enabled.
    /// Concurrent calls for one name share one request.
    pub async fn create_room(
        &self,
        name: &str,
        options: &RoomOptions,
        now: u64,
    ) -> Result<Room, HmsError> {
        self.rooms_in_flight
            .run(name, || self.create_enabled_room(name, options, now))
            .await
    }

    async fn create_enabled_room(
        &self,
        name: &str,
        options: &RoomOptions,
        now: u64,
    ) -> Result<Room, HmsError> {
        #[derive(Serialize)]
        struct Body<'a> {
            name: &'a str,
            template_id: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            region: Option<&'a str>,
            #[serde(flatten)]
            rest: RoomOptions,
            #[serde(skip_serializing_if = "Option::is_none")]
            webhook: Option<Webhook<'a>>,
        }
        /// `webhook: {url, headers}` on room create (100ms docs, configure-webhooks: a room's
        /// webhook replaces the workspace's; custom headers are passed through unchanged).
        #[derive(Serialize)]
        struct Webhook<'a> {
            url: &'a str,
            headers: HashMap<&'static str, &'a str>,
        }
        let mut rest = options.clone();
        let template_id = rest
            .template_id
            .take()
            .unwrap_or_else(|| self.cfg.template_id.clone());
        let region = rest.region.take().or_else(|| self.cfg.region.clone());
        let body = serde_json::to_vec(&Body {
            name,
            template_id: &template_id,
            region: region.as_deref(),
            rest,
            webhook: self.cfg.webhook.as_ref().map(|w| Webhook {
                url: &w.url,
                headers: HashMap::from([(
                    super::events::HMS_SECRET_HEADER_NAME,
                    w.secret.expose(),
                )]),
            }),
        })
        .expect("room body serialises");
        let room = self.rooms_request("/rooms", Bytes::from(body), now).await?;
        if room.enabled {
            return Ok(room);
        }
        // Creating by an existing name answers that room as it is, disabled too (someone
        // disabled it in the dashboard or API). 100ms enables a room by id: POST
        // /rooms/<room_id> {"enabled": true} (docs: server-side/v2/api-reference/Rooms).
        tracing::warn!(room = %room.id, "100ms answered a disabled room; enabling it");
        let path = format!("/rooms/{}", room.id);
        let enabled = self
            .rooms_request(&path, Bytes::from_static(br#"{"enabled":true}"#), now)
            .await?;
        if !enabled.enabled || enabled.id != room.id {
            return Err(HmsError::Disabled(room.id));
        }
        Ok(enabled)
    }

    /// One POST to the rooms API, answered with a room.
    async fn rooms_request(&self, path: &str, body: Bytes, now: u64) -> Result<Room, HmsError> {
        let read = |status: u16, bytes: &[u8]| match status {
            200..=299 => Some(parse_room(bytes).ok_or_else(|| {
                format!("HTTP {status} with an unreadable room: {}", snippet(bytes))
            })),
            _ => None,
        };
        self.management_request(path, body, now, &read).await
    }

    /// Ends the room's running session, so that every peer leaves; the room stays enabled
    /// (`lock: false`) for a later call with the same id. No session running is success.
    /// (100ms docs, server-side/v2/api-reference/active-rooms/end-active-room.mdx.)
    pub async fn end_room(&self, room_id: &str, reason: &str, now: u64) -> Result<(), HmsError> {
        #[derive(Serialize)]
        struct Body<'a> {
            reason: &'a str,
            lock: bool,
        }
        let body = serde_json::to_vec(&Body {
            reason,
            lock: false,
        })
        .expect("end-room body serialises");
        // 404: the room has no active session (100ms documents only the 200).
        let read = |status: u16, _: &[u8]| match status {
            200..=299 | 404 => Some(Ok(())),
            _ => None,
        };
        let path = format!("/active-rooms/{room_id}/end-room");
        self.management_request(&path, Bytes::from(body), now, &read)
            .await
    }

    /// One POST to the management API. A 401 renews the management token once; a 5xx,
    /// timeout, dropped connection or unreadable answer is retried once (room requests are
    /// upserts by name or id, ending a session twice ends it once, so a retry is safe).
    async fn management_request<T>(
        &self,
        path: &str,
        body: Bytes,
        now: u64,
        read: Read<'_, T>,
    ) -> Result<T, HmsError> {
        let uri = format!("{}{path}", self.cfg.api_base.trim_end_matches('/'));
        let build = || {
            http::Request::post(&uri)
                .header(
                    http::header::AUTHORIZATION,
                    format!("Bearer {}", self.management_token(now, false)),
                )
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::ACCEPT, "application/json")
                .body(Full::new(body.clone()))
                .map_err(|e| format!("bad request URI {uri:?}: {e}"))
        };
        let renew = || {
            self.management_token(now, true);
        };
        let retry = outbound::Retry {
            attempt_limit: ATTEMPT_TIMEOUT,
            pause: RETRY_PAUSE,
            renew: Some(&renew),
        };
        outbound::rest(&self.client, retry, "100ms", build, read, reason)
            .await
            .map_err(|f| match f {
                outbound::Failure::Credentials { status, reason } => {
                    HmsError::Credentials { status, reason }
                }
                outbound::Failure::RateLimited { .. } => HmsError::RateLimited,
                outbound::Failure::Refused {
                    status: 400 | 422,
                    reason,
                } => HmsError::Rejected(reason),
                outbound::Failure::Refused {
                    status: status @ (404 | 405),
                    ..
                } => HmsError::NoSuchApi {
                    status,
                    url: uri.clone(),
                },
                outbound::Failure::Refused { status, reason } => {
                    HmsError::Unavailable(format!("HTTP {status}: {reason}"))
                }
                outbound::Failure::Unavailable(why) => HmsError::Unavailable(why),
            })
    }
}

impl Provider for Hms {
    type Options = RoomOptions;

    fn options(&self, options: &CallOptions) -> Result<RoomOptions, Error> {
        RoomOptions::from_options(options).map_err(Error::Input)
    }

    fn prepares_remotely(&self) -> bool {
        true
    }

    /// Creates (or finds: 100ms rooms are unique by name) the room named after the call id.
    async fn prepare(
        &self,
        id: &CallId,
        options: &RoomOptions,
        now: u64,
    ) -> Result<ProviderDetails, Error> {
        let started = Instant::now();
        let room = self
            .create_room(id.as_str(), options, now)
            .await
            .map_err(|e| {
                let kind = e.kind();
                (kind, client_error(e, *options != RoomOptions::default()))
            });
        let failed = room.as_ref().err().map(|(kind, e)| (*kind, e));
        telemetry::provider_prepared(ProviderKind::Hms, started, failed);
        let room = room.map_err(|(_, e)| e)?;
        Ok(ProviderDetails::Hms {
            room_id: room.id,
            room_name: if room.name.is_empty() {
                id.as_str().to_string()
            } else {
                room.name
            },
        })
    }

    /// Ends the room's session (every peer leaves); the room stays usable for a later call.
    async fn end(
        &self,
        call: &Call,
        reason: Option<&str>,
        _tokens_until: u64,
        now: u64,
    ) -> Result<ProviderEnd, Error> {
        let ProviderDetails::Hms { room_id, .. } = &call.provider else {
            return Err(Error::Internal(
                "a 100ms end was asked for a call elsewhere".into(),
            ));
        };
        self.end_room(room_id, reason.unwrap_or(DEFAULT_END_REASON), now)
            .await
            .map_err(end_error)?;
        Ok(ProviderEnd::SessionEnded)
    }

    fn join_token(&self, call: &Call, to: TokenFor<'_>) -> Result<JoinToken, Error> {
        let (actor, lifetime, now) = (to.actor, to.lifetime, to.now);
        let ProviderDetails::Hms { room_id, .. } = &call.provider else {
            return Err(Error::Internal(
                "a 100ms token was asked for a call elsewhere".into(),
            ));
        };
        Ok(JoinToken {
            token: self.app_token_for(
                room_id,
                &actor.role,
                &actor.user_id,
                now,
                u64::from(lifetime),
            ),
            agora: None,
        })
    }
}

/// The reason 100ms is given when End Call carried none.
pub const DEFAULT_END_REASON: &str = "the call was ended";

/// A failure to end a session, as the End Call answer names it (after "the call is ended,
/// but").
fn end_error(e: HmsError) -> Error {
    match e {
        e @ (HmsError::Credentials { .. } | HmsError::NoSuchApi { .. }) => Error::ProviderRejected {
            message: "100ms refused the configured credentials or address (HMS_APP_ACCESS_KEY, HMS_APP_SECRET, HMS_API_BASE_URL), so its session was not ended".into(),
            cause: Some(Box::new(e)),
        },
        e => Error::Provider {
            message: "100ms did not confirm that its session ended (it did not answer usably, or is rate limiting)".into(),
            cause: Some(Box::new(e)),
        },
    }
}

/// Maps each 100ms failure to its client answer.
/// `caller_options`: the request carried room options, so a 100ms 400 is the caller's to fix;
/// without them 100ms refused this deployment's defaults (HMS_TEMPLATE_ID, HMS_REGION).
fn client_error(e: HmsError, caller_options: bool) -> Error {
    match e {
        HmsError::Rejected(reason) if caller_options => {
            Error::Input(format!("100ms refused the room options: {reason}"))
        }
        e @ HmsError::Rejected(_) => Error::ProviderRejected {
            message: "the video provider (100ms) refused the configured room defaults (HMS_TEMPLATE_ID, HMS_REGION)".into(),
            cause: Some(Box::new(e)),
        },
        HmsError::RateLimited => Error::RateLimited {
            message: "the video provider is rate limiting; retry after a second".into(),
            retry_after_secs: 1,
            cause: None,
        },
        e @ HmsError::Credentials { .. } => Error::ProviderRejected {
            message: "the video provider (100ms) rejected the configured credentials".into(),
            cause: Some(Box::new(e)),
        },
        // 100ms may have made the room before the failure; a retry reuses it (rooms are
        // unique by name). No call was stored either way.
        e @ HmsError::Unavailable(_) => Error::Provider {
            message: "the video provider (100ms) did not answer usably, so no call was stored; retry shortly".into(),
            cause: Some(Box::new(e)),
        },
        e @ HmsError::NoSuchApi { .. } => Error::ProviderRejected {
            message: "the video provider (100ms) has no rooms API at the configured address (HTTP 404/405); check HMS_API_BASE_URL (default https://api.100ms.live/v2)".into(),
            cause: Some(Box::new(e)),
        },
        e @ HmsError::Disabled(_) => Error::ProviderRejected {
            message: "the video provider (100ms) answered the call's room as disabled and did not enable it, so no call was stored; enable the room in 100ms or use another call id".into(),
            cause: Some(Box::new(e)),
        },
    }
}

fn parse_room(bytes: &[u8]) -> Option<Room> {
    let answer: RoomAnswer = serde_json::from_slice(bytes).ok()?;
    let id = answer.id?.as_str()?.to_string();
    // A room id goes into a path (to enable the room): 100ms's are 24 hex digits.
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    let name = answer
        .name
        .and_then(|n| n.as_str().map(str::to_string))
        .unwrap_or_default();
    // Absent or not a boolean: taken as enabled (older answers, the documented default).
    let enabled = answer.enabled.and_then(|e| e.as_bool()).unwrap_or(true);
    Some(Room { id, name, enabled })
}

/// 100ms's reason: `message` and `details` of its error body, or a snippet of the body.
fn reason(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrBody {
        message: Option<Value>,
        details: Option<Value>,
    }
    match serde_json::from_slice::<ErrBody>(bytes) {
        Ok(ErrBody {
            message: Some(Value::String(m)),
            details,
        }) => {
            let details = match details {
                Some(Value::Array(d)) => d
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; "),
                Some(Value::String(s)) => s,
                _ => String::new(),
            };
            let r = if details.is_empty() {
                m
            } else {
                format!("{m} ({details})")
            };
            r.chars().take(300).collect()
        }
        _ => snippet(bytes),
    }
}

fn snippet(bytes: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(bytes).chars().take(120).collect();
    if s.is_empty() {
        "(empty body)".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn app_token_matches_the_reference_vector() {
        let t = app_token(
            "6470b7a5e3f47d5e9a1c0f11",
            &Secret::new("test-secret-0123456789"),
            "6470b7a5e3f47d5e9a1c0f22",
            "host",
            "user-1",
            1_700_000_000,
            3600,
            "00000000-0000-4000-8000-000000000000",
        );
        assert_eq!(
            t.rsplit('.').next().unwrap(),
            "bik00cas5saAXA-Gg_EWmoPG7uaB55Hx1idO9gPkNJI"
        );
    }

    #[test]
    fn options_are_validated_and_unknown_keys_named() {
        let opts = |v: &Value| {
            CallOptions(
                v.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), crate::api::body::option_value(v)))
                    .collect(),
            )
        };
        let parse = |v: &Value| RoomOptions::from_options(&opts(v));
        assert_eq!(
            RoomOptions::from_options(&CallOptions::default()).unwrap(),
            RoomOptions::default()
        );
        let o = parse(&json!({"template_id":"t1","region":"eu","description":"d","size":10,"max_duration_seconds":600,"large_room":false})).unwrap();
        assert_eq!(o.region.as_deref(), Some("eu"));
        assert_eq!(o.size, Some(10));
        let nulls = json!({"template_id":null,"region":null,"description":null,"size":null,"max_duration_seconds":null,"large_room":null});
        assert_eq!(parse(&nulls).unwrap(), RoomOptions::default());
        for (bad, needle) in [
            (json!({"template": null}), "accepted keys"),
            (
                json!({"template":"x"}),
                "accepted keys: template_id, region, description, size, max_duration_seconds, large_room",
            ),
            (json!({"region":"mars"}), "options.region"),
            (json!({"size":-1}), "options.size"),
            (json!({"size":3000}), "large_room"),
            (
                json!({"max_duration_seconds":60}),
                "options.max_duration_seconds",
            ),
            (json!({"template_id":""}), "options.template_id"),
            (json!({"template_id":"a/b"}), "options.template_id"),
            (json!({"large_room":"yes"}), "options.large_room"),
            (json!({"size":1.5}), "options.size"),
            (json!({"region":["eu"]}), "options.region"),
        ] {
            let e = parse(&bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn lenient_room_parsing() {
        let r = parse_room(br#"{"id":"6470b7a5e3f47d5e9a1c0f22","name":"standup","enabled":true,"customer":"x","updated_at":"0001-01-01T00:00:00Z","recording_info":null,"new_field":{"a":[1]}}"#).unwrap();
        assert_eq!(
            r,
            Room {
                id: "6470b7a5e3f47d5e9a1c0f22".into(),
                name: "standup".into(),
                enabled: true,
            }
        );
        assert!(
            !parse_room(br#"{"id":"abc","enabled":false}"#)
                .unwrap()
                .enabled
        );
        assert!(
            parse_room(br#"{"id":"abc","enabled":"no"}"#)
                .unwrap()
                .enabled
        );
        assert!(parse_room(br#"{"id":"../x"}"#).is_none());
        assert!(parse_room(b"<html>").is_none());
        assert!(parse_room(br#"{"name":"x"}"#).is_none());
        assert!(parse_room(br#"{"id":""}"#).is_none());
        assert!(parse_room(br#"{"id":7}"#).is_none());
    }

    #[test]
    fn reasons_come_from_the_error_body() {
        assert_eq!(
            reason(br#"{"code":400,"message":"template not found","details":["bad id"]}"#),
            "template not found (bad id)"
        );
        assert_eq!(reason(b"oops"), "oops");
        assert_eq!(reason(b""), "(empty body)");
    }
}
