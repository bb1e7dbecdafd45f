//! The API's one error type. Each variant maps, here and only here, to an HTTP status, a Stream
//! error code and a client-safe message; causes are logged, never sent.

use http::StatusCode;
use std::error::Error as StdError;

pub type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// The operation an error happened in; Stream names it in every message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    CreateCall,
    GetCallToken,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateCall => "CreateCall",
            Operation::GetCallToken => "GetCallToken",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400, code 4.
    #[error("{0}")]
    Input(String),
    /// 401, code 5: missing, garbled or anonymous credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// 401, code 2.
    #[error("{0}")]
    ApiKey(String),
    /// 401, code 40.
    #[error("JWTAuth error: token has expired")]
    TokenExpired,
    /// 401, code 41.
    #[error("JWTAuth error: token is not valid yet (nbf is in the future)")]
    TokenNotYetValid,
    /// 401, code 42.
    #[error("JWTAuth error: token was issued in the future (iat)")]
    TokenIssuedInFuture,
    /// 401, code 43.
    #[error("JWTAuth error: {0}")]
    TokenSignature(String),
    /// 403, code 17.
    #[error("{0}")]
    Forbidden(String),
    /// 404, code 16.
    #[error("{0}")]
    NotFound(String),
    /// 404, code 16, for a path that is not one of the two routes.
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    /// 405, code 4.
    #[error("method {0} is not allowed; use POST")]
    MethodNotAllowed(String),
    /// 413, code 22.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 429, code 9.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
        #[source]
        cause: Option<Cause>,
    },
    /// 503, code -1: storage (or another dependency) cannot answer now.
    #[error("{message}")]
    Unavailable {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// 502, code -1: the video provider failed or refused our configured credentials.
    #[error("{message}")]
    Provider {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// 502, code -1: the video provider refused this deployment's configuration (credentials,
    /// default template); retrying will not help, so no `Retry-After`.
    #[error("{message}")]
    ProviderRejected {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// 503, code -1: this deployment lacks a setting the request needs, or a dependency
    /// refused its configuration (no table, no permission); retrying will not help, so no
    /// `Retry-After`.
    #[error("{message}")]
    NotConfigured {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// 500, code -1: a bug or a broken invariant. The message sent is generic.
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl ApiError {
    pub fn input(msg: impl Into<String>) -> Self {
        ApiError::Input(msg.into())
    }

    /// (HTTP status, Stream code).
    pub fn status_and_code(&self) -> (StatusCode, i32) {
        use ApiError::*;
        match self {
            Input(_) => (StatusCode::BAD_REQUEST, 4),
            Unauthenticated(_) => (StatusCode::UNAUTHORIZED, 5),
            ApiKey(_) => (StatusCode::UNAUTHORIZED, 2),
            TokenExpired => (StatusCode::UNAUTHORIZED, 40),
            TokenNotYetValid => (StatusCode::UNAUTHORIZED, 41),
            TokenIssuedInFuture => (StatusCode::UNAUTHORIZED, 42),
            TokenSignature(_) => (StatusCode::UNAUTHORIZED, 43),
            Forbidden(_) => (StatusCode::FORBIDDEN, 17),
            NotFound(_) | NoRoute { .. } => (StatusCode::NOT_FOUND, 16),
            MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, 4),
            PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, 22),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, 9),
            Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, -1),
            Provider { .. } | ProviderRejected { .. } => (StatusCode::BAD_GATEWAY, -1),
            NotConfigured { .. } => (StatusCode::SERVICE_UNAVAILABLE, -1),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, -1),
        }
    }

    /// The message sent to clients: Stream's `"<Op> failed with error: \"<reason>\""`.
    pub fn client_message(&self, op: Operation) -> String {
        format!("{} failed with error: \"{}\"", op.name(), self)
    }

    /// Seconds a client should wait before retrying, for transient errors only.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            ApiError::Unavailable { .. } | ApiError::Provider { .. } => Some(1),
            _ => None,
        }
    }

    /// The underlying cause, for logs only.
    pub fn cause_chain(&self) -> Option<String> {
        let mut source = self.source()?;
        let mut out = source.to_string();
        while let Some(next) = source.source() {
            out.push_str(": ");
            out.push_str(&next.to_string());
            source = next;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_its_status_and_code() {
        let cases: Vec<(ApiError, u16, i32)> = vec![
            (ApiError::input("x"), 400, 4),
            (ApiError::Unauthenticated("x".into()), 401, 5),
            (ApiError::ApiKey("x".into()), 401, 2),
            (ApiError::TokenExpired, 401, 40),
            (ApiError::TokenNotYetValid, 401, 41),
            (ApiError::TokenIssuedInFuture, 401, 42),
            (ApiError::TokenSignature("x".into()), 401, 43),
            (ApiError::Forbidden("x".into()), 403, 17),
            (ApiError::NotFound("x".into()), 404, 16),
            (ApiError::MethodNotAllowed("GET".into()), 405, 4),
            (ApiError::PayloadTooLarge { limit: 1 }, 413, 22),
            (
                ApiError::RateLimited {
                    message: "x".into(),
                    retry_after_secs: 1,
                    cause: None,
                },
                429,
                9,
            ),
            (
                ApiError::Unavailable {
                    message: "x".into(),
                    cause: None,
                },
                503,
                -1,
            ),
            (
                ApiError::Provider {
                    message: "x".into(),
                    cause: None,
                },
                502,
                -1,
            ),
            (
                ApiError::ProviderRejected {
                    message: "x".into(),
                    cause: None,
                },
                502,
                -1,
            ),
            (
                ApiError::NotConfigured {
                    message: "x".into(),
                    cause: None,
                },
                503,
                -1,
            ),
            (ApiError::Internal("boom".into()), 500, -1),
        ];
        for (err, status, code) in cases {
            let (s, c) = err.status_and_code();
            assert_eq!((s.as_u16(), c), (status, code), "{err:?}");
        }
    }

    #[test]
    fn messages_follow_streams_style_and_hide_causes() {
        let e = ApiError::input("type must be video or audio");
        assert_eq!(
            e.client_message(Operation::CreateCall),
            "CreateCall failed with error: \"type must be video or audio\""
        );
        let e = ApiError::Internal("secret detail".into());
        assert_eq!(
            e.client_message(Operation::GetCallToken),
            "GetCallToken failed with error: \"internal error\""
        );
        assert_eq!(e.cause_chain().as_deref(), Some("secret detail"));
    }
}
