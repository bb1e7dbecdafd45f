//! The two handlers, written once against plain HTTP types. The Lambda binaries and the local
//! server only adapt their requests and responses to [`ApiRequest`] and [`ApiResponse`].

use crate::auth::{Authenticator, Identity, validate_user_id};
use crate::call::{Call, CallType, ProviderDetails, ProviderKind};
use crate::config::Config;
use crate::error::{ApiError, Operation};
use crate::id::{CallId, ChannelCid};
use crate::permissions::Permission;
use crate::providers::agora;
use crate::providers::hms::{Hms, HmsError, RoomOptions};
use crate::store::{CallStore, Inserted, StoreError};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Bodies larger than this are refused with 413 (code 22).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub const CREATE_CALL_ROUTE: &str = "/channels/{type}/{id}/call";
pub const GET_CALL_TOKEN_ROUTE: &str = "/calls/{id}";

/// Path parameters as API Gateway delivers them (`pathParameters`), still percent-encoded or
/// not: every segment is percent-decoded once.
#[derive(Clone, Copy, Debug, Default)]
pub struct PathParams<'a> {
    pub channel_type: Option<&'a str>,
    pub id: Option<&'a str>,
}

/// A request, as plain as HTTP gets.
#[derive(Clone, Copy, Debug)]
pub struct ApiRequest<'a> {
    pub method: &'a Method,
    /// The raw path (percent-encoded), used when `params` is absent.
    pub path: &'a str,
    /// Path parameters from API Gateway, when present.
    pub params: Option<PathParams<'a>>,
    /// The operation this entry point serves (a Lambda serves one); `None` routes by path.
    pub operation: Option<Operation>,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

pub type ApiResponse = http::Response<Vec<u8>>;

/// Current Unix time in seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    })
}

/// The application: configuration, credentials and a store, built once per process.
pub struct Callbridge<S> {
    config: Config,
    auth: Authenticator,
    store: S,
    clock: Clock,
    hms: Option<Hms>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    CreateCall {
        channel_type: String,
        channel_id: String,
    },
    GetCallToken {
        call_id: String,
    },
}

impl Route {
    fn operation(&self) -> Operation {
        match self {
            Route::CreateCall { .. } => Operation::CreateCall,
            Route::GetCallToken { .. } => Operation::GetCallToken,
        }
    }
}

fn route_name(op: Option<Operation>) -> &'static str {
    match op {
        Some(Operation::CreateCall) => CREATE_CALL_ROUTE,
        Some(Operation::GetCallToken) => GET_CALL_TOKEN_ROUTE,
        None => "(none)",
    }
}

/// The operation a path that matches no route was most likely meant for; its error names it.
fn likely_operation(path: &str) -> Operation {
    if path.contains("/calls") && !path.contains("/channels/") {
        Operation::GetCallToken
    } else {
        Operation::CreateCall
    }
}

/// The operation whose route `path` matches, if any.
pub fn route_of(path: &str) -> Option<Operation> {
    route_from_path(path).map(|r| r.operation())
}

/// The error response for `e`; its cause is logged here, never sent.
fn refusal(op: Operation, e: &ApiError, started: Instant) -> ApiResponse {
    let cause = e.cause_chain();
    if e.status_and_code().0.is_server_error() {
        tracing::error!(error = %e, cause = cause.as_deref().unwrap_or(""), "request failed");
    } else if let Some(cause) = cause {
        tracing::warn!(error = %e, cause, "request refused");
    }
    error_response(op, e, duration_string(started))
}

/// The one log line of each request: method, route (`(none)` when none matched), status,
/// Stream code (0 on success) and duration. The local server logs its CORS preflights with it.
pub fn log_request(
    method: &Method,
    route: Option<Operation>,
    status: StatusCode,
    code: i32,
    started: Instant,
) {
    tracing::info!(
        method = %method,
        route = route_name(route),
        status = status.as_u16(),
        code,
        duration_us = started.elapsed().as_micros() as u64,
        "request"
    );
}

struct JoinToken {
    token: String,
    agora: Option<(u32, String)>,
}

#[derive(Serialize)]
struct CreateCallBody<'a> {
    duration: String,
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agora_uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agora_app_id: Option<&'a str>,
    call: crate::call::CallView<'a>,
}

