//! Callbridge: Stream-compatible Create Call and Get Call Token for Agora and 100ms.
//!
//! Knows nothing of Lambda. One direction through the code:
//! - [`wiring`]: the application's parts built from the configuration and put together;
//! - [`api`]: the HTTP layer both transports share (routing, bodies into commands, errors
//!   into status and Stream code, rendering);
//! - [`usecase`]: Create Call and Get Call Token, on typed commands;
//! - [`domain`]: ids, calls, call types, permissions, the acting user;
//! - [`auth`]: Stream credentials into an identity;
//! - [`providers`]: the provider port, with Agora and 100ms behind it;
//! - [`store`]: the storage ports (read, write) with memory and DynamoDB adapters;
//! - [`config`]: the environment, parsed once at start;
//! - [`telemetry`]: what is measured, through the `metrics` facade (no exporter here).

pub use callbridge_core::{domain, error, flight, usecase};

pub mod api;
pub mod auth;
pub mod call_view;
pub mod chat;
pub mod config;
pub mod crypto;
pub mod hs256;
pub mod http_client;
pub mod providers;
pub mod secret;
pub mod store;
pub mod telemetry;
pub mod wiring;

pub use api::{ApiError, ApiRequest, ApiResponse, Callbridge, Operation, PathParams, StartError};
pub use config::Config;
