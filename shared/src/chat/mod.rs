//! The chat port: what Stream Chat says of a user and a channel. Calls are private to their
//! channel's members; the use cases ask through [`Members`], and [`stream::StreamMembers`]
//! answers from Stream Chat's REST API.

pub mod stream;

use crate::domain::ChannelCid;
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
