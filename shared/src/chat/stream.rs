//! Stream Chat's REST API, as Stream's official server-side SDK (stream-chat-js) sends it: a
//! server token `{"server":true}` signed with the API secret, `api_key`, `stream-auth-type: jwt`.
//! - Membership: `Channel.queryMembers` (`GET /members` with a `payload` query parameter),
//!   behind a bounded cache of positive answers and a single flight per (channel, user).
//! - Announcements: `Channel.sendMessage` (`POST /channels/{type}/{id}/message`),
//!   `Channel.sendEvent` (`POST .../event`) and `Channel.updatePartial` (`PATCH
//!   /channels/{type}/{id}`), one flight per call and remembered once made. The end of a call
//!   updates the announcement message (`client.partialUpdateMessage`: `PUT /messages/{id}`),
//!   sends `call.ended`, or sets the channel's `call` again.

use super::{Announcer, BoxFuture, Members, Membership};
use crate::call_view::CallView;
use crate::crypto;
use crate::domain::{Call, ChannelCid};
use crate::error::Error;
use crate::flight::{Remembered, SingleFlight};
use crate::hs256;
use crate::http_client::{self, HttpsClient};
use crate::secret::Secret;
use bytes::Bytes;
use http_body_util::Full;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Stream's public chat API host (stream-chat-js's default `baseURL`).
pub const DEFAULT_API_BASE: &str = "https://chat.stream-io-api.com";
/// Bounds on one membership check: two attempts of at most 1.5 s and a 0.1 s pause, 3.1 s at
/// worst, inside the functions' 20 s timeout with 100ms's 7.7 s and DynamoDB's 2 x 3 s.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
pub const RETRY_PAUSE: Duration = Duration::from_millis(100);
pub const DEFAULT_CACHE_SECS: u64 = 60;
pub const MAX_CACHE_SECS: u64 = 3600;
/// Seconds an announcement made is remembered in this process (concurrent or repeated creates
/// of one new call do not announce it again).
pub const REMEMBER_ANNOUNCED_SECS: u64 = 600;
/// What JavaScript's `encodeURIComponent` leaves as it is (stream-chat-js `_channelURL`).
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

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

/// Stream Chat: membership checks and announcements. Its secrets print as `***`.
#[derive(Debug)]
pub struct StreamChat {
    cfg: StreamConfig,
    client: HttpsClient,
    /// `{"server":true}` signed once: Stream's server tokens carry no time claims.
    server_token: Secret,
    /// Positive membership answers, by `cid\nuser`, until they expire.
    members: Remembered,
    in_flight: SingleFlight<Result<Membership, StreamError>>,
    /// Announcements made lately, by message id.
    announced: Remembered,
    announcing: SingleFlight<Result<(), StreamError>>,
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

#[derive(Serialize)]
struct MessageBody<'a> {
    message: Message<'a>,
}

#[derive(Serialize)]
struct Message<'a> {
    id: &'a str,
    text: &'static str,
    attachments: [CallAttachment<'a>; 1],
    user_id: &'a str,
}

#[derive(Serialize)]
struct CallAttachment<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    call: &'a CallView<'a>,
}

#[derive(Serialize)]
struct EventBody<'a> {
    event: Event<'a>,
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    call: &'a CallView<'a>,
    user_id: &'a str,
}

/// stream-chat-js 9.x `partialUpdateMessage(id, {set}, userId)`: `PUT /messages/{id}` with
/// `{"set": ..., "user": {"id": ...}}` (src/client.ts).
#[derive(Serialize)]
struct MessageUpdate<'a> {
    set: SetAttachments<'a>,
    user: UserId<'a>,
}

#[derive(Serialize)]
struct SetAttachments<'a> {
    attachments: [CallAttachment<'a>; 1],
}

#[derive(Serialize)]
struct UserId<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct PartialUpdate<'a> {
    set: SetCall<'a>,
}

#[derive(Serialize)]
struct SetCall<'a> {
    call: &'a CallView<'a>,
}

/// The ways of telling a channel (`CALLBRIDGE_NOTIFY` other than off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Announce {
    Message,
    Event,
    Channel,
}

