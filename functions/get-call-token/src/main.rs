//! Lambda function: `POST /calls/{id}`.

#[tokio::main]
async fn main() -> Result<(), callbridge_lambda::Error> {
    callbridge_lambda::run_get_call_token().await
}
