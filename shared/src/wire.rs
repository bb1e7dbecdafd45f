//! Stream's wire shapes that more than one adapter writes: the call object, as the Create Call
//! response carries it and as announcements into the channel carry it.

use crate::domain::Call;
use serde::Serialize;

/// The call object as Stream's client SDKs decode it: both provider objects are always
/// present (Android requires them), the unused one with empty strings.
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

impl<'a> CallView<'a> {
    pub fn of(call: &'a Call) -> Self {
        let (channel, room_id, room_name) = call.provider.client_view();
        CallView {
            id: call.id.as_str(),
            provider: call.provider.kind().as_str(),
            call_type: call.call_type.as_str(),
            agora: AgoraView { channel },
            hms: HmsView { room_id, room_name },
        }
    }
}