#[derive(Serialize)]
struct TokenBody<'a> {
    duration: String,
    token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agora_uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agora_app_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: i32,
    message: &'a str,
    #[serde(rename = "StatusCode")]
    status_code: u16,
    duration: String,
    more_info: &'static str,
    details: [(); 0],
}

impl<S: CallStore> Callbridge<S> {
    pub fn new(config: Config, store: S) -> Self {
        Self::with_clock(config, store, system_clock())
    }

    pub fn with_clock(config: Config, store: S, clock: Clock) -> Self {
        let auth = Authenticator::new(
            config.api_key.clone(),
            config.api_secret.clone(),
            config.allow_dev_tokens,
        );
        let hms = config.hms.clone().map(Hms::new);
        Callbridge {
            config,
            auth,
            store,
            clock,
            hms,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Handles one request and logs one line for it.
    pub async fn handle(&self, req: ApiRequest<'_>) -> ApiResponse {
        let started = Instant::now();
        let route = resolve_route(&req);
        let matched = route.as_ref().map(Route::operation).ok();
        let result = match route {
            Ok(route) => self.dispatch(route, &req).await,
            Err(e) => Err(e),
        };
        let (response, code) = match result {
            Ok(render) => (render(duration_string(started)), 0),
            Err(e) => {
                let op = matched
                    .or(req.operation)
                    .unwrap_or_else(|| likely_operation(req.path));
                (refusal(op, &e, started), e.status_and_code().1)
            }
        };
        log_request(req.method, matched, response.status(), code, started);
        response
    }

    /// Answers a request its transport refused before it reached [`Callbridge::handle`] (the
    /// local server's body limit, say) in the same error shape, with the same log line.
    pub fn refuse(
        &self,
        method: &Method,
        path: &str,
        e: &ApiError,
        started: Instant,
    ) -> ApiResponse {
        let matched = route_of(path);
        let response = refusal(
            matched.unwrap_or_else(|| likely_operation(path)),
            e,
            started,
        );
        log_request(
            method,
            matched,
            response.status(),
            e.status_and_code().1,
            started,
        );
        response
    }

    async fn dispatch(
        &self,
        route: Route,
        req: &ApiRequest<'_>,
    ) -> Result<Box<dyn FnOnce(String) -> ApiResponse + Send>, ApiError> {
        if req.method != Method::POST {
            return Err(ApiError::MethodNotAllowed(req.method.to_string()));
        }
        if req.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        let now = (self.clock)();
        let identity = self.auth.authenticate(req.headers, req.query, now)?;
        match route {
            Route::CreateCall {
                channel_type,
                channel_id,
            } => {
                let (call, token) = self
                    .create_call(identity, &channel_type, &channel_id, req.body, now)
                    .await?;
                Ok(Box::new(move |duration| {
                    let (agora_uid, agora_app_id) = split_agora(&token);
                    json_response(
                        StatusCode::CREATED,
                        &CreateCallBody {
                            duration,
                            token: &token.token,
                            agora_uid,
                            agora_app_id,
                            call: call.view(),
                        },
                    )
                }))
            }
            Route::GetCallToken { call_id } => {
                let token = self
                    .get_call_token(identity, &call_id, req.body, now)
                    .await?;
                Ok(Box::new(move |duration| {
                    let (agora_uid, agora_app_id) = split_agora(&token);
                    json_response(
                        StatusCode::CREATED,
                        &TokenBody {
                            duration,
                            token: &token.token,
                            agora_uid,
                            agora_app_id,
                        },
                    )
                }))
            }
        }
    }

    async fn create_call(
        &self,
        identity: Identity,
        channel_type: &str,
        channel_id: &str,
        body: &[u8],
        now: u64,
    ) -> Result<(Call, JoinToken), ApiError> {
        let cid = ChannelCid::parse(channel_type, channel_id)
            .map_err(|e| ApiError::input(e.to_string()))?;
        let body = parse_body(body, true)?;
        let (user_id, role) = acting_user(identity, &body, &self.config, Permission::CreateCall)?;
        let id = match body.get("id") {
            None | Some(Value::Null) => CallId::generate(),
            Some(Value::String(s)) => {
                CallId::parse(s).map_err(|e| ApiError::input(e.to_string()))?
            }
            Some(_) => return Err(ApiError::input("id must be a string")),
        };
        let call_type = match body.get("type") {
            Some(Value::String(s)) => CallType::parse(s).ok_or_else(|| {
                ApiError::input(format!("type must be video or audio, not {s:?}"))
            })?,
            None | Some(Value::Null) => {
                return Err(ApiError::input("type is required: video or audio"));
            }
            Some(_) => return Err(ApiError::input("type must be the string video or audio")),
        };
        let cid_check = |existing: Call| {
            if existing.cid != cid {
                return Err(ApiError::Forbidden(format!(
                    "call id {:?} is already used by a call in another channel; choose another id",
                    existing.id.as_str()
                )));
            }
            Ok(existing)
        };
        let provider = match self.config.provider {
            ProviderKind::Agora => {
                match body.get("options") {
                    None | Some(Value::Null) | Some(Value::Object(_)) => {}
                    Some(_) => return Err(ApiError::input("options must be an object")),
                }
                ProviderDetails::Agora {
                    channel: agora::channel_for(&id),
                }
            }
            ProviderKind::Hms => {
                let hms = self.hms.as_ref().ok_or_else(|| provider_missing("hms"))?;
                let options = RoomOptions::parse(body.get("options")).map_err(ApiError::Input)?;
                // An existing call is answered from storage: 100ms is not asked again.
                if let Some(existing) = self.store.get(&id, now).await.map_err(store_error)? {
                    let call = cid_check(existing)?;
                    let token = self.join_token(&call, &user_id, &role, now)?;
                    return Ok((call, token));
                }
                let room = hms
                    .create_room(id.as_str(), &options, now)
                    .await
                    .map_err(|e| hms_error(e, options != RoomOptions::default()))?;
                ProviderDetails::Hms {
                    room_id: room.id,
                    room_name: if room.name.is_empty() {
                        id.as_str().to_string()
                    } else {
                        room.name
                    },
                }
            }
        };
        let candidate = Call {
            id,
            cid: cid.clone(),
            call_type,
            provider,
            created_by: user_id.clone(),
            created_at: now,
            expires_at: now.saturating_add(self.config.call_ttl_secs),
        };
        let call = match self
            .store
            .insert_if_absent(&candidate, now)
            .await
            .map_err(store_error)?
        {
            Inserted::New => candidate,
            Inserted::Existing(existing) => cid_check(existing)?,
        };
        let token = self.join_token(&call, &user_id, &role, now)?;
        Ok((call, token))
    }

    async fn get_call_token(
        &self,
        identity: Identity,
        call_id: &str,
        body: &[u8],
        now: u64,
    ) -> Result<JoinToken, ApiError> {
        let id = CallId::parse(call_id).map_err(|e| ApiError::input(e.to_string()))?;
        let body = parse_body(body, false)?;
        let (user_id, role) = acting_user(identity, &body, &self.config, Permission::JoinCall)?;
        let call = self
            .store
            .get(&id, now)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::NotFound(format!("call {:?} does not exist", id.as_str())))?;
        self.join_token(&call, &user_id, &role, now)
    }

    fn join_token(
        &self,
        call: &Call,
        user_id: &str,
        role: &str,
        now: u64,
    ) -> Result<JoinToken, ApiError> {
        let lifetime = self.config.token_ttl_secs;
        match &call.provider {
            ProviderDetails::Agora { channel } => {
                let cfg = self
                    .config
                    .agora
                    .as_ref()
                    .ok_or_else(|| provider_missing("agora"))?;
                let uid = agora::agora_uid(user_id);
                let issue_ts =
                    u32::try_from(now).map_err(|_| ApiError::Internal("clock past 2106".into()))?;
                let token = agora::rtc_token(
                    cfg,
                    channel,
                    uid,
                    cfg.role_for(role),
                    call.call_type,
                    issue_ts,
                    lifetime,
                    agora::random_salt(),
                )
                .map_err(|e| ApiError::Internal(Box::new(e)))?;
                Ok(JoinToken {
                    token,
                    agora: Some((uid, cfg.app_id.clone())),
                })
            }
            ProviderDetails::Hms { room_id, .. } => {
                let hms = self.hms.as_ref().ok_or_else(|| provider_missing("hms"))?;
                Ok(JoinToken {
                    token: hms.join_token(room_id, role, user_id, now, u64::from(lifetime)),
                    agora: None,
                })
            }
        }
    }
}

fn provider_missing(name: &str) -> ApiError {
    ApiError::NotConfigured {
        message: format!(
            "this call uses {name}, and this deployment has no {name} credentials configured"
        ),
        cause: None,
    }
}

fn split_agora(t: &JoinToken) -> (Option<u32>, Option<&str>) {
    match &t.agora {
        Some((uid, app)) => (Some(*uid), Some(app.as_str())),
        None => (None, None),
    }
}

/// Maps each 100ms failure to its client answer.
/// `caller_options`: the request carried room options, so a 100ms 400 is the caller's to fix;
/// without them 100ms refused this deployment's defaults (HMS_TEMPLATE_ID, HMS_REGION).
fn hms_error(e: HmsError, caller_options: bool) -> ApiError {
    match e {
        HmsError::Rejected(reason) if caller_options => {
            ApiError::Input(format!("100ms refused the room options: {reason}"))
        }
        e @ HmsError::Rejected(_) => ApiError::ProviderRejected {
            message: "the video provider (100ms) refused the configured room defaults (HMS_TEMPLATE_ID, HMS_REGION)".into(),
            cause: Some(Box::new(e)),
        },
        HmsError::RateLimited => ApiError::RateLimited {
            message: "the video provider is rate limiting; retry after a second".into(),
            retry_after_secs: 1,
            cause: None,
        },
        e @ HmsError::Credentials { .. } => ApiError::ProviderRejected {
            message: "the video provider (100ms) rejected the configured credentials".into(),
            cause: Some(Box::new(e)),
        },
        e @ HmsError::Unavailable(_) => ApiError::Provider {
            message: "the video provider (100ms) is not answering; nothing was created, retry shortly".into(),
            cause: Some(Box::new(e)),
        },
    }
}

/// Maps each storage failure to its client answer.
fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Throttled(cause) => ApiError::RateLimited {
            message: "too many requests right now; retry after a second".into(),
            retry_after_secs: 1,
            cause: Some(cause),
        },
        StoreError::Unavailable(cause) => ApiError::Unavailable {
            message: "call storage is unavailable; nothing was changed, retry shortly".into(),
            cause: Some(cause),
        },
        StoreError::Misconfigured(cause) => ApiError::NotConfigured {
            message: "call storage refused this deployment's configuration (table, permissions or credentials); nothing was changed".into(),
            cause: Some(cause),
        },
        StoreError::Corrupt(what) => ApiError::Internal(what.into()),
        StoreError::Internal(cause) => ApiError::Internal(cause),
    }
}

