//! In-memory store: the local server's default and the fast unit tests' store.

use super::{CallReader, CallWriter, EndWrite, Inserted, Settled, StoreError};
use crate::domain::{Call, CallId, CallState, Ended, Fact};
use std::collections::HashMap;
use std::sync::Mutex;

/// A map behind one mutex; every operation is a short critical section, so concurrent
/// creates of one id serialise and exactly one wins.
#[derive(Default, Debug)]
pub struct MemoryStore {
    calls: Mutex<HashMap<CallId, Call>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of stored calls, expired ones included (tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CallId, Call>> {
        // A panic while holding the lock cannot leave a half-written entry (inserts are one
        // call), so a poisoned map is still consistent.
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }
}

callbridge_core::read_write_storage!(MemoryStore);

impl CallWriter for MemoryStore {
    async fn insert_if_absent(&self, call: &Call, now: u64) -> Result<Inserted, StoreError> {
        let mut calls = self.lock();
        match calls.get(&call.id) {
            Some(existing)
                if !existing.is_expired(now) && existing.state(now) == CallState::Active =>
            {
                Ok(Inserted::Existing(existing.clone()))
            }
            _ => Ok(Inserted::New {
                replaced: calls.insert(call.id.clone(), call.clone()),
            }),
        }
    }

    async fn end(&self, call: &Call, ended: &Ended, now: u64) -> Result<EndWrite, StoreError> {
        let mut calls = self.lock();
        let Some(stored) = calls.get_mut(&call.id) else {
            return Ok(EndWrite::Gone);
        };
        if stored.created_at != call.created_at || stored.is_expired(now) {
            return Ok(EndWrite::Gone);
        }
        if stored.state(now) == CallState::Ended {
            return Ok(EndWrite::AlreadyEnded(stored.clone()));
        }
        stored.ended = Some(ended.clone());
        Ok(EndWrite::Ended(stored.clone()))
    }

    async fn record(
        &self,
        id: &CallId,
        created_at: u64,
        facts: &[Fact],
    ) -> Result<bool, StoreError> {
        match (self.lock().get_mut(id), facts.first()) {
            (Some(call), Some(first))
                if call.created_at == created_at && !call.media.has(&first.id) =>
            {
                for fact in facts {
                    if !call.media.has(&fact.id) {
                        call.media.facts.push(fact.clone());
                    }
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn settle(&self, id: &CallId, created_at: u64, done: Settled) -> Result<(), StoreError> {
        if let Some(call) = self.lock().get_mut(id)
            && call.created_at == created_at
        {
            super::apply(call, &done);
        }
        Ok(())
    }
}

impl MemoryStore {
    /// The stored call with this id, expired or not (tests).
    pub fn peek(&self, id: &CallId) -> Option<Call> {
        self.lock().get(id).cloned()
    }
}

impl CallReader for MemoryStore {
    async fn get(&self, id: &CallId, now: u64) -> Result<Option<Call>, StoreError> {
        Ok(self.lock().get(id).filter(|c| !c.is_expired(now)).cloned())
    }
}