/// Announcements through Stream Chat, one way of telling.
pub struct Announcing {
    pub stream: Arc<StreamChat>,
    pub mode: Announce,
}

impl Announcer for Announcing {
    fn announce<'a>(&'a self, call: &'a Call, now: u64) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.stream
                .announce(self.mode, call, now)
                .await
                .map_err(|e| not_told(call, "exists, but its channel was not told of it", e))
        })
    }

    fn announce_session<'a>(
        &'a self,
        call: &'a Call,
        key: &'a str,
        live: bool,
        now: u64,
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.stream
                .announce_session(self.mode, call, key, live, now)
                .await
                .map_err(|e| {
                    let what = if live { "went live" } else { "closed" };
                    not_told(
                        call,
                        &format!("recorded its provider's event, but its channel was not told that its session {what}"),
                        e,
                    )
                })
        })
    }

    fn announce_end<'a>(&'a self, call: &'a Call, now: u64) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            self.stream
                .announce_end(self.mode, call, now)
                .await
                .map_err(|e| {
                    not_told(
                        call,
                        "is ended and no new tokens are issued for it, but its channel was not told that it ended",
                        e,
                    )
                })
        })
    }
}

/// A failed announcement: the call is as `state` says, the channel was not told, and the same
/// request completes the announcement.
fn not_told(call: &Call, state: &str, e: StreamError) -> Error {
    let message = format!(
        "call {:?} {state} ({}); repeating the same request completes the announcement",
        call.id.as_str(),
        match &e {
            StreamError::Credentials { .. } => "Stream Chat rejected the configured credentials",
            StreamError::Refused { .. } => "Stream Chat refused the announcement",
            StreamError::RateLimited(_) => "Stream Chat is rate limiting",
            StreamError::Unavailable(_) => "Stream Chat did not answer usably",
        }
    );
    match e {
        StreamError::Credentials { .. } | StreamError::Refused { .. } => Error::ProviderRejected {
            message,
            cause: Some(Box::new(e)),
        },
        _ => Error::Provider {
            message,
            cause: Some(Box::new(e)),
        },
    }
}

