//! Callbridge: Stream-compatible Create Call and Get Call Token for Agora and 100ms.
//!
//! The domain crate. It knows nothing of Lambda: the handlers in [`api`] take plain HTTP
//! types; storage sits behind [`store::CallStore`] with in-memory and DynamoDB adapters.

pub mod api;
pub mod auth;
pub mod call;
pub mod config;
pub mod crypto;
pub mod error;
pub mod id;
pub mod jwt;
pub mod permissions;
pub mod providers;
pub mod secret;
pub mod store;

pub use api::{ApiRequest, ApiResponse, Callbridge, PathParams};
pub use config::Config;
pub use error::{ApiError, Operation};
