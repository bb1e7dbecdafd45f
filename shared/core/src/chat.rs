//! The chat port: what Stream Chat says of a user and a channel. Calls are private to their
//! channel's members, and new calls are announced in their channel; the use cases ask through
//! [`Members`] and [`Announcer`], and `callbridge`'s Stream Chat client answers from Stream Chat's REST API.

use crate::domain::{Call, ChannelCid};
use crate::error::Error;
use std::future::Future;
use std::pin::Pin;

/// What Stream Chat answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Membership {
    Member,
    NotMember,
    /// The channel does not exist.
    NoChannel,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Asks whether a user is a member of a channel. `now` is Unix seconds (for caching).
pub trait Members: Send + Sync {
    fn membership<'a>(
        &'a self,
        cid: &'a ChannelCid,
        user_id: &'a str,
        now: u64,
    ) -> BoxFuture<'a, Result<Membership, Error>>;
}

/// Tells a call's channel that the call was created (`CALLBRIDGE_NOTIFY`). Announcing one call
/// twice must not tell the channel twice where the way of telling allows it (a message is sent
/// with an id derived from the call, so Stream refuses a repeat as a duplicate). Errors say
/// that the call exists and the channel was not told.
pub trait Announcer: Send + Sync {
    fn announce<'a>(&'a self, call: &'a Call, now: u64) -> BoxFuture<'a, Result<(), Error>>;

    /// Tells the call's channel that the call ended, in the same way. Errors say that the call
    /// is ended and the channel was not told.
    fn announce_end<'a>(&'a self, call: &'a Call, now: u64) -> BoxFuture<'a, Result<(), Error>>;

    /// Tells the call's channel that its media session went live (`live`) or closed; `key`
    /// names the transition (a repeat of one key tells nothing new where the way allows it).
    fn announce_session<'a>(
        &'a self,
        call: &'a Call,
        key: &'a str,
        live: bool,
        now: u64,
    ) -> BoxFuture<'a, Result<(), Error>>;
}
