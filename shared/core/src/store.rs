//! The storage ports: calls by canonical id, read by one capability and created at most once by
//! another, so that a process holds only what its IAM policy allows (`get-call-token` reads).

use crate::domain::{Call, CallId, Ended, Fact, KickRule};
use crate::error::{Cause, Error};
use std::future::Future;
use std::sync::Arc;

/// What `insert_if_absent` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The call was stored, replacing the expired or ended call of its id, if there was one.
    New { replaced: Option<Call> },
    /// A live call with that id already existed; it is returned unchanged and nothing was written.
    Existing(Call),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store asks us to slow down.
    #[error("storage is throttling requests")]
    Throttled(#[source] Cause),
    /// The store could not be reached or failed on a read, or refused a write before doing it:
    /// nothing was written.
    #[error("storage is unavailable")]
    Unavailable(#[source] Cause),
    /// A write was sent but not confirmed (a timeout, a dropped connection, a server error):
    /// it may or may not have happened.
    #[error("storage did not confirm the write")]
    Unconfirmed(#[source] Cause),
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

/// Each storage failure as the client is told it.
impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        match e {
            StoreError::Throttled(cause) => Error::RateLimited {
                message: "too many requests right now; retry after a second".into(),
                retry_after_secs: 1,
                cause: Some(cause),
            },
            StoreError::Unavailable(cause) => Error::Unavailable {
                message: "call storage is unavailable; nothing was changed, retry shortly".into(),
                cause: Some(cause),
            },
            StoreError::Unconfirmed(cause) => Error::Unavailable {
                message: "call storage did not confirm the write, so the call may or may not have been stored; repeating the same request is safe (it answers the stored call)".into(),
                cause: Some(cause),
            },
            StoreError::Misconfigured(cause) => Error::NotConfigured {
                message: "call storage refused this deployment's configuration (table, permissions or credentials); nothing was changed".into(),
                cause: Some(cause),
            },
            StoreError::Corrupt(what) => Error::Internal(what.into()),
            StoreError::Internal(cause) => Error::Internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_that_wrote_nothing_say_so() {
        let msg = |e: StoreError| Error::from(e).to_string();
        assert!(msg(StoreError::Unavailable("x".into())).contains("nothing was changed"));
        let unknown = msg(StoreError::Unconfirmed("timeout".into()));
        assert!(!unknown.contains("nothing"), "{unknown}");
        assert!(
            unknown.contains("may or may not have been stored"),
            "{unknown}"
        );
        assert!(
            unknown.contains("repeating the same request is safe"),
            "{unknown}"
        );
        assert!(msg(StoreError::Misconfigured("x".into())).contains("nothing was changed"));
        assert!(!msg(StoreError::Throttled("x".into())).contains("nothing"));
    }
}

/// Reads calls. Expired calls (`expires_at <= now`) do not exist.
pub trait CallReader: Send + Sync + 'static {
    /// The live call with this id, if any (strongly consistent).
    fn get(
        &self,
        id: &CallId,
        now: u64,
    ) -> impl Future<Output = Result<Option<Call>, StoreError>> + Send;
}

/// What [`CallWriter::end`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndWrite {
    /// The call is recorded as ended by this write; the call as stored now.
    Ended(Call),
    /// The call had already ended (by End Call or its time limit); it is returned unchanged and
    /// nothing was written.
    AlreadyEnded(Call),
    /// The call no longer exists: expired, or its id now names a newer call. Nothing was
    /// written.
    Gone,
}

/// Work done for a call after it was stored, recorded on the call (and only on the call of that
/// id created at that time, not a later one with the same id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Its channel was told it exists.
    Announced,
    /// Its provider was told it ended; Agora's kicking rule, if one was made.
    ProviderEnded { kick_rule: Option<KickRule> },
    /// Its channel was told it ended.
    EndAnnounced,
    /// The kicking rule of an earlier call with its id could not be removed: remembered, so
    /// that the next Create Call retries.
    StaleKickRule(KickRule),
    /// That rule is removed (or lapsed).
    StaleKickRuleRemoved,
    /// Its channel was told of these session transitions (`started:<key>`, `ended:<key>`).
    Told(Vec<String>),
}