impl StreamChat {
    pub fn new(cfg: StreamConfig, client: HttpsClient) -> Self {
        let server_token = Secret::new(hs256::sign_hs256(
            &ServerClaims { server: true },
            cfg.api_secret.expose().as_bytes(),
        ));
        StreamChat {
            cfg,
            client,
            server_token,
            members: Remembered::default(),
            in_flight: SingleFlight::default(),
            announced: Remembered::default(),
            announcing: SingleFlight::default(),
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
        if self.cfg.cache_secs > 0 && self.members.holds(&key, now) {
            return Ok(Membership::Member);
        }
        let started = std::time::Instant::now();
        let answer = self
            .in_flight
            .run(&key, || self.query_members(cid, user_id))
            .await;
        crate::telemetry::chat_queried(started, answer.as_ref().err().map(StreamError::kind));
        let answer = answer?;
        if answer == Membership::Member && self.cfg.cache_secs > 0 {
            self.members.keep(key, now + self.cfg.cache_secs, now);
        }
        Ok(answer)
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
        self.request(
            http::Method::GET,
            &uri,
            Bytes::new(),
            |status, bytes| match status {
                200..=299 => Some(match serde_json::from_slice::<Answer>(bytes) {
                    Ok(answer) => {
                        let listed = answer.members.iter().any(|m| {
                            m.user_id.as_deref() == Some(user_id)
                                || m.user.as_ref().and_then(|u| u.id.as_deref()) == Some(user_id)
                        });
                        Ok(if listed {
                            Membership::Member
                        } else {
                            Membership::NotMember
                        })
                    }
                    Err(e) => Err(format!("HTTP {status} with an unreadable answer: {e}")),
                }),
                404 => Some(Ok(Membership::NoChannel)),
                _ => None,
            },
        )
        .await
    }

    /// Tells the call's channel of the call, once: concurrent announcements of one call share
    /// one request, and one made lately is not made again.
    pub async fn announce(&self, mode: Announce, call: &Call, now: u64) -> Result<(), StreamError> {
        let id = message_id(call);
        self.once(id.clone(), now, || {
            self.send_announcement(mode, call, &id, now, "call.created")
        })
        .await
    }

    /// Tells the call's channel that the call ended, once: the announcement message's call
    /// attachment updated (sent now if it never was), a `call.ended` event, or the channel's
    /// `call` set again.
    pub async fn announce_end(
        &self,
        mode: Announce,
        call: &Call,
        now: u64,
    ) -> Result<(), StreamError> {
        self.update(mode, call, now, "ended", "call.ended").await
    }

    /// Tells the call's channel that its session went live or closed, once per `transition`:
    /// in the same ways, with `call.session_started` / `call.session_ended` events.
    pub async fn announce_session(
        &self,
        mode: Announce,
        call: &Call,
        transition: &str,
        live: bool,
        now: u64,
    ) -> Result<(), StreamError> {
        let event = if live {
            "call.session_started"
        } else {
            "call.session_ended"
        };
        self.update(mode, call, now, transition, event).await
    }

    /// The call as it stands now, in its channel, once for `what`.
    async fn update(
        &self,
        mode: Announce,
        call: &Call,
        now: u64,
        what: &str,
        event: &'static str,
    ) -> Result<(), StreamError> {
        let id = message_id(call);
        let key = format!("{id}/{what}");
        self.once(key, now, || async {
            if mode != Announce::Message {
                return self.send_announcement(mode, call, &id, now, event).await;
            }
            let view = CallView::of(call, now);
            let body = serde_json::to_vec(&MessageUpdate {
                set: SetAttachments {
                    attachments: [CallAttachment {
                        kind: "call",
                        call: &view,
                    }],
                },
                user: UserId { id: ender(call) },
            })
            .expect("message update serialises");
            let uri = format!(
                "{}/messages/{}?api_key={}",
                self.cfg.api_base,
                utf8_percent_encode(&id, URI_COMPONENT),
                utf8_percent_encode(&self.cfg.api_key, NON_ALPHANUMERIC),
            );
            let updated = self
                .request(http::Method::PUT, &uri, Bytes::from(body), |status, _| {
                    match status {
                        200..=299 => Some(Ok(true)),
                        // No such message: its announcement was never made; make it now.
                        404 => Some(Ok(false)),
                        _ => None,
                    }
                })
                .await?;
            if updated {
                Ok(())
            } else {
                self.send_announcement(mode, call, &id, now, event).await
            }
        })
        .await
    }

    /// Runs `send` unless `key` was told lately; concurrent tellings of one key share one.
    async fn once<F: Future<Output = Result<(), StreamError>>>(
        &self,
        key: String,
        now: u64,
        send: impl FnOnce() -> F,
    ) -> Result<(), StreamError> {
        if self.announced.holds(&key, now) {
            return Ok(());
        }
        self.announcing.run(&key, send).await?;
        self.announced.keep(key, now + REMEMBER_ANNOUNCED_SECS, now);
        Ok(())
    }

    /// The call in its channel as it stands at `now`: a new message, an `event`, or the
    /// channel's `call` field.
    async fn send_announcement(
        &self,
        mode: Announce,
        call: &Call,
        message_id: &str,
        now: u64,
        event: &'static str,
    ) -> Result<(), StreamError> {
        let (channel_type, channel_id) = call.cid.parts();
        let channel = format!(
            "{}/channels/{}/{}",
            self.cfg.api_base,
            utf8_percent_encode(channel_type, URI_COMPONENT),
            utf8_percent_encode(channel_id, URI_COMPONENT),
        );
        let key = utf8_percent_encode(&self.cfg.api_key, NON_ALPHANUMERIC);
        let view = CallView::of(call, now);
        let ended = call.ended.is_some();
        let user_id = if ended {
            ender(call)
        } else {
            call.created_by.as_str()
        };
        let (method, uri, body) = match mode {
            Announce::Message => (
                http::Method::POST,
                format!("{channel}/message?api_key={key}"),
                serde_json::to_vec(&MessageBody {
                    message: Message {
                        id: message_id,
                        text: "",
                        attachments: [CallAttachment {
                            kind: "call",
                            call: &view,
                        }],
                        user_id,
                    },
                }),
            ),
            Announce::Event => (
                http::Method::POST,
                format!("{channel}/event?api_key={key}"),
                serde_json::to_vec(&EventBody {
                    event: Event {
                        kind: event,
                        call: &view,
                        user_id,
                    },
                }),
            ),
            Announce::Channel => (
                http::Method::PATCH,
                format!("{channel}?api_key={key}"),
                serde_json::to_vec(&PartialUpdate {
                    set: SetCall { call: &view },
                }),
            ),
        };
        let body = Bytes::from(body.expect("announcement serialises"));
        self.request(method, &uri, body, |status, bytes| match status {
            200..=299 => Some(Ok(())),
            // The message id was used: this call was announced before (a retry after a lost
            // answer, or another instance). Stream refuses it as a duplicate; that is success.
            400 if mode == Announce::Message && reason(bytes).contains("already exists") => {
                Some(Ok(()))
            }
            _ => None,
        })
        .await
    }

    /// One request, retried once when Stream gave no usable answer. `read` decides what a
    /// status and body mean for this operation: `Some(Ok)` an answer, `Some(Err)` an
    /// unreadable one (retried), `None` the general meaning of the status.
    async fn request<T>(
        &self,
        method: http::Method,
        uri: &str,
        body: Bytes,
        read: impl Fn(u16, &[u8]) -> Option<Result<T, String>> + Sync,
    ) -> Result<T, StreamError> {
        let retry = http_client::Retry {
            attempt_limit: ATTEMPT_TIMEOUT,
            pause: RETRY_PAUSE,
            renew: None,
        };
        let build = || self.build(method.clone(), uri, body.clone());
        http_client::rest(&self.client, retry, "Stream Chat", build, &read, reason)
            .await
            .map_err(StreamError::from)
    }

    /// One attempt's request, with Stream's server credentials.
    fn build(
        &self,
        method: http::Method,
        uri: &str,
        body: Bytes,
    ) -> Result<http::Request<Full<Bytes>>, String> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::AUTHORIZATION, self.server_token.expose())
            .header("stream-auth-type", "jwt")
            .header(
                "X-Stream-Client",
                concat!("callbridge-", env!("CARGO_PKG_VERSION")),
            )
            .header(
                "x-client-request-id",
                uuid::Uuid::new_v4().hyphenated().to_string(),
            )
            .header(http::header::ACCEPT, "application/json");
        if !body.is_empty() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        req.body(Full::new(body))
            .map_err(|e| format!("the request could not be built: {e}"))
    }
}

