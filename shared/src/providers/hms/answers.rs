//! 100ms's answers: its failures (`HmsError`), what each means to a client, and the rooms and
//! reasons read out of its bodies.

use super::Room;
use crate::error::Error;
use serde::Deserialize;
use serde_json::Value;

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

#[derive(Deserialize)]
struct RoomAnswer {
    id: Option<Value>,
    name: Option<Value>,
    enabled: Option<Value>,
}

/// The reason 100ms is given when End Call carried none.
pub const DEFAULT_END_REASON: &str = "the call was ended";

/// A failure to end a session, as the End Call answer names it (after "the call is ended,
/// but").
pub(super) fn end_error(e: HmsError) -> Error {
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
pub(super) fn client_error(e: HmsError, caller_options: bool) -> Error {
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

pub(super) fn parse_room(bytes: &[u8]) -> Option<Room> {
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
pub(super) fn reason(bytes: &[u8]) -> String {
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

pub(super) use crate::http_client::snippet;

#[cfg(test)]
mod tests {
    use super::*;

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
