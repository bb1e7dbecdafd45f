//! Lambda function: `POST /calls/{id}/end`.

// One thread, as the other functions (see functions/create-call).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), callbridge_lambda::Error> {
    callbridge_lambda::run_end_call().await
}
