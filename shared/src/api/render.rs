//! Responses, rendered in one place: Stream's success bodies and its error shape.

use super::ApiResponse;
use super::error::{ApiError, Operation};
use crate::call_view::{CallView, rfc3339};
use crate::providers::JoinToken;
use crate::usecase::end_call::Participants;
use crate::usecase::{CreatedCall, EndedCall, EventOutcome};
use http::{HeaderValue, StatusCode};
use serde::Serialize;

/// What a request is answered with.
pub enum Answer {
    /// Create Call's answer, the call as it stands at the time given.
    Created(CreatedCall, u64),
    Token(JoinToken),
    /// End Call's answer, at the time given.
    Ended(EndedCall, u64),
    /// A provider event's answer.
    Event(EventOutcome),
    Refused(Operation, ApiError),
}

#[derive(Serialize)]
struct EndedBody<'a> {
    duration: &'a str,
    call: CallView<'a>,
    /// Whether the provider removed everyone (or the call's time limit did).
    participants_removed: bool,
    /// When they were not: the latest time a token already issued for the call may be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_valid_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
}

/// A provider event's answer (Agora wants a JSON body with its 200).
#[derive(Serialize)]
struct EventBody<'a> {
    duration: &'a str,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// What an Agora deployment without RESTful API credentials answers an End Call with.
pub const TOKENS_STAY_VALID: &str = "Agora tokens already issued for this call stay valid until they expire (tokens_valid_until): this deployment has no Agora RESTful API credentials (AGORA_CUSTOMER_ID, AGORA_CUSTOMER_SECRET) to remove participants from the channel. No new tokens are issued.";

#[derive(Serialize)]
struct TokenBody<'a> {
    duration: &'a str,
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agora_uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agora_app_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call: Option<CallView<'a>>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: i32,
    message: &'a str,
    #[serde(rename = "StatusCode")]
    status_code: u16,
    duration: &'a str,
    more_info: &'static str,
    details: [(); 0],
}

/// Renders `answer`; `duration` is Stream's `"1.23ms"`.
pub fn render(answer: &Answer, duration: &str) -> ApiResponse {
    let (token, call) = match answer {
        Answer::Created(c, now) => (&c.token, Some(CallView::of(&c.call, *now))),
        Answer::Token(t) => (t, None),
        Answer::Ended(e, now) => return render_ended(e, *now, duration),
        Answer::Event(outcome) => {
            return json_response(
                StatusCode::OK,
                &EventBody {
                    duration,
                    result: outcome.as_str(),
                    reason: match outcome {
                        EventOutcome::Ignored(why) => Some(why),
                        _ => None,
                    },
                },
            );
        }
        Answer::Refused(op, e) => return render_error(*op, e, duration),
    };
    json_response(
        StatusCode::CREATED,
        &TokenBody {
            duration,
            token: &token.token,
            agora_uid: token.agora.as_ref().map(|a| a.uid),
            agora_app_id: token.agora.as_ref().map(|a| a.app_id.as_str()),
            call,
        },
    )
}

fn render_ended(ended: &EndedCall, now: u64, duration: &str) -> ApiResponse {
    let until = match ended.participants {
        Participants::TokensValidUntil(t) => Some(t),
        Participants::Removed | Participants::TimeLimit => None,
    };
    json_response(
        StatusCode::OK,
        &EndedBody {
            duration,
            call: CallView::of(&ended.call, now),
            participants_removed: until.is_none(),
            tokens_valid_until: until.map(rfc3339),
            note: until.map(|_| TOKENS_STAY_VALID),
        },
    )
}

