//! The errors of authentication and of the use cases. They say what went wrong in words a
//! client may read; which HTTP status and Stream code each becomes is decided in one place, the
//! API layer (`crate::api::error`). Causes are kept for the logs, never sent.

use std::error::Error as StdError;

pub type Cause = Box<dyn StdError + Send + Sync + 'static>;

/// Why credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The `api_key` is missing or not this deployment's.
    #[error("{0}")]
    ApiKey(String),
    /// Missing, garbled or anonymous credentials.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("JWTAuth error: token has expired")]
    TokenExpired,
    #[error("JWTAuth error: token is not valid yet (nbf is in the future)")]
    TokenNotYetValid,
    #[error("JWTAuth error: token was issued in the future (iat)")]
    TokenIssuedInFuture,
    /// A signature that does not verify, a refused algorithm or a refused dev token.
    #[error("JWTAuth error: {0}")]
    TokenSignature(String),
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or breaks a rule; the message says which.
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The actor may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A dependency asks us to slow down.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
        #[source]
        cause: Option<Cause>,
    },
    /// Storage cannot answer now; a retry may succeed.
    #[error("{message}")]
    Unavailable {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// The video provider failed; a retry may succeed.
    #[error("{message}")]
    Provider {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// The video provider refused this deployment's configuration (credentials, default
    /// template); retrying will not help.
    #[error("{message}")]
    ProviderRejected {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// This deployment lacks a setting the request needs, or a dependency refused its
    /// configuration (no table, no permission); retrying will not help.
    #[error("{message}")]
    NotConfigured {
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// A bug or a broken invariant. Clients are told only "internal error".
    #[error("internal error")]
    Internal(#[source] Cause),
}

impl Error {
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
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
    fn causes_are_kept_apart_from_the_message() {
        let e = Error::Internal("secret detail".into());
        assert_eq!(e.to_string(), "internal error");
        assert_eq!(e.cause_chain().as_deref(), Some("secret detail"));
        let e = Error::from(AuthError::TokenExpired);
        assert_eq!(e.to_string(), "JWTAuth error: token has expired");
        assert_eq!(e.cause_chain(), None);
    }
}
