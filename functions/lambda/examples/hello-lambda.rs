//! The smallest `lambda_runtime` function, the yardstick of `make cold-start`: it echoes each
//! event. Built with the functions' release profile, so the difference in start-up is ours.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