fn render_error(op: Operation, e: &ApiError, duration: &str) -> ApiResponse {
    let (status, code) = e.status_and_code();
    let message = e.client_message(op);
    let mut r = json_response(
        status,
        &ErrorBody {
            code,
            message: &message,
            status_code: status.as_u16(),
            duration,
            more_info: "https://getstream.io/chat/docs/api_errors_response",
            details: [],
        },
    );
    if let Some(secs) = e.retry_after() {
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if let ApiError::MethodNotAllowed(_) = e {
        r.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
    }
    r
}

fn json_response<T: Serialize>(status: StatusCode, body: &T) -> ApiResponse {
    let bytes = serde_json::to_vec(body).expect("response serialises");
    let mut r = http::Response::new(bytes);
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Call, CallId, CallType, ChannelCid, ProviderDetails};
    use crate::providers::AgoraJoin;
    use serde_json::{Value, json};

    #[test]
    fn error_body_shape() {
        let r = render(
            &Answer::Refused(
                Operation::CreateCall,
                ApiError::input("type must be video or audio"),
            ),
            "0.05ms",
        );
        assert_eq!(r.status(), 400);
        assert!(r.headers().get("retry-after").is_none());
        let v: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            v,
            json!({"code":4,"message":"CreateCall failed with error: \"type must be video or audio\"",
                "StatusCode":400,"duration":"0.05ms","more_info":"https://getstream.io/chat/docs/api_errors_response","details":[]})
        );
        let r = render(
            &Answer::Refused(
                Operation::GetCallToken,
                ApiError::MethodNotAllowed("GET".into()),
            ),
            "1ms",
        );
        assert_eq!(r.status().as_u16(), 405);
        assert_eq!(r.headers()["allow"], "POST");
    }

    #[test]
    fn success_bodies_carry_both_provider_objects() {
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
            pending_announcement: false,
            ends_at: None,
            ended: None,
            stale_kick_rule: None,
            media: Default::default(),
        };
        let token = JoinToken {
            token: "t".into(),
            agora: None,
        };
        let r = render(
            &Answer::Created(
                CreatedCall {
                    call: call.clone(),
                    token: token.clone(),
                    new: true,
                },
                5,
            ),
            "1.00ms",
        );
        assert_eq!(r.status(), 201);
        let v: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            v,
            json!({"duration":"1.00ms","token":"t","call":{"id":"standup","provider":"hms","type":"audio",
                "agora":{"channel":""},"hms":{"room_id":"r1","room_name":"standup"},
                "state":"active","created_at":"1970-01-01T00:00:01Z","created_by":"u",
                "ended_at":null,"ended_by":null,"ended_reason":null,
                "session":{"state":"idle","started_at":null,"ended_at":null,"duration_seconds":null,
                    "participants":0,"max_participants":0,"sessions":0}}})
        );
        // Ended by End Call, with a time limit; and ended by the time limit alone.
        let mut ended = call.clone();
        ended.ends_at = Some(9);
        ended.ended = Some(crate::domain::Ended {
            at: 4,
            by: "boss".into(),
            reason: Some("done".into()),
            provider_pending: false,
            announce_pending: false,
            kick_rule: None,
        });
        let body = |e: EndedCall, now| {
            let r = render(&Answer::Ended(e, now), "1ms");
            assert_eq!(r.status(), 200);
            serde_json::from_slice::<Value>(r.body()).unwrap()
        };
        let v = body(
            EndedCall {
                call: ended,
                participants: Participants::Removed,
                newly_ended: true,
            },
            5,
        );
        assert_eq!(v["participants_removed"], true);
        assert!(v.get("tokens_valid_until").is_none() && v.get("note").is_none());
        let c = &v["call"];
        assert_eq!(
            (
                &c["state"],
                &c["ends_at"],
                &c["ended_at"],
                &c["ended_by"],
                &c["ended_reason"]
            ),
            (
                &json!("ended"),
                &json!("1970-01-01T00:00:09Z"),
                &json!("1970-01-01T00:00:04Z"),
                &json!("boss"),
                &json!("done")
            )
        );
        let mut limited = call;
        limited.ends_at = Some(9);
        let v = body(
            EndedCall {
                call: limited.clone(),
                participants: Participants::TokensValidUntil(8),
                newly_ended: false,
            },
            9,
        );
        assert_eq!(v["participants_removed"], false);
        assert_eq!(v["tokens_valid_until"], "1970-01-01T00:00:08Z");
        assert!(v["note"].as_str().unwrap().contains("AGORA_CUSTOMER_ID"));
        assert_eq!(
            (
                &v["call"]["state"],
                &v["call"]["ended_at"],
                &v["call"]["ended_by"]
            ),
            (
                &json!("ended"),
                &json!("1970-01-01T00:00:09Z"),
                &Value::Null
            )
        );
        // Before its limit the same call is active, its end announced in advance.
        let v = body(
            EndedCall {
                call: limited,
                participants: Participants::TimeLimit,
                newly_ended: false,
            },
            8,
        );
        assert_eq!(
            (
                &v["call"]["state"],
                &v["call"]["ends_at"],
                &v["call"]["ended_at"]
            ),
            (
                &json!("active"),
                &json!("1970-01-01T00:00:09Z"),
                &Value::Null
            )
        );
        let agora = JoinToken {
            token: "007x".into(),
            agora: Some(AgoraJoin {
                uid: 7,
                app_id: "app".into(),
            }),
        };
        let v: Value = serde_json::from_slice(render(&Answer::Token(agora), "2ms").body()).unwrap();
        assert_eq!(
            v,
            json!({"duration":"2ms","token":"007x","agora_uid":7,"agora_app_id":"app"})
        );
    }
}
