//! The storage port: calls by canonical id, created at most once.

pub mod dynamodb;
pub mod memory;

use crate::call::Call;
use crate::error::Cause;
use crate::id::CallId;
use std::future::Future;

/// What `insert_if_absent` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The call was stored.
    New,
    /// A live call with that id already existed; it is returned unchanged and nothing was written.
    Existing(Call),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store asks us to slow down.
    #[error("storage is throttling requests")]
    Throttled(#[source] Cause),
    /// The store could not be reached or failed; nothing was written.
    #[error("storage is unavailable")]
    Unavailable(#[source] Cause),
    /// The store refused this deployment's configuration (no such table, access denied,
    /// unknown credentials); retrying will not help.
    #[error("storage refused the configuration")]
    Misconfigured(#[source] Cause),
    /// An item could not be read back as a call.
    #[error("stored call is malformed: {0}")]
    Corrupt(String),
    /// A request this code built was refused before it was sent: a bug, not an outage.
    #[error("storage request could not be built")]
    Internal(#[source] Cause),
}

/// Calls by canonical id. Expired calls (`expires_at <= now`) do not exist: `get` does not
/// return them and `insert_if_absent` replaces them.
pub trait CallStore: Send + Sync + 'static {
    /// Stores `call` unless a live call with its id exists, in one atomic operation.
    fn insert_if_absent(
        &self,
        call: &Call,
        now: u64,
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send;

    /// The live call with this id, if any (strongly consistent).
    fn get(
        &self,
        id: &CallId,
        now: u64,
    ) -> impl Future<Output = Result<Option<Call>, StoreError>> + Send;
}

/// A shared store is a store (several apps, or tests, over one set of calls).
impl<S: CallStore> CallStore for std::sync::Arc<S> {
    fn insert_if_absent(
        &self,
        call: &Call,
        now: u64,
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send {
        (**self).insert_if_absent(call, now)
    }

    fn get(
        &self,
        id: &CallId,
        now: u64,
    ) -> impl Future<Output = Result<Option<Call>, StoreError>> + Send {
        (**self).get(id, now)
    }
}