/// The user the request acts for, and their role, after the permission check.
fn acting_user(
    identity: Identity,
    body: &Map<String, Value>,
    config: &Config,
    perm: Permission,
) -> Result<(String, String), ApiError> {
    match identity {
        Identity::User { user_id, role } => {
            if !config.grants.allows(&role, perm) {
                return Err(ApiError::Forbidden(format!(
                    "user {user_id:?} with role {role:?} is not allowed to perform action {}",
                    perm.name()
                )));
            }
            Ok((user_id, role))
        }
        Identity::Server => {
            let user = body.get("user").and_then(Value::as_object);
            let user_id = match (body.get("user_id"), user.and_then(|u| u.get("id"))) {
                (Some(Value::String(u)), _) | (None, Some(Value::String(u))) => u,
                (Some(_), _) | (None, Some(_)) => {
                    return Err(ApiError::input("user_id must be a string"));
                }
                (None, None) => {
                    return Err(ApiError::input(
                        "a server token must name the user it acts for: user_id or user.id",
                    ));
                }
            };
            let user_id =
                validate_user_id(user_id).map_err(|m| ApiError::input(format!("user_id {m}")))?;
            let role = match user.and_then(|u| u.get("role")) {
                None | Some(Value::Null) => "user",
                Some(Value::String(r)) if !r.is_empty() => r,
                Some(_) => return Err(ApiError::input("user.role must be a non-empty string")),
            };
            Ok((user_id.to_string(), role.to_string()))
        }
    }
}

