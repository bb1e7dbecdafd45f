//! The providers' event notifications, authenticated and read into provider-neutral facts:
//! 100ms's webhooks (not signed: a secret header configured with the webhook) and Agora's
//! Notification Center Service (NCS) events (`Agora-Signature-V2`: HMAC-SHA256 of the raw body).
//!
//! Shapes: 100ms `docs/server-side/v2/how-to-guides/configure-webhooks/webhook.md`
//! (100mslive/100ms-docs); Agora NCS `shared/notification-center-service/*`
//! (AgoraIO/Docs-Source). Both are read leniently: unknown fields are ignored, and an event that
//! does not say what Callbridge needs is ignored, never an error.

use super::agora::channel_for;
use crate::crypto;
use crate::domain::{CallId, Fact, MediaEvent, ProviderKind};
use crate::secret::Secret;
use serde::Deserialize;

/// The header 100ms is configured to send with its webhooks (`HMS_WEBHOOK_SECRET`), as it is
/// written in the room's webhook and as it is looked up (HTTP header names are
/// case-insensitive).
pub const HMS_SECRET_HEADER_NAME: &str = "X-Callbridge-Webhook-Secret";
pub const HMS_SECRET_HEADER: &str = "x-callbridge-webhook-secret";
/// Agora's HMAC-SHA256 signature header.
pub const AGORA_SIGNATURE_HEADER: &str = "agora-signature-v2";

pub use callbridge_core::providers::ProviderEvent;

/// Why an authenticated event is not applied (answered 200 all the same: providers re-send
/// anything else).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// Not JSON, or without the fields its type needs.
    Malformed,
    /// A type Callbridge does not track (recordings, role changes, other products).
    Untracked,
    /// Its room or channel is not named like a Callbridge call.
    NotACall,
}

impl Ignored {
    pub fn as_str(self) -> &'static str {
        match self {
            Ignored::Malformed => "malformed",
            Ignored::Untracked => "untracked",
            Ignored::NotACall => "not_a_call",
        }
    }
}

/// 100ms: the configured secret header, compared in constant time.
pub fn hms_authentic(secret: &Secret, header: Option<&[u8]>) -> bool {
    header.is_some_and(|h| crypto::equal_constant_time(h, secret.expose().as_bytes()))
}

/// Agora: `Agora-Signature-V2` is the lowercase hex HMAC-SHA256 of the raw body keyed with
/// the NCS secret; checked in constant time.
pub fn agora_authentic(secret: &Secret, body: &[u8], header: Option<&[u8]>) -> bool {
    let Some(hex) = header else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    crypto::hmac_sha256_verify(secret.expose().as_bytes(), body, &tag)
}

fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

#[derive(Deserialize)]
struct HmsEnvelope {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    timestamp: Option<String>,
    #[serde(default)]
    data: HmsData,
}

#[derive(Deserialize, Default)]
struct HmsData {
    room_id: Option<String>,
    room_name: Option<String>,
    session_id: Option<String>,
    peer_id: Option<String>,
    joined_at: Option<String>,
    left_at: Option<String>,
    session_started_at: Option<String>,
    session_stopped_at: Option<String>,
}

/// A 100ms webhook body.
pub fn parse_hms(body: &[u8]) -> Result<ProviderEvent, Ignored> {
    let env: HmsEnvelope = serde_json::from_slice(body).map_err(|_| Ignored::Malformed)?;
    let kind = env.kind.as_deref().ok_or(Ignored::Malformed)?;
    let tracked = [
        "session.open.success",
        "session.close.success",
        "peer.join.success",
        "peer.leave.success",
        "room.end.success",
    ];
    if !tracked.contains(&kind) {
        return Err(Ignored::Untracked);
    }
    let id = env.id.filter(|i| !i.is_empty()).ok_or(Ignored::Malformed)?;
    let d = env.data;
    let room_id = d
        .room_id
        .filter(|r| !r.is_empty())
        .ok_or(Ignored::Malformed)?;
    let call = d
        .room_name
        .as_deref()
        .and_then(|n| CallId::parse(n).ok())
        .ok_or(Ignored::NotACall)?;
    let session = Some(
        d.session_id
            .filter(|s| !s.is_empty())
            .ok_or(Ignored::Malformed)?,
    );
    let sent = env.timestamp.as_deref().and_then(millis);
    let started = d.session_started_at.as_deref().and_then(millis);
    let peer = || {
        d.peer_id
            .clone()
            .filter(|p| !p.is_empty())
            .ok_or(Ignored::Malformed)
    };
    let at = |field: &Option<String>| {
        field
            .as_deref()
            .and_then(millis)
            .or(sent)
            .ok_or(Ignored::Malformed)
    };
    let event = match kind {
        "session.open.success" => MediaEvent::Opened {
            session: session.clone(),
            at: started.or(sent).ok_or(Ignored::Malformed)?,
        },
        "session.close.success" => MediaEvent::Closed {
            session: session.clone(),
            at: at(&d.session_stopped_at)?,
        },
        "room.end.success" => MediaEvent::Closed {
            session: session.clone(),
            at: sent.ok_or(Ignored::Malformed)?,
        },
        "peer.join.success" => MediaEvent::Joined {
            session: session.clone(),
            peer: peer()?,
            at: at(&d.joined_at)?,
            seq: 0,
        },
        _ => MediaEvent::Left {
            session: session.clone(),
            peer: peer()?,
            at: at(&d.left_at)?,
            seq: 0,
        },
    };
    let mut facts = vec![Fact { id, event }];
    // Every event of a session says when it started: a session whose open event is late or
    // lost still has its start.
    if let (Some(at), Some(s)) = (started, &session)
        && kind != "session.open.success"
    {
        facts.push(Fact {
            id: format!("open:{s}"),
            event: MediaEvent::Opened {
                session: session.clone(),
                at,
            },
        });
    }
    Ok(ProviderEvent {
        provider: ProviderKind::Hms,
        call,
        place: room_id,
        facts,
    })
}

