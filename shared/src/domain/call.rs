//! The call: what is stored per call id. How it is shown to clients is the API layer's
//! business; what its provider details mean is the providers' (`crate::providers`).

use super::id::{CallId, ChannelCid};

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
}

impl Call {
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
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
