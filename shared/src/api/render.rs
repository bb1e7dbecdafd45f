//! Responses, rendered in one place: Stream's success bodies and its error shape.

use super::ApiResponse;
use super::error::{ApiError, Operation};
use crate::providers::JoinToken;
use crate::usecase::CreatedCall;
use crate::wire::CallView;
use http::{HeaderValue, StatusCode};
use serde::Serialize;

/// What a request is answered with.
pub enum Answer {
    Created(CreatedCall),
    Token(JoinToken),
    Refused(Operation, ApiError),
}

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
        Answer::Created(c) => (&c.token, Some(CallView::of(&c.call))),
        Answer::Token(t) => (t, None),
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
        };
        let token = JoinToken {
            token: "t".into(),
            agora: None,
        };
        let r = render(
            &Answer::Created(CreatedCall {
                call,
                token: token.clone(),
                new: true,
            }),
            "1.00ms",
        );
        assert_eq!(r.status(), 201);
        let v: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            v,
            json!({"duration":"1.00ms","token":"t","call":{"id":"standup","provider":"hms","type":"audio",
                "agora":{"channel":""},"hms":{"room_id":"r1","room_name":"standup"}}})
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
