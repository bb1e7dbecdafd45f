//! The call: what is stored per call id. How it is shown to clients is the API layer's
//! business; what its provider details mean is the providers' (`crate::providers`).

use super::id::{CallId, ChannelCid};
use super::session::{Fact, SessionRecord};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallType {
    Video,
    Audio,
}

impl CallType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "video" => Some(CallType::Video),
            "audio" => Some(CallType::Audio),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CallType::Video => "video",
            CallType::Audio => "audio",
        }
    }
}

/// The video providers a call can live at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    Agora,
    Hms,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "agora" => Some(ProviderKind::Agora),
            "hms" => Some(ProviderKind::Hms),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Agora => "agora",
            ProviderKind::Hms => "hms",
        }
    }
}

/// Where the call lives at its provider (see `crate::providers` for what each field means and
/// how it is stored and shown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderDetails {
    Agora { channel: String },
    Hms { room_id: String, room_name: String },
}

/// A stored call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub id: CallId,
    pub cid: ChannelCid,
    pub call_type: CallType,
    pub provider: ProviderDetails,
    /// User id of the creator.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds after which the call no longer exists.
    pub expires_at: u64,
    /// Stored with a new call when the channel is to be told of it (`CALLBRIDGE_NOTIFY`), and
    /// cleared once it was: a repeated Create Call completes an announcement that failed.
    pub pending_announcement: bool,
    /// Unix seconds at which the call ends by itself (`created_at + max_duration_seconds`);
    /// `None`: no time limit.
    pub ends_at: Option<u64>,
    /// Set once End Call ended the call.
    pub ended: Option<Ended>,
    /// An Agora kicking rule left by an earlier call with this id, still to be removed (its
    /// removal failed when this call was created).
    pub stale_kick_rule: Option<KickRule>,
    /// What the provider reported of the call's media session.
    pub media: Media,
}

/// The provider's events of a call, and which of their transitions the channel was told.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Media {
    pub facts: Vec<Fact>,
    /// Transition keys (`started:<session>`, `ended:<session>`) the channel was told of.
    pub told: BTreeSet<String>,
}

/// Most events kept per call: past it, participants' events are dropped (session starts and
/// ends are still kept), so that a call's item stays far below DynamoDB's 400 KB.
pub const MAX_FACTS: usize = 400;

impl Media {
    pub fn has(&self, id: &str) -> bool {
        self.facts.iter().any(|f| f.id == id)
    }

    pub fn record(&self) -> SessionRecord {
        SessionRecord::of(&self.facts)
    }
}

/// How a call was ended by End Call, and what of the ending is still to be done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// Unix seconds.
    pub at: u64,
    /// User id of whoever ended it.
    pub by: String,
    pub reason: Option<String>,
    /// The provider is still to be told (end the 100ms session, remove everyone from the Agora
    /// channel): a repeated End Call retries it.
    pub provider_pending: bool,
    /// The channel is still to be told that the call ended: a repeated End Call retries it.
    pub announce_pending: bool,
    /// Agora: the kicking rule that removed everyone from the channel.
    pub kick_rule: Option<KickRule>,
}

/// An Agora kicking rule: its id at Agora, and when it lapses by itself (Unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KickRule {
    pub id: u64,
    pub until: u64,
}

/// Whether a call can still be joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallState {
    Active,
    Ended,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Active => "active",
            CallState::Ended => "ended",
        }
    }
}

/// Bounds of `max_duration_seconds`, for every provider.
pub const MIN_DURATION_SECS: u64 = 60;
pub const MAX_DURATION_SECS: u64 = 86_400;

impl Call {
    /// The call's storage lifetime is over: it no longer exists (its id may be created again).
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// Its time limit has passed.
    pub fn timed_out(&self, now: u64) -> bool {
        self.ends_at.is_some_and(|end| now >= end)
    }

    /// Ended by End Call or by its time limit: no token is issued for it any more, and Create
    /// Call with its id starts a new call.
    pub fn state(&self, now: u64) -> CallState {
        if self.ended.is_some() || self.timed_out(now) {
            CallState::Ended
        } else {
            CallState::Active
        }
    }

    /// When the call ended, if it has: End Call's time, else its time limit once passed.
    pub fn ended_at(&self, now: u64) -> Option<u64> {
        match &self.ended {
            Some(e) => Some(self.ends_at.map_or(e.at, |end| end.min(e.at))),
            None => self.ends_at.filter(|end| now >= *end),
        }
    }

    /// No token for this call may be valid after this moment (Unix seconds): its time limit,
    /// and in any case the end of its storage lifetime.
    pub fn token_deadline(&self) -> u64 {
        self.ends_at
            .map_or(self.expires_at, |end| end.min(self.expires_at))
    }
}

