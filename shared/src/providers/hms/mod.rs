//! 100ms: rooms over the REST API, management tokens (cached), app tokens (signed locally).
//! Its parts: `options` (room options), `tokens` (app and management tokens), `answers` (its
//! failures and what they mean, its bodies read); here the settings and the REST client.

mod answers;
mod options;
mod tokens;

pub use answers::{DEFAULT_END_REASON, HmsError};
use answers::{client_error, end_error, parse_room, reason, snippet};
pub use options::RoomOptions;
pub use tokens::{app_token, management_token};

use super::{JoinToken, Provider, ProviderEnd, TokenFor};
use crate::domain::{Call, CallId, CallOptions, ProviderDetails, ProviderKind};
use crate::error::Error;
use crate::flight::SingleFlight;
use crate::http_client::{self, HttpsClient, Read};
use crate::secret::Secret;
use crate::telemetry;
use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
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
        let retry = http_client::Retry {
            attempt_limit: ATTEMPT_TIMEOUT,
            pause: RETRY_PAUSE,
            renew: Some(&renew),
        };
        http_client::rest(&self.client, retry, "100ms", build, read, reason)
            .await
            .map_err(|f| match f {
                http_client::Failure::Credentials { status, reason } => {
                    HmsError::Credentials { status, reason }
                }
                http_client::Failure::RateLimited { .. } => HmsError::RateLimited,
                http_client::Failure::Refused {
                    status: 400 | 422,
                    reason,
                } => HmsError::Rejected(reason),
                http_client::Failure::Refused {
                    status: status @ (404 | 405),
                    ..
                } => HmsError::NoSuchApi {
                    status,
                    url: uri.clone(),
                },
                http_client::Failure::Refused { status, reason } => {
                    HmsError::Unavailable(format!("HTTP {status}: {reason}"))
                }
                http_client::Failure::Unavailable(why) => HmsError::Unavailable(why),
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
