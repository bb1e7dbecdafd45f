//! The API adapter shared by the Lambda functions and the local server: routing, credentials
//! and bodies into typed commands, the use cases, and one rendering of every answer. The
//! transports only turn their requests into [`ApiRequest`] and [`ApiResponse`] back.

pub mod body;
pub mod error;
pub mod render;
pub mod route;

pub use error::{ApiError, Operation};
pub use route::{
    AGORA_EVENTS_ROUTE, CREATE_CALL_ROUTE, END_CALL_ROUTE, GET_CALL_TOKEN_ROUTE, HMS_EVENTS_ROUTE,
    route_of,
};

use crate::auth::{Authenticator, Credentials};
use crate::config::{Config, WebhookSecrets};
use crate::domain::{Actor, Permission, ProviderDetails, ProviderKind};
use crate::error::{AuthError, Error};
use crate::http_client::NoTrustRoots;
use crate::providers::Providers;
use crate::providers::events;
use crate::store::Storage;
use crate::telemetry;
use crate::usecase::{Calls, EventOutcome};
use crate::wiring;
use http::{HeaderMap, Method, StatusCode};
use render::{Answer, render};
use route::{Route, likely_operation, route_name};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Bodies larger than this are refused with 413 (code 22).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

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

/// The application: configuration, credentials, providers and a store, built once per process.
pub struct Callbridge<S> {
    config: Config,
    auth: Authenticator,
    calls: Calls<S, Providers>,
    clock: Clock,
}

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    TrustRoots(#[from] NoTrustRoots),
}

impl<S: Storage> Callbridge<S> {
    /// The application, or why it cannot run here (the binaries report it and stop).
    pub fn start(config: Config, store: S) -> Result<Self, StartError> {
        Self::start_with_clock(config, store, system_clock())
    }

    /// [`Callbridge::start`] for tests and benchmarks.
    ///
    /// # Panics
    /// When the application cannot start (no trust roots for the providers' HTTPS).
    pub fn new(config: Config, store: S) -> Self {
        Self::with_clock(config, store, system_clock())
    }

