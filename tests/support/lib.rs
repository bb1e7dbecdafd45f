//! Shared harness for the integration tests: fixture credentials and events, HTTP helpers,
//! a log capture, and (for DynamoDB) the moto server the test command starts.

pub mod runtime_api;

use callbridge::Config;
pub use callbridge_lambda::HttpEvent;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Credentials the fixtures in `tests/events` are signed with (see `generate.py`).
pub const API_KEY: &str = "callbridge-fixture-key";
pub const API_SECRET: &str = "callbridge-fixture-secret";
/// Agora's published test app id and certificate (AgoraIO/Tools test vectors).
pub const AGORA_APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
pub const AGORA_CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";

/// The fixture configuration as environment variables (Agora; guests may do nothing; no
/// membership check: the membership tests point it at their Stream Chat mock).
pub const FIXTURE_ENV: &[(&str, &str)] = &[
    ("CALLBRIDGE_MEMBERSHIP", "off"),
    ("STREAM_API_KEY", API_KEY),
    ("STREAM_API_SECRET", API_SECRET),
    ("AGORA_APP_ID", AGORA_APP_ID),
    ("AGORA_APP_CERTIFICATE", AGORA_CERT),
    (
        "CALLBRIDGE_GRANTS",
        "user:create-call,join-call;admin:create-call,join-call,end-call;guest:",
    ),
];

/// The fixture configuration plus `extra` settings (which win).
pub fn config_with(extra: &[(&str, &str)]) -> Config {
    let vars: Vec<(&str, &str)> = extra.iter().chain(FIXTURE_ENV).copied().collect();
    Config::from_pairs(&vars).expect("test configuration")
}

pub fn config() -> Config {
    config_with(&[])
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// The text of `tests/events/<name>.json`.
pub fn fixture(name: &str) -> String {
    let path = events_dir().join(format!("{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A fixture parsed as the functions read it ([`callbridge_lambda::parse_event`]).
pub fn event(name: &str) -> HttpEvent {
    event_edited(name, |_| {})
}

/// A fixture with `edit` applied to its JSON before parsing.
pub fn event_edited(name: &str, edit: impl FnOnce(&mut Value)) -> HttpEvent {
    let mut v: Value = serde_json::from_str(&fixture(name)).unwrap();
    edit(&mut v);
    callbridge_lambda::parse_event(v).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A Stream user token signed with the fixture secret.
pub fn user_token(claims: Value) -> String {
    callbridge::hs256::sign_hs256(&claims, API_SECRET.as_bytes())
}

/// Asserts `authorization` is what Stream's server SDKs send: a bare (no `Bearer`) HS256
/// server token, `{"server": true}`, signed with the fixture API secret.
pub fn assert_server_token(authorization: &str) {
    assert!(!authorization.starts_with("Bearer"), "{authorization}");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(
        authorization,
        &jsonwebtoken::DecodingKey::from_secret(API_SECRET.as_bytes()).unwrap(),
        &v,
    )
    .expect("a server token signed with the API secret")
    .claims;
    assert_eq!(claims, serde_json::json!({"server": true}));
}

/// The fields of a call object that Stream's own call model had (`id`, `provider`, `type`,
/// `agora`, `hms`), without Callbridge's own.
pub fn stream_fields(call: &Value) -> Value {
    let keep = ["id", "provider", "type", "agora", "hms"];
    Value::Object(
        call.as_object()
            .expect("a call object")
            .iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// Asserts `body` is a Stream error with this status and code, and returns its message.
pub fn assert_stream_error(body: &Value, status: u16, code: i64) -> String {
    assert_eq!(body["code"], code, "code in {body}");
    assert_eq!(body["StatusCode"], status, "StatusCode in {body}");
    let message = body["message"].as_str().expect("message").to_string();
    assert!(
        message.starts_with("CreateCall failed with error: \"")
            || message.starts_with("GetCallToken failed with error: \"")
            || message.starts_with("EndCall failed with error: \"")
            || message.starts_with("ProviderEvent failed with error: \""),
        "message style: {message}"
    );
    assert!(body["duration"].as_str().unwrap().ends_with("ms"), "{body}");
    assert_eq!(
        body["more_info"],
        "https://getstream.io/chat/docs/api_errors_response"
    );
    assert_eq!(body["details"], serde_json::json!([]));
    message
}

/// Checks a successful Agora answer: a 007 token for this user that verifies with the fixture
/// certificate, in the call's channel. Returns the parsed token.
pub fn assert_agora_token(
    body: &Value,
    user_id: &str,
    channel: &str,
) -> callbridge::providers::access_token2::ParsedToken {
    use callbridge::providers::access_token2::{self as at2, Service};
    let uid = callbridge::providers::agora::agora_uid(user_id);
    assert_eq!(body["agora_uid"], uid, "{body}");
    assert_eq!(body["agora_app_id"], AGORA_APP_ID);
    assert!(body["duration"].as_str().unwrap().ends_with("ms"));
    let token = at2::parse(body["token"].as_str().unwrap()).expect("a 007 token");
    assert!(token.verify(AGORA_CERT), "signature");
    assert_eq!(token.content.app_id, AGORA_APP_ID);
    match &token.content.services[..] {
        [
            Service::Rtc {
                channel: c,
                account,
                ..
            },
        ] => {
            assert_eq!(c, channel);
            assert_eq!(account, &uid.to_string());
        }
        other => panic!("services {other:?}"),
    }
    token
}

/// Collects everything logged through `tracing` in this test process. Installed as the global
/// subscriber (thread-local subscribers miss events whose callsite interest was cached by a
/// parallel test), so it holds the logs of every test in the binary.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// The process-wide capture, installed on first use.
    pub fn global() -> LogCapture {
        static CAPTURE: std::sync::OnceLock<LogCapture> = std::sync::OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let capture = LogCapture::default();
                let writer = capture.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_max_level(tracing::Level::TRACE)
                    .with_ansi(false)
                    .with_writer(move || writer.clone())
                    .finish();
                tracing::subscriber::set_global_default(subscriber)
                    .expect("no other global subscriber in tests");
                capture
            })
            .clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A plain HTTP/1 client for loopback servers.
pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

pub fn http_client() -> HttpClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// Sends one request; returns status, headers and the body parsed as JSON (Null when empty).
pub async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<bytes::Bytes>,
) -> (u16, http::HeaderMap, Value) {
    use http_body_util::BodyExt;
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(http_body_util::Full::new(body.into())).unwrap();
    let resp = client
        .request(req)
        .await
        .expect("request reaches the server");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("JSON body: {bytes:?}"))
    };
    (status, headers, body)
}

/// Path of a workspace binary built by `cargo build --bins` (the test command does it).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --bins`; `make test` does)",
        path.display()
    );
    path
}

// ---------------------------------------------------------------------------------------------
// DynamoDB (moto)

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The moto server `make test` started. Tests that need it fail with a clear message when run
/// outside `make test`.
pub fn dynamodb_endpoint() -> String {
    std::env::var("CALLBRIDGE_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!("CALLBRIDGE_TEST_DYNAMODB_ENDPOINT is not set: DynamoDB tests run against moto; use `make test`")
    })
}

