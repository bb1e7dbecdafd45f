//! Lambda function: `POST /calls/{id}`.

#[tokio::main]
async fn main() -> Result<(), callbridge_lambda::Error> {
    callbridge_lambda::run(callbridge_lambda::Operation::GetCallToken).await
}
