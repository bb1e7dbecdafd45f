//! Runs a Callbridge handler as an AWS Lambda function behind an API Gateway HTTP API.
//! Everything here is adaptation: API Gateway v2 events in, handler responses out.

use bytes::Bytes;
pub use callbridge::Operation;
use callbridge::api::{ApiRequest, PathParams};
use callbridge::config::ConfigError;
use callbridge::store::CallStore;
use callbridge::store::dynamodb::{self, DynamoStore};
use callbridge::{Callbridge, Config};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
pub use lambda_http::Error;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use std::sync::Arc;
use std::time::Duration;

/// Adapts one API Gateway request to the domain handler.
pub async fn handle<S: CallStore>(
    app: &Callbridge<S>,
    operation: Operation,
    req: Request,
) -> Response<Body> {
    let params = req.path_parameters();
    let raw_path = req.raw_http_path().to_string();
    let has_context = matches!(
        req.request_context_ref(),
        Some(RequestContext::ApiGatewayV2(_))
    );
    let (parts, body) = req.into_parts();
    let path = if raw_path.is_empty() || !has_context {
        parts.uri.path().to_string()
    } else {
        raw_path
    };
    let body: &[u8] = match &body {
        Body::Empty => &[],
        Body::Text(s) => s.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    let params = (!params.is_empty()).then(|| PathParams {
        channel_type: params.first("type"),
        id: params.first("id"),
    });
    let response = app
        .handle(ApiRequest {
            method: &parts.method,
            path: &path,
            params,
            operation: Some(operation),
            query: parts.uri.query(),
            headers: &parts.headers,
            body,
        })
        .await;
    response.map(|bytes| match String::from_utf8(bytes) {
        Ok(text) => Body::Text(text),
        Err(e) => Body::Binary(e.into_bytes()),
    })
}

/// Builds the application once (cold start) and serves `operation` until the runtime stops.
pub async fn run_with<S: CallStore>(
    operation: Operation,
    config: Config,
    store: S,
) -> Result<(), Error> {
    let app = Arc::new(Callbridge::new(config, store));
    lambda_http::run(service_fn(move |req: Request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(handle(&app, operation, req).await) }
    }))
    .await
}

/// Entry point of each function binary: configuration and the DynamoDB client are built once,
/// at cold start. A bad setting fails the start with a message naming the variable, reported
/// to the Lambda Runtime API as an init error (so it shows in the invocation's error, not only
/// in the logs).
pub async fn run(operation: Operation) -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = match load_config() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            report_init_error("Runtime.ConfigError", &e.to_string()).await;
            return Err(e.into());
        }
    };
    let table = config
        .table_name
        .clone()
        .expect("load_config checked the table");
    let store = DynamoStore::new(dynamodb::client_from_env().await, table);
    run_with(operation, config, store).await
}

fn load_config() -> Result<Config, ConfigError> {
    let config = Config::from_env()?;
    if config.table_name.is_none() {
        return Err(ConfigError {
            var: "CALLBRIDGE_TABLE_NAME",
            reason: "is not set; the functions store calls in DynamoDB".into(),
        });
    }
    Ok(config)
}

/// Posts `/runtime/init/error` to the Runtime API (best effort, 2 s at most).
pub async fn report_init_error(error_type: &str, message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body =
        serde_json::json!({"errorType": error_type, "errorMessage": message, "stackTrace": []});
    let request = http::Request::post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", error_type)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())));
    let Ok(request) = request else {
        return;
    };
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    match tokio::time::timeout(Duration::from_secs(2), client.request(request)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "could not report the init error"),
        Err(_) => tracing::error!("could not report the init error: no answer in 2 s"),
    }
}