/// Parses a JSON object body. An empty body is `{}` unless `required`.
fn parse_body(body: &[u8], required: bool) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return if required {
            Err(ApiError::input(
                "request body is required: a JSON object with id and type",
            ))
        } else {
            Ok(Map::new())
        };
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::input("request body is not valid UTF-8"))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::input("request body must be a JSON object")),
        Err(e) => Err(ApiError::input(format!(
            "request body is not valid JSON: {e}"
        ))),
    }
}

/// Finds the route from API Gateway parameters or, failing that, the raw path.
fn resolve_route(req: &ApiRequest<'_>) -> Result<Route, ApiError> {
    let from_params = req.params.and_then(|p| match req.operation {
        Some(Operation::CreateCall) => Some(Route::CreateCall {
            channel_type: decode(p.channel_type?)?,
            channel_id: decode(p.id?)?,
        }),
        Some(Operation::GetCallToken) => Some(Route::GetCallToken {
            call_id: decode(p.id?)?,
        }),
        None => None,
    });
    let route = match from_params {
        Some(r) => r,
        None => route_from_path(req.path).ok_or_else(|| no_route(req))?,
    };
    match req.operation {
        Some(op) if op != route.operation() => Err(no_route(req)),
        _ => Ok(route),
    }
}

fn no_route(req: &ApiRequest<'_>) -> ApiError {
    ApiError::NoRoute {
        method: req.method.to_string(),
        path: req.path.chars().take(200).collect(),
    }
}

