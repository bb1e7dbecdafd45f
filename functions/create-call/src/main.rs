//! Lambda function: `POST /channels/{type}/{id}/call`.

#[tokio::main]
async fn main() -> Result<(), callbridge_lambda::Error> {
    callbridge_lambda::run_create_call().await
}
