//! Issue 3 budget: the DynamoDB adapter's per-request CPU stays within 20 us of the in-memory
//! store. The SDK runs its whole pipeline (serialisation, signing, retries, parsing) against an
//! HTTP client that answers instantly with canned DynamoDB responses, so the difference to
//! `hot_paths` is the adapter's own cost. Run: `cargo bench -p callbridge --bench dynamodb`.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use callbridge::Callbridge;
use callbridge::store::dynamodb::{DynamoStore, tune};
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
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "bench",
            None,
            None,
            "bench",
        ))
        .http_client(Canned {
            status,
            body: body.to_string(),
        });
    let client = aws_sdk_dynamodb::Client::from_conf(tune(conf).build());
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

criterion_group!(benches, bench);
criterion_main!(benches);