/// The provider options of a Create Call request, key by key as the client sent them (the
/// provider decides which it accepts). Empty when the request had none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CallOptions(pub Vec<(String, OptionValue)>);

/// One option value, as far as any provider needs to tell values apart.
#[derive(Clone, Debug, PartialEq)]
pub enum OptionValue {
    Null,
    Bool(bool),
    /// A whole number from 0 to 2^64-1.
    Count(u64),
    /// Any other number (negative, fractional, too large).
    OtherNumber,
    Text(String),
    /// A list or an object.
    Structured,
}

impl OptionValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            OptionValue::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_count(&self) -> Option<u64> {
        match self {
            OptionValue::Count(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            OptionValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Attribute names of the provider details, as stored (see `store::dynamodb`).
pub const AGORA_CHANNEL: &str = "agora_channel";
pub const HMS_ROOM_ID: &str = "hms_room_id";
pub const HMS_ROOM_NAME: &str = "hms_room_name";

impl ProviderDetails {
    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderDetails::Agora { .. } => ProviderKind::Agora,
            ProviderDetails::Hms { .. } => ProviderKind::Hms,
        }
    }

    /// The details as named string fields, for storage.
    pub fn fields(&self) -> Vec<(&'static str, &str)> {
        match self {
            ProviderDetails::Agora { channel } => vec![(AGORA_CHANNEL, channel)],
            ProviderDetails::Hms { room_id, room_name } => {
                vec![(HMS_ROOM_ID, room_id), (HMS_ROOM_NAME, room_name)]
            }
        }
    }

    /// Rebuilds stored details: `kind` as [`ProviderKind::as_str`] wrote it, `field` reads one
    /// of the names [`ProviderDetails::fields`] wrote. The error names what is missing.
    pub fn from_fields<'a>(
        kind: &str,
        field: impl Fn(&'static str) -> Option<&'a str>,
    ) -> Result<Self, String> {
        let get = |name: &'static str| {
            field(name)
                .map(str::to_string)
                .ok_or_else(|| format!("attribute {name} missing or not a string"))
        };
        match ProviderKind::parse(kind) {
            Some(ProviderKind::Agora) => Ok(ProviderDetails::Agora {
                channel: get(AGORA_CHANNEL)?,
            }),
            Some(ProviderKind::Hms) => Ok(ProviderDetails::Hms {
                room_id: get(HMS_ROOM_ID)?,
                room_name: get(HMS_ROOM_NAME)?,
            }),
            None => Err(format!("unknown provider {kind:?}")),
        }
    }

    /// `(agora channel, 100ms room id, 100ms room name)`, empty where the call is not at that
    /// provider: the call object of Stream's client SDKs carries both provider objects.
    pub fn client_view(&self) -> (&str, &str, &str) {
        match self {
            ProviderDetails::Agora { channel } => (channel, "", ""),
            ProviderDetails::Hms { room_id, room_name } => ("", room_id, room_name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_inclusive_of_expires_at() {
        let call = Call {
            id: CallId::parse("Standup").unwrap(),
            cid: ChannelCid::parse("messaging", "general").unwrap(),
            call_type: CallType::Audio,
            provider: ProviderDetails::Agora {
                channel: "standup".into(),
            },
            created_by: "u".into(),
            created_at: 1,
            expires_at: 10,
            pending_announcement: false,
            ends_at: None,
            ended: None,
            stale_kick_rule: None,
            media: Default::default(),
        };
        assert!(!call.is_expired(9));
        assert!(call.is_expired(10));
    }

    #[test]
    fn parse_round_trips() {
        for t in [CallType::Video, CallType::Audio] {
            assert_eq!(CallType::parse(t.as_str()), Some(t));
        }
        assert_eq!(CallType::parse("Video"), None);
        for p in [ProviderKind::Agora, ProviderKind::Hms] {
            assert_eq!(ProviderKind::parse(p.as_str()), Some(p));
        }
        assert_eq!(ProviderKind::parse("100ms"), None);
    }

    #[test]
    fn option_values_answer_only_their_own_kind() {
        assert_eq!(OptionValue::Text("eu".into()).as_str(), Some("eu"));
        assert_eq!(OptionValue::Count(3).as_str(), None);
        assert_eq!(OptionValue::Count(3).as_count(), Some(3));
        assert_eq!(OptionValue::OtherNumber.as_count(), None);
        assert_eq!(OptionValue::Bool(true).as_bool(), Some(true));
        assert_eq!(OptionValue::Null.as_bool(), None);
    }
}
