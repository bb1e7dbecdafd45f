//! The call: what is stored per call id, and how it is shown to clients.

use crate::id::{CallId, ChannelCid};
use serde::Serialize;

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

/// Where the call lives at its provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderDetails {
    Agora { channel: String },
    Hms { room_id: String, room_name: String },
}

impl ProviderDetails {
    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderDetails::Agora { .. } => ProviderKind::Agora,
            ProviderDetails::Hms { .. } => ProviderKind::Hms,
        }
    }
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
}

impl Call {
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// The call object as Stream's client SDKs decode it: both provider objects are always
    /// present (Android requires them), the unused one with empty strings.
    pub fn view(&self) -> CallView<'_> {
        let (channel, room_id, room_name) = match &self.provider {
            ProviderDetails::Agora { channel } => (channel.as_str(), "", ""),
            ProviderDetails::Hms { room_id, room_name } => {
                ("", room_id.as_str(), room_name.as_str())
            }
        };
        CallView {
            id: self.id.as_str(),
            provider: self.provider.kind().as_str(),
            call_type: self.call_type.as_str(),
            agora: AgoraView { channel },
            hms: HmsView { room_id, room_name },
        }
    }
}

#[derive(Serialize, Debug)]
pub struct CallView<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    #[serde(rename = "type")]
    pub call_type: &'a str,
    pub agora: AgoraView<'a>,
    pub hms: HmsView<'a>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_always_carries_both_provider_objects() {
        let call = Call {
            id: CallId::parse("Standup").unwrap(),
            cid: ChannelCid::parse("messaging", "general").unwrap(),
            call_type: CallType::Audio,
            provider: ProviderDetails::Hms {
                room_id: "r1".into(),
                room_name: "standup".into(),
            },
            created_by: "u".into(),
            created_at: 1,
            expires_at: 10,
        };
        let v = serde_json::to_value(call.view()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id":"standup","provider":"hms","type":"audio",
                "agora":{"channel":""},"hms":{"room_id":"r1","room_name":"standup"}})
        );
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
}
