//! End Call: record that a call ended (one conditional write), then tell its provider, so that
//! everyone leaves, and its channel. What fails after the write is retried by repeating the
//! request: the call stays ended whatever happens after.

use super::{Calls, Naming};
use crate::domain::{Actor, Call, CallId, Ended, Permission};
use crate::error::Error;
use crate::providers::{ProviderEnd, VideoProviders};
use crate::store::{CallReader, CallWriter, EndWrite, Settled, Storage, StoreError};

/// Longest reason End Call accepts, in characters.
pub const MAX_REASON_CHARS: usize = 255;

/// A request to end a call.
#[derive(Clone, Debug)]
pub struct EndCall {
    pub id: CallId,
    pub reason: Option<String>,
    pub actor: Actor,
}

/// The ended call, and what became of its participants.
#[derive(Clone, Debug)]
pub struct EndedCall {
    pub call: Call,
    pub participants: Participants,
    /// This request ended it (a repeat, or a call past its time limit, did not).
    pub newly_ended: bool,
}

/// What became of the people in an ended call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Participants {
    /// The provider removed everyone (100ms ended the session; Agora's kicking rule).
    Removed,
    /// The call reached its time limit: the provider's own limit (100ms) and the tokens'
    /// expiry (every token expires at the limit) ended it.
    TimeLimit,
    /// Nothing could be done at the provider (Agora without RESTful API credentials): tokens
    /// already issued stay valid until this moment (Unix seconds).
    TokensValidUntil(u64),
}

/// A provider failure to end a call, shared by the concurrent End Calls of one call.
#[derive(Clone, Debug)]
pub(crate) struct EndFailure {
    /// The provider refused this deployment's configuration (no retry will help).
    rejected: bool,
    message: String,
}

impl<S: Storage, P: VideoProviders> Calls<S, P> {
    /// Ends the call with this id. Ending an ended call answers its state again, and retries
    /// whatever of the ending is still to be done.
    pub async fn end_call(&self, cmd: EndCall, now: u64) -> Result<EndedCall, Error> {
        let EndCall { id, reason, actor } = cmd;
        let writer = self.store.writer().ok_or_else(|| Error::NotConfigured {
            message: "this function cannot end calls".into(),
            cause: None,
        })?;
        let unknown = || Error::NotFound(format!("call {:?} does not exist", id.as_str()));
        let call = self
            .store
            .reader()
            .get(&id, now)
            .await?
            .ok_or_else(unknown)?;
        self.require_member(&call.cid, &actor, Naming::TheCallsChannel, now)
            .await?;
        self.may_end(&call, &actor)?;
        let mut newly_ended = false;
        let mut call = if call.ended.is_some() || call.timed_out(now) {
            call
        } else {
            let ended = Ended {
                at: now,
                by: actor.user_id.clone(),
                reason,
                // Nothing to tell a provider that cannot remove anyone (Agora without RESTful
                // API credentials): no second write for it.
                provider_pending: self.providers.ends_remotely(call.provider.kind()),
                announce_pending: self.announcer.is_some(),
                kick_rule: None,
            };
            let written = writer.end(&call, &ended, now).await.map_err(|e| match e {
                StoreError::Unconfirmed(cause) => Error::Unavailable {
                    message: "call storage did not confirm the end, so the call may or may not be recorded as ended; repeating the same request is safe".into(),
                    cause: Some(cause),
                },
                e => Error::from(e),
            })?;
            match written {
                EndWrite::Ended(call) => {
                    newly_ended = true;
                    call
                }
                EndWrite::AlreadyEnded(call) => call,
                EndWrite::Gone => {
                    return Err(Error::NotFound(format!(
                        "call {:?} expired or was replaced by a new call with its id while it was being ended; repeat the request to end the call the id names now",
                        id.as_str()
                    )));
                }
            }
        };
        let Some(ended) = call.ended.clone() else {
            // Its time limit ended it: nothing to write, and the provider ended it already.
            return Ok(EndedCall {
                call,
                participants: Participants::TimeLimit,
                newly_ended,
            });
        };
        let tokens_until = ended
            .at
            .saturating_add(u64::from(self.rules.token_ttl_secs))
            .min(call.token_deadline());
        if ended.provider_pending {
            let key = format!("{}\n{}", call.id.as_str(), call.created_at);
            let outcome = self
                .ending
                .run(&key, || {
                    self.end_at_provider(&call, &ended, tokens_until, now)
                })
                .await;
            let kick_rule = match outcome {
                Ok(ProviderEnd::Removed(rule)) => Some(rule),
                Ok(ProviderEnd::SessionEnded | ProviderEnd::Nothing) => None,
                Err(f) => return Err(not_done(&call, f)),
            };
            let done = Settled::ProviderEnded { kick_rule };
            if let Err(e) = writer.settle(&call.id, call.created_at, done.clone()).await {
                // The provider was told; a repeat tells it again, which ends nothing twice.
                tracing::warn!(call = %call.id, error = %e, "provider told of the end, but the pending mark stays");
            }
            crate::store::apply(&mut call, &done);
        }
        if ended.announce_pending
            && let Some(announcer) = &self.announcer
        {
            announcer.announce_end(&call, now).await?;
            if let Err(e) = writer
                .settle(&call.id, call.created_at, Settled::EndAnnounced)
                .await
            {
                tracing::warn!(call = %call.id, error = %e, "end announced, but the pending mark stays");
            }
            crate::store::apply(&mut call, &Settled::EndAnnounced);
        }
        let removed = match call.provider.kind() {
            crate::domain::ProviderKind::Hms => true,
            crate::domain::ProviderKind::Agora => {
                call.ended.as_ref().is_some_and(|e| e.kick_rule.is_some())
            }
        };
        Ok(EndedCall {
            participants: if removed {
                Participants::Removed
            } else {
                Participants::TokensValidUntil(tokens_until)
            },
            call,
            newly_ended,
        })
    }

    /// The call's creator may end it; so may a role granted `end-call`, and server tokens.
    fn may_end(&self, call: &Call, actor: &Actor) -> Result<(), Error> {
        if actor.server
            || actor.user_id == call.created_by
            || self.rules.grants.allows(&actor.role, Permission::EndCall)
        {
            return Ok(());
        }
        Err(Error::Forbidden(format!(
            "user {:?} with role {:?} is not allowed to perform action end-call on call {:?}: only its creator and roles granted end-call may end it",
            actor.user_id,
            actor.role,
            call.id.as_str()
        )))
    }

    async fn end_at_provider(
        &self,
        call: &Call,
        ended: &Ended,
        tokens_until: u64,
        now: u64,
    ) -> Result<ProviderEnd, EndFailure> {
        self.providers
            .end(call, ended.reason.as_deref(), tokens_until, now)
            .await
            .map_err(|e| {
                let cause = e.cause_chain();
                tracing::warn!(call = %call.id, error = %e, cause = cause.as_deref().unwrap_or(""), "the provider was not told of the end");
                EndFailure {
                    rejected: matches!(e, Error::ProviderRejected { .. } | Error::NotConfigured { .. }),
                    message: e.to_string(),
                }
            })
    }
}

/// The answer when the provider part failed: the call is ended all the same.
fn not_done(call: &Call, f: EndFailure) -> Error {
    let message = format!(
        "call {:?} is ended and no new tokens are issued for it, but {}; repeating the same request retries",
        call.id.as_str(),
        f.message
    );
    if f.rejected {
        Error::ProviderRejected {
            message,
            cause: None,
        }
    } else {
        Error::Provider {
            message,
            cause: None,
        }
    }
}
