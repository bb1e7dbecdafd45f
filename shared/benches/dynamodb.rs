//! Issue 3 budget: the DynamoDB adapter's per-request CPU stays within 20 us of the in-memory
//! store. The SDK runs its whole pipeline (serialisation, signing, retries, parsing) against an
//! HTTP client that answers instantly with canned DynamoDB responses, so the difference to
//! `hot_paths` is the adapter's own cost. Run: `cargo bench -p callbridge --bench dynamodb`.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use callbridge::Callbridge;
use callbridge::store::dynamodb::{DynamoStore, config_from};
mod common;

use common::{config_with, create_request, headers, token_request};
use criterion::{Criterion, criterion_group, criterion_main};

const ITEM: &str = r#"{"pk":{"S":"call-messaging:general"},"cid":{"S":"messaging:general"},"call_type":{"S":"video"},"provider":{"S":"agora"},"agora_channel":{"S":"call-messaging:general"},"created_by":{"S":"alice"},"created_at":{"N":"1800000000"},"expires_at":{"N":"4102444800"}}"#;

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

fn app(status: u16, body: &str) -> Callbridge<DynamoStore> {
    app_with(status, body, |b| b)
}

/// The app on the client production builds (`config_from` a shared configuration, as
/// `client_from_env` does), with `vary` applied to that configuration last.
fn app_with(
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

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let headers = headers();
    let create = create_request(&headers);
    let token_req = token_request(
        &headers,
        "/calls/call-messaging%3Ageneral",
        "call-messaging%3Ageneral",
    );

    let new = app(200, "{}");
    c.bench_function("dynamodb_create_call_new", |b| {
        b.to_async(&rt)
            .iter(|| async { assert_eq!(new.handle(create).await.status(), 201) })
    });
    let existing = app(
        400,
        &format!(
            r#"{{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed","Item":{ITEM}}}"#
        ),
    );
    c.bench_function("dynamodb_create_call_existing", |b| {
        b.to_async(&rt)
            .iter(|| async { assert_eq!(existing.handle(create).await.status(), 201) })
    });
    let get = app(200, &format!(r#"{{"Item":{ITEM}}}"#));
    c.bench_function("dynamodb_get_call_token", |b| {
        b.to_async(&rt)
            .iter(|| async { assert_eq!(get.handle(token_req).await.status(), 201) })
    });
}

/// What the SDK's own options cost per Get Call Token, against the production configuration:
/// each variant drops one thing Callbridge keeps (retries, timeouts) or restores the SDK's
/// default Callbridge turned off (account-based endpoints, "preferred"), so the difference
/// prices it. Issue 11's storage-path profile cites these.
fn sdk_options(c: &mut Criterion) {
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
    use aws_types::endpoint_config::AccountIdEndpointMode;
    type Vary = fn(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let headers = headers();
    let token_req = token_request(
        &headers,
        "/calls/call-messaging%3Ageneral",
        "call-messaging%3Ageneral",
    );
    let body = format!(r#"{{"Item":{ITEM}}}"#);
    let variants: [(&str, Vary); 4] = [
        ("production", |b| b),
        ("no_retries", |b| b.retry_config(RetryConfig::disabled())),
        ("no_timeouts", |b| {
            b.timeout_config(TimeoutConfig::disabled())
        }),
        ("account_id_endpoints_preferred", |b| {
            b.account_id_endpoint_mode(AccountIdEndpointMode::Preferred)
        }),
    ];
    let mut group = c.benchmark_group("dynamodb_get_call_token_sdk");
    for (name, vary) in variants {
        let app = app_with(200, &body, vary);
        group.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| async { assert_eq!(app.handle(token_req).await.status(), 201) })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, sdk_options);
criterion_main!(benches);