/// Matches `.../channels/{type}/{id}/call` or `.../calls/{id}` at the end of the path (a stage
/// prefix such as `/prod` may stand before it).
fn route_from_path(path: &str) -> Option<Route> {
    let path = path.split('?').next().unwrap_or("");
    // `/calls/` is Get Call Token with an empty id (a 400 that says so), not a missing route.
    if path.ends_with("/calls/") {
        return Some(Route::GetCallToken {
            call_id: String::new(),
        });
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let segs: Vec<&str> = path.split('/').collect();
    match segs.as_slice() {
        [.., "channels", t, id, "call"] => Some(Route::CreateCall {
            channel_type: decode(t)?,
            channel_id: decode(id)?,
        }),
        [.., "calls", id] => Some(Route::GetCallToken {
            call_id: decode(id)?,
        }),
        _ => None,
    }
}

/// Percent-decodes one path segment. Undecodable UTF-8 keeps its replacement characters, which
/// no id accepts, so the id check reports it.
fn decode(seg: &str) -> Option<String> {
    Some(
        percent_encoding::percent_decode_str(seg)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

fn duration_string(started: Instant) -> String {
    format!("{:.2}ms", started.elapsed().as_secs_f64() * 1000.0)
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

/// Renders an error in Stream's shape.
pub fn error_response(op: Operation, e: &ApiError, duration: String) -> ApiResponse {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_from_raw_paths() {
        assert_eq!(
            route_from_path("/channels/messaging/general/call"),
            Some(Route::CreateCall {
                channel_type: "messaging".into(),
                channel_id: "general".into()
            })
        );
        assert_eq!(
            route_from_path("/prod/calls/call-messaging%3Ageneral/"),
            Some(Route::GetCallToken {
                call_id: "call-messaging:general".into()
            })
        );
        assert_eq!(route_from_path("/calls"), None);
        assert_eq!(route_from_path("/channels/a/b"), None);
        assert_eq!(route_from_path("/"), None);
    }

    #[test]
    fn error_body_shape() {
        let r = error_response(
            Operation::CreateCall,
            &ApiError::input("type must be video or audio"),
            "0.05ms".into(),
        );
        assert_eq!(r.status(), 400);
        let v: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code":4,"message":"CreateCall failed with error: \"type must be video or audio\"",
                "StatusCode":400,"duration":"0.05ms","more_info":"https://getstream.io/chat/docs/api_errors_response","details":[]})
        );
    }
}
