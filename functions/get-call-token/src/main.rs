//! Lambda function: `POST /calls/{id}`.

// One thread: Lambda hands the function one event at a time, and on the multi-thread runtime
// every DynamoDB and Runtime API exchange woke another thread (about 40% of the CPU of an
// invocation; `make storage-cpu`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), callbridge_lambda::Error> {
    callbridge_lambda::run_get_call_token().await
}