/// A table name no other test uses.
pub fn unique_table(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// Counts the HTTP requests a DynamoDB client sends (every attempt), by operation.
#[derive(Clone, Debug, Default)]
pub struct RequestLog(Arc<Mutex<Vec<String>>>);

impl RequestLog {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for RequestLog {
    fn name(&self) -> &'static str {
        "RequestLog"
    }
    fn read_before_transmit(
        &self,
        ctx: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let target = ctx
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("?")
            .trim_start_matches("DynamoDB_20120810.")
            .to_string();
        self.0.lock().unwrap().push(target);
        Ok(())
    }
}

/// A DynamoDB client for `endpoint` with Callbridge's timeouts and retries and a request log.
pub fn dynamo_client(endpoint: &str) -> (aws_sdk_dynamodb::Client, RequestLog) {
    let log = RequestLog::default();
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint);
    let conf = callbridge::store::dynamodb::tune(conf)
        .interceptor(log.clone())
        .build();
    (aws_sdk_dynamodb::Client::from_conf(conf), log)
}

/// A DynamoStore on a fresh table of the shared moto server.
pub async fn fresh_dynamo_store() -> (
    callbridge::store::dynamodb::DynamoStore,
    aws_sdk_dynamodb::Client,
    RequestLog,
) {
    let (client, log) = dynamo_client(&dynamodb_endpoint());
    let store =
        callbridge::store::dynamodb::DynamoStore::new(client.clone(), unique_table("calls"));
    store.create_table().await.expect("create table on moto");
    log.take();
    (store, client, log)
}

/// A moto server of the test's own (for stopping and restarting it), on a free loopback port.
pub struct OwnMoto {
    child: Option<std::process::Child>,
    pub port: u16,
}

impl OwnMoto {
    pub fn start() -> OwnMoto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut m = OwnMoto { child: None, port };
        m.restart();
        m
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and waits until it answers.
    pub fn restart(&mut self) {
        let bin = std::env::var("CALLBRIDGE_TEST_MOTO_SERVER")
            .unwrap_or_else(|_| panic!("CALLBRIDGE_TEST_MOTO_SERVER is not set; use `make test`"));
        let child = std::process::Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto_server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the server: requests sent while it is frozen
    /// stay in its socket and are served when it thaws.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("moto is running").id();
        let ok = std::process::Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {signal} {pid}");
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // Thaw a server a failed test left frozen, so that it can be stopped.
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.stop();
    }
}

/// Runs one request through the Lambda adapter, as a function would; returns the status and the
/// JSON body (every answer is JSON).
pub async fn invoke<S: callbridge::store::Storage>(
    app: &callbridge::Callbridge<S>,
    op: callbridge::Operation,
    req: HttpEvent,
) -> (u16, Value) {
    let resp = callbridge_lambda::handle(app, op, &req).await;
    let status = resp.status().as_u16();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = serde_json::from_slice(resp.body().as_ref()).expect("JSON body");
    (status, body)
}

/// The local server binary, started with `cmd` (whose stderr this takes), after its banner.
pub struct LocalBinary {
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub banner: String,
    /// The rest of its stderr.
    pub lines: Option<std::io::Lines<std::io::BufReader<std::process::ChildStderr>>>,
}

impl LocalBinary {
    pub fn start(mut cmd: std::process::Command) -> LocalBinary {
        use std::io::BufRead;
        let mut child = cmd
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start callbridge-local");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut base, mut banner) = (None, String::new());
        for line in lines.by_ref() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if let Some(rest) = line.split("listening on ").nth(1) {
                base = Some(rest.trim().to_string());
            }
            if line.contains("store:") {
                break;
            }
        }
        let base = base.unwrap_or_else(|| panic!("no listening line in {banner}"));
        LocalBinary {
            child,
            base,
            banner,
            lines: Some(lines),
        }
    }
}

impl Drop for LocalBinary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
