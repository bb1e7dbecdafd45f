//! The cold start: logging, configuration, the DynamoDB client, and init errors reported to the
//! Runtime API.

use bytes::Bytes;
use callbridge::Config;
use callbridge::config::ConfigError;
use callbridge::store::dynamodb::{self, DynamoStore};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lambda_runtime::Error;
use std::time::Duration;

/// Cold start of each function: configuration and the DynamoDB client are built once. A bad
/// setting fails the start with a message naming the variable, reported to the Lambda Runtime
/// API as an init error (so it shows in the invocation's error, not only in the logs).
pub(crate) async fn init() -> Result<(Config, DynamoStore), Error> {
    init_logging();
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
    Ok((config, store))
}

pub(crate) fn load_config() -> Result<Config, ConfigError> {
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

/// JSON logs when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`), at the level Lambda
/// passes (`AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG` read as a level, else INFO).
///
/// The level applies to Callbridge's own crates. Dependencies log at DEBUG at most: at TRACE
/// the Lambda runtime logs every raw event (with the caller's `Authorization` header) and
/// response, and the HTTP and AWS SDK crates log request details; none of that may reach
/// CloudWatch.
pub(crate) fn init_logging() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(|l| parse_level(&l))
        .unwrap_or(LevelFilter::INFO);
    let filter = Targets::new()
        .with_default(level.min(LevelFilter::DEBUG))
        .with_target("callbridge", level)
        .with_target("callbridge_lambda", level);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_target(false)
        .without_time()
        .with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        // The invocation's span (request ids) as `span` on every line; not the runtime's
        // outer span again.
        registry
            .with(fmt.json().with_current_span(true).with_span_list(false))
            .init();
    } else {
        registry.with(fmt).init();
    }
}

/// Lambda's level names (FATAL is ERROR here); anything unknown is INFO.
pub(crate) fn parse_level(name: &str) -> tracing_subscriber::filter::LevelFilter {
    use tracing_subscriber::filter::LevelFilter;
    match name.trim().to_ascii_uppercase().as_str() {
        "TRACE" => LevelFilter::TRACE,
        "DEBUG" => LevelFilter::DEBUG,
        "WARN" => LevelFilter::WARN,
        "ERROR" | "FATAL" => LevelFilter::ERROR,
        "OFF" => LevelFilter::OFF,
        _ => LevelFilter::INFO,
    }
}
