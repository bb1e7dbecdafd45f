//! Get Call Token: a join token for an existing call.

use super::{Calls, Naming, has_ended};
use crate::domain::{Actor, CallId, CallState, Permission};
use crate::error::Error;
use crate::providers::{JoinToken, TokenFor, VideoProviders};
use crate::store::{CallReader, Storage};

/// A request for a join token.
#[derive(Clone, Debug)]
pub struct GetCallToken {
    pub id: CallId,
    pub actor: Actor,
}

impl<S: Storage, P: VideoProviders> Calls<S, P> {
    /// A token for the live call with this id, from the call's own provider, valid no longer
    /// than the call. An ended call is refused as not found, in words that say it ended.
    pub async fn get_call_token(&self, cmd: GetCallToken, now: u64) -> Result<JoinToken, Error> {
        self.authorize(&cmd.actor, Permission::JoinCall)?;
        let call = self
            .store
            .reader()
            .get(&cmd.id, now)
            .await?
            .ok_or_else(|| Error::NotFound(format!("call {:?} does not exist", cmd.id.as_str())))?;
        self.require_member(&call.cid, &cmd.actor, Naming::TheCallsChannel, now)
            .await?;
        if call.state(now) == CallState::Ended {
            return Err(has_ended(&call));
        }
        let lifetime = self
            .token_lifetime(&call, now)
            .ok_or_else(|| has_ended(&call))?;
        let to = TokenFor {
            actor: &cmd.actor,
            lifetime,
            now,
        };
        self.providers.join_token(&call, to)
    }
}
