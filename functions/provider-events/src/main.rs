//! Lambda function: `POST /webhooks/100ms` and `POST /webhooks/agora`.

// One thread, as the other functions (see functions/create-call).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), callbridge_lambda::Error> {
    callbridge_lambda::run_provider_events().await
}
