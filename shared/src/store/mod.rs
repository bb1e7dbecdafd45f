//! Storage: the ports (`callbridge_core::store`: a reader and a writer) with the memory and
//! DynamoDB adapters.

pub use callbridge_core::store::*;

pub mod dynamodb;
pub mod dynamodb_metrics;
pub mod memory;