    /// [`Callbridge::new`] with a clock of the caller's.
    ///
    /// # Panics
    /// As [`Callbridge::new`].
    pub fn with_clock(config: Config, store: S, clock: Clock) -> Self {
        Self::start_with_clock(config, store, clock).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The application on the parts [`crate::wiring`] builds from `config`.
    pub fn start_with_clock(config: Config, store: S, clock: Clock) -> Result<Self, StartError> {
        let (auth, calls) = wiring::wire(&config, store)?;
        Ok(Callbridge {
            config,
            auth,
            calls,
            clock,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &S {
        self.calls.store()
    }

    /// Handles one request and logs one line for it.
    pub async fn handle(&self, req: ApiRequest<'_>) -> ApiResponse {
        let started = Instant::now();
        let route = route::resolve(&req);
        let matched = route.as_ref().map(Route::operation).ok();
        let answer = match route {
            Ok(route) => {
                let op = route.operation();
                match self.dispatch(route, &req).await {
                    Ok(answer) => answer,
                    Err(e) => Answer::Refused(op, e),
                }
            }
            Err(e) => {
                let op = req.operation.unwrap_or_else(|| likely_operation(req.path));
                Answer::Refused(op, e)
            }
        };
        self.finish(req.method, matched, &answer, started)
    }

    /// Answers a request its transport refused before it reached [`Callbridge::handle`] (the
    /// local server's body limit, say) in the same error shape, with the same log line.
    pub fn refuse(
        &self,
        method: &Method,
        path: &str,
        e: ApiError,
        started: Instant,
    ) -> ApiResponse {
        let matched = route_of(path);
        let op = matched.unwrap_or_else(|| likely_operation(path));
        self.finish(method, matched, &Answer::Refused(op, e), started)
    }

    fn finish(
        &self,
        method: &Method,
        matched: Option<Operation>,
        answer: &Answer,
        started: Instant,
    ) -> ApiResponse {
        let code = match answer {
            Answer::Refused(_, e) => {
                log_refusal(e);
                e.status_and_code().1
            }
            _ => 0,
        };
        let response = render(answer, &duration_string(started));
        log_request(method, matched, response.status(), code, started);
        record(answer, response.status(), code);
        response
    }

    async fn dispatch(&self, route: Route, req: &ApiRequest<'_>) -> Result<Answer, ApiError> {
        if req.method != Method::POST {
            return Err(ApiError::MethodNotAllowed(shown_method(req.method)));
        }
        if req.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES,
            });
        }
        let now = (self.clock)();
        if let Route::ProviderEvent { provider } = route {
            return self.provider_event(provider, req, now).await;
        }
        let api_key = req.query.and_then(|q| query_param(q, "api_key"));
        let identity = self.auth.authenticate(
            Credentials {
                api_key: api_key.as_deref(),
                auth_type: req.headers.get("stream-auth-type").map(|v| v.as_bytes()),
                authorization: req
                    .headers
                    .get(http::header::AUTHORIZATION)
                    .map(|v| v.as_bytes()),
            },
            now,
        )?;
        Ok(match route {
            Route::CreateCall {
                channel_type,
                channel_id,
            } => {
                let authorize = |a: &Actor| {
                    self.calls.authorize(a, Permission::CreateCall)?;
                    // Every answer carries the actor's join token.
                    self.calls.authorize(a, Permission::JoinCall)
                };
                let cmd =
                    body::create_call(&channel_type, &channel_id, req.body, identity, &authorize)?;
                Answer::Created(self.calls.create_call(cmd, now).await?, now)
            }
            Route::GetCallToken { call_id } => {
                let authorize = |a: &Actor| self.calls.authorize(a, Permission::JoinCall);
                let cmd = body::get_call_token(&call_id, req.body, identity, &authorize)?;
                Answer::Token(self.calls.get_call_token(cmd, now).await?)
            }
            Route::EndCall { call_id } => {
                let cmd = body::end_call(&call_id, req.body, identity)?;
                Answer::Ended(self.calls.end_call(cmd, now).await?, now)
            }
            Route::ProviderEvent { .. } => unreachable!("answered above"),
        })
    }

    /// A provider's event: authenticated by the provider's own means before anything of it is
    /// read; then applied, or ignored (answered 200 all the same, so that the provider does not
    /// send it again).
    async fn provider_event(
        &self,
        provider: ProviderKind,
        req: &ApiRequest<'_>,
        now: u64,
    ) -> Result<Answer, ApiError> {
        let WebhookSecrets { hms, agora } = &self.config.webhooks;
        let header = |name: &str| req.headers.get(name).map(|v| v.as_bytes());
        let refused = |why: &str| {
            telemetry::provider_event(provider, "unauthenticated");
            ApiError::App(Error::Auth(AuthError::Unauthenticated(why.to_string())))
        };
        let parsed = match provider {
            ProviderKind::Hms => {
                let secret = hms.as_ref().ok_or_else(|| {
                    refused("100ms events are not accepted here: HMS_WEBHOOK_SECRET is not set")
                })?;
                if !events::hms_authentic(secret, header(events::HMS_SECRET_HEADER)) {
                    return Err(refused(
                        "the X-Callbridge-Webhook-Secret header is missing or wrong",
                    ));
                }
                events::parse_hms(req.body)
            }
            ProviderKind::Agora => {
                let secret = agora.as_ref().ok_or_else(|| {
                    refused("Agora events are not accepted here: AGORA_NCS_SECRET is not set")
                })?;
                if !events::agora_authentic(
                    secret,
                    req.body,
                    header(events::AGORA_SIGNATURE_HEADER),
                ) {
                    return Err(refused(
                        "the Agora-Signature-V2 header is missing or does not sign this body",
                    ));
                }
                events::parse_agora(req.body)
            }
        };
        let outcome = match parsed {
            Ok(event) => self.calls.provider_event(event, now).await?,
            Err(why) => EventOutcome::Ignored(why.as_str()),
        };
        let result = match outcome {
            EventOutcome::Ignored(why) => why,
            other => other.as_str(),
        };
        telemetry::provider_event(provider, result);
        if let EventOutcome::Ignored(why) = outcome {
            // Never the body: it is the provider's, and may name people.
            tracing::info!(
                provider = provider.as_str(),
                reason = why,
                "provider event ignored"
            );
        }
        Ok(Answer::Event(outcome))
    }
}

/// A method as errors and logs show it: at most 16 characters, since a method can be any token
/// (a direct invoke could put a caller's JWT there).
pub fn shown_method(method: &Method) -> String {
    let m = method.as_str();
    if m.len() <= 16 {
        m.to_string()
    } else {
        format!("{}...", &m[..16])
    }
}

/// Logs the cause of a refusal (never sent to the client).
fn log_refusal(e: &ApiError) {
    let cause = e.cause_chain();
    if e.status_and_code().0.is_server_error() {
        tracing::error!(error = %e, cause = cause.as_deref().unwrap_or(""), "request failed");
    } else if let Some(cause) = cause {
        tracing::warn!(error = %e, cause, "request refused");
    }
}

/// The metrics of one answer (see [`telemetry`]).
fn record(answer: &Answer, status: StatusCode, code: i32) {
    let op = match answer {
        Answer::Event(_) => Operation::ProviderEvent,
        Answer::Ended(ended, _) => {
            if ended.newly_ended {
                let reason = ended.call.ended.as_ref().and_then(|e| e.reason.as_ref());
                telemetry::call_ended(ended.call.provider.kind(), reason.is_some());
            }
            Operation::EndCall
        }
        Answer::Created(created, _) => {
            let provider = match created.call.provider {
                ProviderDetails::Agora { .. } => ProviderKind::Agora,
                ProviderDetails::Hms { .. } => ProviderKind::Hms,
            };
            telemetry::call_answered(provider, created.new);
            telemetry::token_issued(Operation::CreateCall, provider);
            Operation::CreateCall
        }
        Answer::Token(token) => {
            let provider = if token.agora.is_some() {
                ProviderKind::Agora
            } else {
                ProviderKind::Hms
            };
            telemetry::token_issued(Operation::GetCallToken, provider);
            Operation::GetCallToken
        }
        Answer::Refused(op, _) => *op,
    };
    telemetry::request(op, status, code);
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
        method = %shown_method(method),
        route = route_name(route),
        status = status.as_u16(),
        code,
        duration_us = started.elapsed().as_micros() as u64,
        "request"
    );
}

fn duration_string(started: Instant) -> String {
    format!("{:.2}ms", started.elapsed().as_secs_f64() * 1000.0)
}

/// The first value of `name` in a query string, percent-decoded (`+` as space).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_component(k) == name).then(|| decode_component(v))
    })
}

fn decode_component(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_methods_are_cut_in_errors_and_logs() {
        let jwt_like =
            Method::from_bytes(b"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjoiYSJ9.sig")
                .unwrap();
        let shown = shown_method(&jwt_like);
        assert_eq!(shown, "eyJhbGciOiJIUzI1...");
        assert_eq!(shown_method(&Method::GET), "GET");
    }

    #[test]
    fn query_param_decoding() {
        assert_eq!(
            query_param("a=1&api_key=k%20x", "api_key").as_deref(),
            Some("k x")
        );
        assert_eq!(query_param("api%5Fkey=z", "api_key").as_deref(), Some("z"));
        assert_eq!(query_param("api_key", "api_key").as_deref(), Some(""));
        assert_eq!(query_param("", "api_key"), None);
    }
}
