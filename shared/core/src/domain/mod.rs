//! Domain types: call ids and channels, calls, call types, permissions, the acting user. They
//! know no transport, no storage and no provider SDK (`shared/tests/layers.rs` checks it).

pub mod actor;
pub mod call;
pub mod id;
pub mod operation;
pub mod permissions;
pub mod session;

pub use actor::{Actor, Identity, NamedUser, validate_user_id};
pub use call::{
    Call, CallOptions, CallState, CallType, Ended, KickRule, MAX_FACTS, Media, OptionValue,
    ProviderDetails, ProviderKind,
};
pub use id::{CallId, ChannelCid};
pub use operation::Operation;
pub use permissions::{Grants, Permission};
pub use session::{Fact, MediaEvent, SessionRecord};
