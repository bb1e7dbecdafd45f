//! The use cases, one module each, written against the domain, the storage ports and the
//! provider port only: no transport, no JSON, no AWS (`shared/tests/layers.rs` checks it).

pub mod create_call;
pub mod end_call;
pub mod get_call_token;
pub mod provider_event;

pub use create_call::{CreateCall, CreatedCall};
pub use end_call::{EndCall, EndedCall};
pub use get_call_token::GetCallToken;
pub use provider_event::EventOutcome;

use crate::chat::{Announcer, Members, Membership};
use crate::domain::{Actor, Call, ChannelCid, Grants, Permission};
use crate::error::Error;
use crate::flight::{Remembered, SingleFlight};
use crate::providers::{ProviderEnd, VideoProviders};
use std::sync::Arc;

/// The rules the use cases apply, from the configuration.
#[derive(Clone, Debug)]
pub struct Rules {
    pub grants: Grants,
    /// Lifetime of issued provider tokens, seconds.
    pub token_ttl_secs: u32,
    /// Lifetime of a call, seconds.
    pub call_ttl_secs: u64,
    /// Time limit of a call without `max_duration_seconds`, seconds; `None`: no limit.
    pub max_call_secs: Option<u64>,
}

/// What the use cases work with: the rules, the providers, the store and, when calls are
/// private to channel members, who answers membership. Built once per process.
pub struct Calls<S, P> {
    rules: Rules,
    providers: P,
    store: S,
    members: Option<Arc<dyn Members>>,
    announcer: Option<Arc<dyn Announcer>>,
    /// Provider ends under way, by call: concurrent End Calls of one call in this process
    /// share one (one Agora kicking rule, identical answers).
    ending: SingleFlight<Result<ProviderEnd, end_call::EndFailure>>,
    /// Pending announcement marks being cleared, and cleared lately, by call: concurrent
    /// creates of one new call clear its mark once in this process.
    clearing: SingleFlight<bool>,
    cleared: Remembered,
}

/// How a membership refusal is worded: Create Call names the channel the caller sent; Get
/// Call Token does not reveal the channel of a call the caller knows only by id.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Naming {
    TheChannel,
    TheCallsChannel,
}

impl<S, P: VideoProviders> Calls<S, P> {
    pub fn new(rules: Rules, providers: P, store: S) -> Self {
        Calls {
            rules,
            providers,
            store,
            members: None,
            announcer: None,
            ending: SingleFlight::default(),
            clearing: SingleFlight::default(),
            cleared: Remembered::default(),
        }
    }

    /// Calls private to their channel's members: user tokens must be members (server tokens
    /// act with the app's authority and are not checked).
    pub fn with_members(mut self, members: Arc<dyn Members>) -> Self {
        self.members = Some(members);
        self
    }

    /// New calls announced in their channel (`CALLBRIDGE_NOTIFY`).
    pub fn with_announcer(mut self, announcer: Arc<dyn Announcer>) -> Self {
        self.announcer = Some(announcer);
        self
    }

    /// Refuses a user-token actor who is not a member of `cid` (when membership is on).
    async fn require_member(
        &self,
        cid: &ChannelCid,
        actor: &Actor,
        naming: Naming,
        now: u64,
    ) -> Result<(), Error> {
        let Some(members) = &self.members else {
            return Ok(());
        };
        if actor.server {
            return Ok(());
        }
        match (members.membership(cid, &actor.user_id, now).await?, naming) {
            (Membership::Member, _) => Ok(()),
            (Membership::NoChannel, Naming::TheChannel) => Err(Error::NotFound(format!(
                "channel {:?} does not exist",
                cid.as_str()
            ))),
            (_, Naming::TheChannel) => Err(Error::Forbidden(format!(
                "user {:?} is not a member of channel {:?}",
                actor.user_id,
                cid.as_str()
            ))),
            (_, Naming::TheCallsChannel) => Err(Error::Forbidden(format!(
                "user {:?} is not a member of this call's channel",
                actor.user_id
            ))),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Refuses an actor whose role lacks `perm`. Each use case checks it itself; a transport
    /// may ask first, so that a refused actor is refused before the rest of its request is read.
    pub fn authorize(&self, actor: &Actor, perm: Permission) -> Result<(), Error> {
        actor.require(perm, &self.rules.grants)
    }

    /// The lifetime of a token issued now for `call`: the configured one, cut so that it never
    /// outlives the call (its time limit, its storage lifetime). `None`: the call is over.
    fn token_lifetime(&self, call: &Call, now: u64) -> Option<u32> {
        let left = call.token_deadline().checked_sub(now).filter(|s| *s > 0)?;
        Some(u64::from(self.rules.token_ttl_secs).min(left) as u32)
    }
}

/// The answer for a call that ended (End Call or its time limit): as for a call that does not
/// exist (404, Stream's code 16), in words that tell the two apart.
fn has_ended(call: &Call) -> Error {
    Error::NotFound(format!("call {:?} has ended", call.id.as_str()))
}