/// Who ended the call (its creator when End Call did not say).
fn ender(call: &Call) -> &str {
    call.ended
        .as_ref()
        .map_or(call.created_by.as_str(), |e| e.by.as_str())
}

/// The id of the message that announces `call`: derived from the call's id and creation time,
/// so a repeat is refused by Stream as a duplicate and an expired id created again gets a
/// message of its own. `callbridge-<created_at>-<32 hex digits of SHA-256(call id)>`.
pub fn message_id(call: &Call) -> String {
    let digest = crypto::sha256(call.id.as_str().as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("callbridge-{}-{hex}", call.created_at)
}

/// Stream's `message`, or a snippet of the body.
fn reason(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(ErrorBody { message: Some(m) }) => m.chars().take(300).collect(),
        _ => http_client::snippet(bytes),
    }
}

impl StreamError {
    /// The failure as a `Kind` of the `ChatErrors` metric.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamError::Credentials { .. } => "credentials",
            StreamError::RateLimited(_) => "throttled",
            StreamError::Refused { .. } => "rejected",
            StreamError::Unavailable(_) => "unavailable",
        }
    }
}

impl From<http_client::Failure> for StreamError {
    fn from(f: http_client::Failure) -> Self {
        match f {
            http_client::Failure::Credentials { status, reason } => {
                StreamError::Credentials { status, reason }
            }
            http_client::Failure::RateLimited { retry_after } => {
                StreamError::RateLimited(retry_after)
            }
            http_client::Failure::Refused { status, reason } => {
                StreamError::Refused { status, reason }
            }
            http_client::Failure::Unavailable(why) => StreamError::Unavailable(why),
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

impl Members for StreamChat {
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