/// RFC 3339 (100ms writes nanoseconds) as Unix milliseconds; 100ms's "no time"
/// (`0001-01-01T00:00:00Z`) and anything before 1970 as none.
fn millis(text: &str) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .ok()
        .filter(|ms| *ms > 0)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgoraEnvelope {
    notice_id: Option<String>,
    product_id: Option<u64>,
    event_type: Option<u64>,
    #[serde(default)]
    payload: AgoraPayload,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AgoraPayload {
    channel_name: Option<String>,
    /// Unix seconds.
    ts: Option<u64>,
    uid: Option<u64>,
    client_seq: Option<u64>,
}

/// An Agora NCS body (RTC channel events, `productId` 1).
pub fn parse_agora(body: &[u8]) -> Result<ProviderEvent, Ignored> {
    let env: AgoraEnvelope = serde_json::from_slice(body).map_err(|_| Ignored::Malformed)?;
    if env.product_id != Some(1) {
        return Err(Ignored::Untracked);
    }
    let kind = env.event_type.ok_or(Ignored::Malformed)?;
    if !(101..=108).contains(&kind) {
        return Err(Ignored::Untracked);
    }
    let id = env
        .notice_id
        .filter(|n| !n.is_empty())
        .ok_or(Ignored::Malformed)?;
    let p = env.payload;
    let channel = p
        .channel_name
        .filter(|c| !c.is_empty())
        .ok_or(Ignored::Malformed)?;
    // Calls whose id is their channel (ids of up to 63 characters; see `channel_for`).
    let call = CallId::parse(&channel)
        .ok()
        .filter(|id| channel_for(id) == channel)
        .ok_or(Ignored::NotACall)?;
    let at =
        p.ts.and_then(|s| s.checked_mul(1000))
            .ok_or(Ignored::Malformed)?;
    let peer = || p.uid.map(|u| u.to_string()).ok_or(Ignored::Malformed);
    let seq = p.client_seq.unwrap_or(0);
    let event = match kind {
        101 => MediaEvent::Opened { session: None, at },
        102 => MediaEvent::Closed { session: None, at },
        // Broadcaster, audience and communication joins and leaves: all of them, since the
        // documentation disagrees on which codes communication mode reports.
        103 | 105 | 107 => MediaEvent::Joined {
            session: None,
            peer: peer()?,
            at,
            seq,
        },
        _ => MediaEvent::Left {
            session: None,
            peer: peer()?,
            at,
            seq,
        },
    };
    Ok(ProviderEvent {
        provider: ProviderKind::Agora,
        call,
        place: channel,
        facts: vec![Fact { id, event }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agora_signatures_verify_against_an_independent_hmac() {
        // Computed with Python's hmac module, not this code:
        // hmac.new(b"ncs-secret", body, hashlib.sha256).hexdigest()
        let body = br#"{"noticeId":"n1","productId":1,"eventType":101,"notifyMs":1,"payload":{"channelName":"standup","ts":1}}"#;
        let computed = "5dc871ae5673ad0e9f674b1b4c5b3eab22f56340fe273dc4054951db92ebb08a";
        let secret = Secret::new("ncs-secret");
        assert!(agora_authentic(&secret, body, Some(computed.as_bytes())));
        assert!(agora_authentic(
            &secret,
            body,
            Some(computed.to_uppercase().as_bytes())
        ));
        let mut bad = computed.as_bytes().to_vec();
        bad[0] = if bad[0] == b'0' { b'1' } else { b'0' };
        assert!(!agora_authentic(&secret, body, Some(&bad)));
        assert!(!agora_authentic(&secret, body, None));
        assert!(!agora_authentic(&secret, body, Some(b"zz")));
        assert!(!agora_authentic(
            &Secret::new("other"),
            body,
            Some(computed.as_bytes())
        ));
        assert!(!agora_authentic(&secret, b"{}", Some(computed.as_bytes())));
    }

    #[test]
    fn the_100ms_secret_header_must_match_exactly() {
        let s = Secret::new("hook-secret");
        assert!(hms_authentic(&s, Some(b"hook-secret")));
        assert!(!hms_authentic(&s, Some(b"hook-secret ")));
        assert!(!hms_authentic(&s, Some(b"")));
        assert!(!hms_authentic(&s, None));
    }

    #[test]
    fn hms_events_from_the_documented_samples() {
        let join = br#"{"version":"2.0","id":"6c75de35-b778-4fb0-88ae-114c28dc285f","account_id":"60b8e13a6eb86d8101b57354",
            "timestamp":"2021-08-08T07:04:15Z","type":"peer.join.success","data":{"joined_at":"2021-08-08T07:04:15.001380432Z",
            "peer_id":"83b869e1-9a4b-4037-84b2-913cf76e4392","role":"host","room_id":"60b8e13a6eb86d8101b57354",
            "room_name":"Standup","session_id":"610f81ee870dde099a249948","template_id":"66112497abcd52312556c4gg",
            "user_id":"user.001","user_name":"test user","session_started_at":"2021-08-08T07:04:10.5Z"}}"#;
        let e = parse_hms(join).unwrap();
        assert_eq!(e.call.as_str(), "standup");
        assert_eq!(e.place, "60b8e13a6eb86d8101b57354");
        assert_eq!(e.facts.len(), 2);
        assert_eq!(
            e.facts[0].event,
            MediaEvent::Joined {
                session: Some("610f81ee870dde099a249948".into()),
                peer: "83b869e1-9a4b-4037-84b2-913cf76e4392".into(),
                at: 1_628_406_255_001,
                seq: 0
            }
        );
        assert_eq!(e.facts[1].id, "open:610f81ee870dde099a249948");
        assert_eq!(e.facts[1].event.at(), 1_628_406_250_500);
        // Untracked, malformed, not a call.
        assert_eq!(
            parse_hms(br#"{"type":"recording.success","id":"x","data":{}}"#),
            Err(Ignored::Untracked)
        );
        assert_eq!(parse_hms(b"not json"), Err(Ignored::Malformed));
        assert_eq!(
            parse_hms(br#"{"type":"peer.join.success","id":"x","data":{"room_id":"r","room_name":"a room!","session_id":"s"}}"#),
            Err(Ignored::NotACall)
        );
        assert_eq!(
            parse_hms(br#"{"type":"peer.join.success","id":"x","timestamp":"2021-08-08T07:04:15Z","data":{"room_id":"r","room_name":"a","session_id":"s"}}"#),
            Err(Ignored::Malformed),
            "a join without its peer"
        );
        // 100ms's zero time is no time: the envelope's timestamp stands in.
        let close = br#"{"id":"c","type":"session.close.success","timestamp":"2021-11-30T12:58:49Z","data":{"room_id":"r","room_name":"a","session_id":"s","session_stopped_at":"0001-01-01T00:00:00Z"}}"#;
        assert_eq!(
            parse_hms(close).unwrap().facts[0].event,
            MediaEvent::Closed {
                session: Some("s".into()),
                at: 1_638_277_129_000
            }
        );
    }

    #[test]
    fn agora_events_by_type() {
        let ev = |t: u64| {
            format!(
                r#"{{"noticeId":"n{t}","productId":1,"eventType":{t},"notifyMs":1611566412672,"sid":"x","payload":{{"channelName":"standup","uid":12121212,"platform":1,"clientSeq":1625051030746,"ts":1560399999,"reason":1,"duration":30}}}}"#
            )
        };
        for t in [103, 105, 107] {
            let e = parse_agora(ev(t).as_bytes()).unwrap();
            assert!(
                matches!(&e.facts[0].event, MediaEvent::Joined { peer, seq: 1625051030746, at: 1_560_399_999_000, .. } if peer == "12121212"),
                "{t}"
            );
        }
        for t in [104, 106, 108] {
            assert!(
                matches!(
                    parse_agora(ev(t).as_bytes()).unwrap().facts[0].event,
                    MediaEvent::Left { .. }
                ),
                "{t}"
            );
        }
        assert!(matches!(
            parse_agora(ev(101).as_bytes()).unwrap().facts[0].event,
            MediaEvent::Opened { session: None, .. }
        ));
        assert!(matches!(
            parse_agora(ev(102).as_bytes()).unwrap().facts[0].event,
            MediaEvent::Closed { session: None, .. }
        ));
        assert_eq!(parse_agora(ev(111).as_bytes()), Err(Ignored::Untracked));
        assert_eq!(
            parse_agora(br#"{"productId":3,"eventType":101}"#),
            Err(Ignored::Untracked)
        );
        assert_eq!(parse_agora(b"[]"), Err(Ignored::Malformed));
        // A channel that is not a call id, and a 64-character call's hashed channel.
        let other = ev(101).replace("standup", "Stand Up");
        assert_eq!(parse_agora(other.as_bytes()), Err(Ignored::NotACall));
    }
}