/// Creates calls, at most one live call per id, and records what happens to them.
pub trait CallWriter: Send + Sync + 'static {
    /// Stores `call` unless a live, not ended call with its id exists, in one atomic
    /// operation; an expired or ended call with its id is replaced. A write whose outcome is
    /// unknown is [`StoreError::Unconfirmed`], never [`StoreError::Unavailable`].
    fn insert_if_absent(
        &self,
        call: &Call,
        now: u64,
    ) -> impl Future<Output = Result<Inserted, StoreError>> + Send;

    /// Records, in one conditional write, that `call` (its id, created at its `created_at`)
    /// ended as `ended` says, unless it has ended already or no longer exists.
    fn end(
        &self,
        call: &Call,
        ended: &Ended,
        now: u64,
    ) -> impl Future<Output = Result<EndWrite, StoreError>> + Send;

    /// Adds provider events to the call with this id created at `created_at`, in one
    /// conditional write on the first one's absence. `false`: nothing was written (the call has
    /// the first already, or is gone).
    fn record(
        &self,
        id: &CallId,
        created_at: u64,
        facts: &[Fact],
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records `done` on the call with this id created at `created_at`. Nothing happens when
    /// there is no such call.
    fn settle(
        &self,
        id: &CallId,
        created_at: u64,
        done: Settled,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Applies `done` to a call as the stores record it.
pub fn apply(call: &mut Call, done: &Settled) {
    match done {
        Settled::Announced => call.pending_announcement = false,
        Settled::ProviderEnded { kick_rule } => {
            if let Some(e) = call.ended.as_mut() {
                e.provider_pending = false;
                e.kick_rule = kick_rule.or(e.kick_rule);
            }
        }
        Settled::Told(keys) => call.media.told.extend(keys.iter().cloned()),
        Settled::EndAnnounced => {
            if let Some(e) = call.ended.as_mut() {
                e.announce_pending = false;
            }
        }
        Settled::StaleKickRule(rule) => call.stale_kick_rule = Some(*rule),
        Settled::StaleKickRuleRemoved => call.stale_kick_rule = None,
    }
}

/// What a process may do with calls: always read them; write them when its policy allows.
pub trait Storage: Send + Sync + 'static {
    type Reader: CallReader;
    type Writer: CallWriter;
    fn reader(&self) -> &Self::Reader;
    /// `None` for a read-only process.
    fn writer(&self) -> Option<&Self::Writer>;
}

/// A store that may read and write (its reader and writer are itself).
#[macro_export]
macro_rules! read_write_storage {
    ($t:ty) => {
        impl $crate::store::Storage for $t {
            type Reader = Self;
            type Writer = Self;
            fn reader(&self) -> &Self {
                self
            }
            fn writer(&self) -> Option<&Self> {
                Some(self)
            }
        }
    };
}

/// Only the reading half of a store (the `get-call-token` function's).
#[derive(Clone, Debug)]
pub struct ReadOnly<R>(pub R);

/// The writer of a read-only process: there is none, so no code path can write.
#[derive(Debug)]
pub enum NoWriter {}

impl CallWriter for NoWriter {
    async fn insert_if_absent(&self, _: &Call, _: u64) -> Result<Inserted, StoreError> {
        match *self {}
    }
    async fn end(&self, _: &Call, _: &Ended, _: u64) -> Result<EndWrite, StoreError> {
        match *self {}
    }
    async fn record(&self, _: &CallId, _: u64, _: &[Fact]) -> Result<bool, StoreError> {
        match *self {}
    }
    async fn settle(&self, _: &CallId, _: u64, _: Settled) -> Result<(), StoreError> {
        match *self {}
    }
}

impl<R: CallReader> Storage for ReadOnly<R> {
    type Reader = R;
    type Writer = NoWriter;
    fn reader(&self) -> &R {
        &self.0
    }
    fn writer(&self) -> Option<&NoWriter> {
        None
    }
}

/// A shared store is a store (several apps, or tests, over one set of calls).
impl<S: Storage> Storage for Arc<S> {
    type Reader = S::Reader;
    type Writer = S::Writer;
    fn reader(&self) -> &S::Reader {
        (**self).reader()
    }
    fn writer(&self) -> Option<&S::Writer> {
        (**self).writer()
    }
}

impl<R: CallReader> CallReader for Arc<R> {
    fn get(
        &self,
        id: &CallId,
        now: u64,
    ) -> impl Future<Output = Result<Option<Call>, StoreError>> + Send {
        (**self).get(id, now)
    }
}
