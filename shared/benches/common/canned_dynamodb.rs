//! A DynamoDB client that answers at once with canned responses, built as production builds
//! it: for the DynamoDB bench and the instruction counts of `examples/sdk_instructions.rs`.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use callbridge::Callbridge;
use callbridge::store::dynamodb::{DynamoStore, config_from};

use crate::common::config_with;

pub const ITEM: &str = r#"{"pk":{"S":"call-messaging:general"},"cid":{"S":"messaging:general"},"call_type":{"S":"video"},"provider":{"S":"agora"},"agora_channel":{"S":"call-messaging:general"},"created_by":{"S":"alice"},"created_at":{"N":"1800000000"},"expires_at":{"N":"4102444800"}}"#;

/// Answers every request at once with one canned DynamoDB response.
#[derive(Debug, Clone)]
struct Canned {
    status: u16,
    body: String,
}

impl HttpConnector for Canned {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let mut resp = HttpResponse::new(
            self.status.try_into().unwrap(),
            SdkBody::from(self.body.clone()),
        );
        resp.headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        HttpConnectorFuture::ready(Ok(resp))
    }
}

impl HttpClient for Canned {
    fn http_connector(
        &self,
        _: &HttpConnectorSettings,
        _: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

pub fn app(status: u16, body: &str) -> Callbridge<DynamoStore> {
    app_with(status, body, |b| b)
}

/// The app on the client production builds (`config_from` a shared configuration, as
/// `client_from_env` does), with `vary` applied to that configuration last.
pub fn app_with(
    status: u16,
    body: &str,
    vary: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
) -> Callbridge<DynamoStore> {
    let shared = aws_types::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDEXAMPLE",
            "bench",
            None,
            None,
            "bench",
        )))
        .http_client(Canned {
            status,
            body: body.to_string(),
        })
        .build();
    let conf = vary(config_from(&shared).to_builder()).build();
    let client = aws_sdk_dynamodb::Client::from_conf(conf);
    Callbridge::new(config_with(&[]), DynamoStore::new(client, "calls"))
}

/// A change to the production client's configuration.
pub type Vary = fn(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder;

/// The SDK options priced by the bench (`sdk_options`) and by `examples/sdk_instructions.rs`:
/// production as it is, then each without one thing Callbridge keeps (retries, timeouts) or
/// with one SDK default turned off (account-based endpoints).
pub const SDK_VARIANTS: [(&str, Vary); 4] = [
    ("production", |b| b),
    ("no_retries", |b| {
        b.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
    }),
    ("no_timeouts", |b| {
        b.timeout_config(aws_sdk_dynamodb::config::timeout::TimeoutConfig::disabled())
    }),
    ("account_id_endpoints_disabled", |b| {
        b.account_id_endpoint_mode(aws_types::endpoint_config::AccountIdEndpointMode::Disabled)
    }),
];
