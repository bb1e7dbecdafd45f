//! The video provider port: what the use cases ask of the providers (Agora and 100ms stand
//! behind it in the `callbridge` crate), and what the providers' events say.

use crate::domain::{
    Actor, Call, CallId, CallOptions, Fact, KickRule, ProviderDetails, ProviderKind,
};
use crate::error::Error;
use std::future::Future;

/// A join token for one user in one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinToken {
    pub token: String,
    /// Agora calls: the user's Agora uid and the app id the client joins with.
    pub agora: Option<AgoraJoin>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgoraJoin {
    pub uid: u32,
    pub app_id: String,
}

/// What the provider did when a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderEnd {
    /// 100ms: the room's session ended (or none was running); every peer left.
    SessionEnded,
    /// Agora: a kicking rule on the channel removed everyone and keeps them out until its end.
    Removed(KickRule),
    /// Agora without RESTful API credentials: nothing can be done at Agora; tokens already
    /// issued stay valid until they expire.
    Nothing,
}

/// Who a join token is for, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct TokenFor<'a> {
    pub actor: &'a Actor,
    /// Seconds from `now`.
    pub lifetime: u32,
    /// Unix seconds.
    pub now: u64,
}

/// The providers as the use cases use them: validate a new call's options, prepare it, issue
/// join tokens, end calls, remove what an ended call left.
pub trait VideoProviders: Send + Sync + 'static {
    /// A new call's options, validated by its provider's rules.
    type NewCall: Send + Sync;

    /// Validates the options of a new call; `limit`: its time limit in seconds.
    fn options(&self, options: &CallOptions, limit: Option<u64>) -> Result<Self::NewCall, Error>;

    /// Whether preparing asks the provider over the network (then an existing call is looked
    /// up first, so the provider is not asked for it again).
    fn prepares_remotely(&self, options: &Self::NewCall) -> bool;

    /// Where a new call with this id lives at its provider.
    fn prepare(
        &self,
        id: &CallId,
        options: &Self::NewCall,
        now: u64,
    ) -> impl Future<Output = Result<ProviderDetails, Error>> + Send;

    /// A join token in `call`, from the call's own provider.
    fn join_token(&self, call: &Call, to: TokenFor<'_>) -> Result<JoinToken, Error>;

    /// Tells the call's own provider that it ended, so that no one stays in it.
    /// `tokens_until`: no token issued for it is valid after this (Unix seconds). Errors say
    /// what was not done, to follow "the call is ended, but".
    fn end(
        &self,
        call: &Call,
        reason: Option<&str>,
        tokens_until: u64,
        now: u64,
    ) -> impl Future<Output = Result<ProviderEnd, Error>> + Send;

    /// Removes an Agora kicking rule that an earlier call with the same channel left.
    fn remove_rule(&self, rule: KickRule) -> impl Future<Output = Result<(), Error>> + Send;

    /// Whether ending a call of this provider removes its participants.
    fn ends_remotely(&self, kind: ProviderKind) -> bool;
}

/// An event about one call from its provider: the call its room or channel is named after,
/// where it happened (100ms room id, Agora channel), and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderEvent {
    pub provider: ProviderKind,
    pub call: CallId,
    /// 100ms: the room id; Agora: the channel name.
    pub place: String,
    /// The event's own fact first, then what it implies (a 100ms peer event's session start).
    pub facts: Vec<Fact>,
}
