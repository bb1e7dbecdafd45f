//! Stream's wire shapes that more than one adapter writes: the call object, as the Create Call
//! and End Call responses carry it and as announcements into the channel carry it.

use crate::domain::{Call, SessionRecord};
use serde::Serialize;

/// The call object as Stream's client SDKs decode it: both provider objects are always
/// present (Android requires them), the unused one with empty strings. The fields after `hms`
/// are Callbridge's own (the SDKs' models ignore them): times in RFC 3339, UTC.
#[derive(Serialize, Debug)]
pub struct CallView<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    #[serde(rename = "type")]
    pub call_type: &'a str,
    pub agora: AgoraView<'a>,
    pub hms: HmsView<'a>,
    /// `active` or `ended`.
    pub state: &'static str,
    pub created_at: String,
    pub created_by: &'a str,
    /// When the call ends by its time limit; absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// `null` while the call is active.
    pub ended_at: Option<String>,
    /// Who ended it; `null` while active, or when its time limit ended it.
    pub ended_by: Option<&'a str>,
    pub ended_reason: Option<&'a str>,
    /// The media session, as the provider's events report it.
    pub session: SessionView,
}

/// The session record: `live` while a session runs, else `idle` (also before any event).
#[derive(Serialize, Debug)]
pub struct SessionView {
    pub state: &'static str,
    /// Start of the current or last session.
    pub started_at: Option<String>,
    /// End of the last session, once it is over.
    pub ended_at: Option<String>,
    /// Seconds from its start to its end, or to now while live.
    pub duration_seconds: Option<u64>,
    /// People in the session now.
    pub participants: u32,
    /// The most people in the call at once.
    pub max_participants: u32,
    /// Sessions so far.
    pub sessions: u32,
}

#[derive(Serialize, Debug)]
pub struct AgoraView<'a> {
    pub channel: &'a str,
}

#[derive(Serialize, Debug)]
pub struct HmsView<'a> {
    pub room_id: &'a str,
    pub room_name: &'a str,
}

impl<'a> CallView<'a> {
    /// The call as it stands at `now` (Unix seconds).
    pub fn of(call: &'a Call, now: u64) -> Self {
        let (channel, room_id, room_name) = call.provider.client_view();
        let ended = call.ended.as_ref();
        CallView {
            id: call.id.as_str(),
            provider: call.provider.kind().as_str(),
            call_type: call.call_type.as_str(),
            agora: AgoraView { channel },
            hms: HmsView { room_id, room_name },
            state: call.state(now).as_str(),
            created_at: rfc3339(call.created_at),
            created_by: &call.created_by,
            ends_at: call.ends_at.map(rfc3339),
            ended_at: call.ended_at(now).map(rfc3339),
            ended_by: ended.map(|e| e.by.as_str()),
            ended_reason: ended.and_then(|e| e.reason.as_deref()),
            session: SessionView::of(&call.media.record(), now),
        }
    }
}

impl SessionView {
    pub fn of(r: &SessionRecord, now: u64) -> Self {
        let secs = |ms: u64| ms / 1000;
        let duration_seconds = r.started_at.map(|start| {
            let end = r.ended_at.map_or(now, secs);
            end.saturating_sub(secs(start))
        });
        SessionView {
            state: if r.live { "live" } else { "idle" },
            started_at: r.started_at.map(|ms| rfc3339(secs(ms))),
            ended_at: r.ended_at.map(|ms| rfc3339(secs(ms))),
            duration_seconds,
            participants: r.participants,
            max_participants: r.max_participants,
            sessions: r.sessions,
        }
    }
}

/// Unix seconds as RFC 3339 in UTC (`2026-12-06T08:44:34Z`).
pub fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        // Past year 9999: no RFC 3339 form; the number says what it is.
        .unwrap_or_else(|| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        // date -u -d @1800000000 --iso-8601=seconds
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(rfc3339(u64::MAX), u64::MAX.to_string());
    }
}
