//! The one place where errors become answers: HTTP status, Stream code, message and headers.

pub use crate::domain::Operation;
use crate::error::{AuthError, Error};
use http::StatusCode;

/// Everything a request can be refused for: the transport's refusals and the use cases' errors.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A path that is not one of the routes.
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    #[error("method {0} is not allowed; use POST")]
    MethodNotAllowed(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A transport's bound on the time a request takes to arrive (Stream's own 408, code 23).
    #[error("the request did not arrive in full within {limit_secs} s")]
    RequestTimeout { limit_secs: u64 },
    /// A transport's bound on request headers (Stream's own 431, code 24).
    #[error("request headers are too large: {0}")]
    HeadersTooLarge(String),
    /// A transport's bound on the request target (414; Stream has no code of its own for it,
    /// so input error 4).
    #[error("the request URI is longer than {limit} bytes")]
    UriTooLong { limit: usize },
    #[error(transparent)]
    App(#[from] Error),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::App(Error::Auth(e))
    }
}

impl ApiError {
    pub fn input(msg: impl Into<String>) -> Self {
        ApiError::App(Error::input(msg))
    }

    /// (HTTP status, Stream code).
    pub fn status_and_code(&self) -> (StatusCode, i32) {
        let app = match self {
            ApiError::NoRoute { .. } => return (StatusCode::NOT_FOUND, 16),
            ApiError::MethodNotAllowed(_) => return (StatusCode::METHOD_NOT_ALLOWED, 4),
            ApiError::PayloadTooLarge { .. } => return (StatusCode::PAYLOAD_TOO_LARGE, 22),
            ApiError::RequestTimeout { .. } => return (StatusCode::REQUEST_TIMEOUT, 23),
            ApiError::HeadersTooLarge(_) => {
                return (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, 24);
            }
            ApiError::UriTooLong { .. } => return (StatusCode::URI_TOO_LONG, 4),
            ApiError::App(e) => e,
        };
        match app {
            Error::Input(_) => (StatusCode::BAD_REQUEST, 4),
            Error::Auth(a) => match a {
                AuthError::ApiKey(_) => (StatusCode::UNAUTHORIZED, 2),
                AuthError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, 5),
                AuthError::TokenExpired => (StatusCode::UNAUTHORIZED, 40),
                AuthError::TokenNotYetValid => (StatusCode::UNAUTHORIZED, 41),
                AuthError::TokenIssuedInFuture => (StatusCode::UNAUTHORIZED, 42),
                AuthError::TokenSignature(_) => (StatusCode::UNAUTHORIZED, 43),
            },
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, 17),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, 16),
            Error::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, 9),
            Error::Unavailable { .. } | Error::NotConfigured { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, -1)
            }
            Error::Provider { .. } | Error::ProviderRejected { .. } => {
                (StatusCode::BAD_GATEWAY, -1)
            }
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, -1),
        }
    }

    /// The message sent to clients: Stream's `"<Op> failed with error: \"<reason>\""`.
    pub fn client_message(&self, op: Operation) -> String {
        format!("{} failed with error: \"{}\"", op.name(), self)
    }

    /// Seconds a client should wait before retrying, for transient errors only.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::App(Error::RateLimited {
                retry_after_secs, ..
            }) => Some(*retry_after_secs),
            ApiError::App(Error::Unavailable { .. } | Error::Provider { .. }) => Some(1),
            _ => None,
        }
    }

    /// The underlying cause, for logs only.
    pub fn cause_chain(&self) -> Option<String> {
        match self {
            ApiError::App(e) => e.cause_chain(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_status_and_code() {
        let m = || "x".to_string();
        let cases: Vec<(ApiError, u16, i32, Option<u64>)> = vec![
            (ApiError::input("x"), 400, 4, None),
            (AuthError::Unauthenticated(m()).into(), 401, 5, None),
            (AuthError::ApiKey(m()).into(), 401, 2, None),
            (AuthError::TokenExpired.into(), 401, 40, None),
            (AuthError::TokenNotYetValid.into(), 401, 41, None),
            (AuthError::TokenIssuedInFuture.into(), 401, 42, None),
            (AuthError::TokenSignature(m()).into(), 401, 43, None),
            (Error::Forbidden(m()).into(), 403, 17, None),
            (Error::NotFound(m()).into(), 404, 16, None),
            (
                ApiError::NoRoute {
                    method: "POST".into(),
                    path: "/".into(),
                },
                404,
                16,
                None,
            ),
            (ApiError::MethodNotAllowed("GET".into()), 405, 4, None),
            (ApiError::PayloadTooLarge { limit: 1 }, 413, 22, None),
            (ApiError::RequestTimeout { limit_secs: 1 }, 408, 23, None),
            (ApiError::HeadersTooLarge(m()), 431, 24, None),
            (ApiError::UriTooLong { limit: 1 }, 414, 4, None),
            (
                Error::RateLimited {
                    message: m(),
                    retry_after_secs: 2,
                    cause: None,
                }
                .into(),
                429,
                9,
                Some(2),
            ),
            (
                Error::Unavailable {
                    message: m(),
                    cause: None,
                }
                .into(),
                503,
                -1,
                Some(1),
            ),
            (
                Error::Provider {
                    message: m(),
                    cause: None,
                }
                .into(),
                502,
                -1,
                Some(1),
            ),
            (
                Error::ProviderRejected {
                    message: m(),
                    cause: None,
                }
                .into(),
                502,
                -1,
                None,
            ),
            (
                Error::NotConfigured {
                    message: m(),
                    cause: None,
                }
                .into(),
                503,
                -1,
                None,
            ),
            (Error::Internal("boom".into()).into(), 500, -1, None),
        ];
        for (err, status, code, retry) in cases {
            let (s, c) = err.status_and_code();
            assert_eq!(
                (s.as_u16(), c, err.retry_after()),
                (status, code, retry),
                "{err:?}"
            );
        }
    }

    #[test]
    fn messages_follow_streams_style_and_hide_causes() {
        let e = ApiError::input("type must be video or audio");
        assert_eq!(
            e.client_message(Operation::CreateCall),
            "CreateCall failed with error: \"type must be video or audio\""
        );
        let e = ApiError::from(Error::Internal("secret detail".into()));
        assert_eq!(
            e.client_message(Operation::GetCallToken),
            "GetCallToken failed with error: \"internal error\""
        );
        assert_eq!(e.cause_chain().as_deref(), Some("secret detail"));
    }
}
