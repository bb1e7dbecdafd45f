//! Video providers.

pub mod access_token2;
pub mod agora;
pub mod hms;
