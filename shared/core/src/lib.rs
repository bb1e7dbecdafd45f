//! Callbridge's core: the domain (calls, ids, permissions, the acting user, the media session),
//! the use cases (Create Call, Get Call Token, End Call, provider events) and the ports they work
//! through (storage, Stream Chat, the video providers). It has no transport, no AWS, no HTTP
//! and no JSON among its dependencies, so the compiler keeps them out (the `callbridge` crate
//! holds the adapters and the HTTP layer).

pub mod chat;
pub mod domain;
pub mod error;
pub mod flight;
pub mod providers;
pub mod store;
pub mod usecase;
