//! The integration tests, one test binary (`cargo test -p callbridge-tests --test api`): each
//! module is one area, named as its file. One binary links the AWS SDK, hyper and wiremock
//! once instead of once per area.

mod dynamodb;
mod end_call;
mod handlers;
mod hms;
mod lambda_runtime;
mod local_server;
mod membership;
mod notify;
mod provider_events;
mod smoke;
mod upstream_events;
mod usecases;
