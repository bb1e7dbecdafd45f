//! The local server end to end: real HTTP on a free loopback port, both endpoints, errors,
//! CORS, and the real binary's start-up banner and graceful shutdown.

use callbridge::Callbridge;
use callbridge::store::memory::MemoryStore;
use callbridge_local::{ServeOptions, local_lookup, serve_with, user_token};
use callbridge_tests::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

struct Server {
    base: String,
    /// `127.0.0.1:PORT`
    addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    app: Arc<Callbridge<MemoryStore>>,
}

async fn start() -> Server {
    start_with(ServeOptions::default()).await
}

async fn start_with(options: ServeOptions) -> Server {
    let (lookup, filled) = local_lookup(|_| None);
    assert!(
        filled.contains(&"STREAM_API_SECRET"),
        "sandbox with no environment"
    );
    let config = callbridge::Config::from_lookup(lookup).unwrap();
    let app = Arc::new(Callbridge::new(config, MemoryStore::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let base = format!("http://{addr}");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_with(listener, Arc::clone(&app), options, async {
        let _ = rx.await;
    }));
    Server {
        base,
        addr,
        stop: Some(tx),
        task,
        app,
    }
}

impl Server {
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn sandbox_token(app: &Callbridge<MemoryStore>, user: &str) -> String {
    user_token(user, app.config().api_secret.expose())
}

#[tokio::test]
async fn both_endpoints_over_real_http() {
    let logs = LogCapture::global();
    let server = start().await;
    let client = http_client();
    let key = server.app.config().api_key.clone();
    let alice = sandbox_token(&server.app, "alice");
    let auth = [
        ("authorization", alice.as_str()),
        ("stream-auth-type", "jwt"),
        ("content-type", "application/json"),
    ];

    let url = format!(
        "{}/channels/messaging/general/call?api_key={key}&user_id=alice&connection_id=x",
        server.base
    );
    let (status, headers, body) = send(
        &client,
        "POST",
        &url,
        &auth,
        r#"{"id":"call-messaging:General","type":"video"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(body["call"]["id"], "call-messaging:general");
    assert_eq!(
        body["agora_uid"],
        callbridge::providers::agora::agora_uid("alice")
    );
    let parsed =
        callbridge::providers::access_token2::parse(body["token"].as_str().unwrap()).unwrap();
    assert!(
        parsed.verify("11111111111111111111111111111111"),
        "sandbox certificate"
    );

    // Percent-encoded id, as stream-chat JS >= 8.39 sends it; no body, as Swift sends it.
    let bob = sandbox_token(&server.app, "bob");
    let url = format!(
        "{}/calls/CALL-messaging%3Ageneral?api_key={key}",
        server.base
    );
    let (status, _, body) = send(
        &client,
        "POST",
        &url,
        &[("authorization", &format!("Bearer {bob}"))],
        "",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["agora_uid"],
        callbridge::providers::agora::agora_uid("bob")
    );
    assert!(body.get("call").is_none());

    // Dev tokens work in the sandbox.
    let dev = format!(
        "{}.{}.devtoken",
        callbridge::hs256::HS256_HEADER_B64,
        "eyJ1c2VyX2lkIjoiZGV2In0"
    );
    let (status, _, body) = send(&client, "POST", &url, &[("authorization", &dev)], "{}").await;
    assert_eq!(status, 201, "{body}");

    // Errors keep the Stream shape over the wire.
    let (status, _, body) = send(
        &client,
        "POST",
        &format!("{}/calls/nope?api_key={key}", server.base),
        &auth,
        "{}",
    )
    .await;
    assert_eq!(status, 404);
    assert_stream_error(&body, 404, 16);
    let (status, _, body) = send(
        &client,
        "POST",
        &format!("{}/calls/nope", server.base),
        &auth,
        "{}",
    )
    .await;
    assert_eq!(status, 401);
    assert_stream_error(&body, 401, 2);
    let (status, _, body) = send(
        &client,
        "POST",
        &format!("{}/nowhere?api_key={key}", server.base),
        &auth,
        "{}",
    )
    .await;
    assert_eq!(status, 404);
    assert_stream_error(&body, 404, 16);
    let (status, headers, body) = send(
        &client,
        "GET",
        &format!("{}/calls/x?api_key={key}", server.base),
        &auth,
        "",
    )
    .await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
    assert_stream_error(&body, 405, 4);

    // A body over the limit is refused while it streams in.
    let big = vec![b'x'; 200_000];
    let url = format!(
        "{}/channels/messaging/general/call?api_key={key}",
        server.base
    );
    let (status, _, body) = send(&client, "POST", &url, &auth, big).await;
    assert_eq!(status, 413);
    assert_stream_error(&body, 413, 22);

    // CORS preflight for browser clients.
    let (status, headers, _) = send(
        &client,
        "OPTIONS",
        &url,
        &[("origin", "http://localhost:3000")],
        "",
    )
    .await;
    assert_eq!(status, 204);
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );

    // An empty call id is a bad id, and a path under /calls that is no route names Get Call
    // Token in its error.
    for (path, status, code) in [("/calls/", 400, 4), ("/calls/a/b", 404, 16)] {
        let url = format!("{}{path}?api_key={key}", server.base);
        let (got, _, body) = send(&client, "POST", &url, &auth, "{}").await;
        assert_eq!(got, status, "{path}: {body}");
        let msg = assert_stream_error(&body, status, code);
        assert!(msg.starts_with("GetCallToken"), "{path}: {msg}");
    }

    // Every request gets its log line, those answered before the handlers too.
    let text = logs.text();
    for line in [
        r#"method=POST route="/channels/{type}/{id}/call" status=413 code=22"#,
        r#"method=OPTIONS route="/channels/{type}/{id}/call" status=204 code=0"#,
        r#"method=POST route="(none)" status=404 code=16"#,
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }

    assert_eq!(server.app.store().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_creates_over_http_yield_one_call() {
    let server = start().await;
    let client = http_client();
    let key = server.app.config().api_key.clone();
    let url = format!("{}/channels/team/eng/call?api_key={key}", server.base);
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let (client, url) = (client.clone(), url.clone());
        let token = sandbox_token(&server.app, &format!("user-{i}"));
        let id: String = "Daily-Sync"
            .chars()
            .map(|c| {
                if i % 3 == 0 {
                    c.to_ascii_uppercase()
                } else if i % 3 == 1 {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            let body = json!({"id": id, "type": "video"}).to_string();
            send(&client, "POST", &url, &[("authorization", &token)], body).await
        }));
    }
    let mut calls: Vec<Value> = Vec::new();
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, 201, "{body}");
        calls.push(body["call"].clone());
    }
    assert!(calls.iter().all(|c| c == &calls[0]));
    assert_eq!(calls[0]["id"], "daily-sync");
    assert_eq!(server.app.store().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn the_binary_starts_in_the_sandbox_prints_curls_and_stops_on_ctrl_c() {
    let mut cmd = Command::new(workspace_binary("callbridge-local"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CALLBRIDGE_PORT", "0")
        .stdout(Stdio::null());
    let mut server = LocalBinary::start(cmd);
    let (base, banner) = (server.base.clone(), server.banner.clone());
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(banner.contains("SANDBOX"), "{banner}");
    assert!(banner.contains("curl -s -X POST"), "{banner}");
    // The two lines for the JavaScript kit (clients/js/test/banner.test.mjs runs them).
    let kit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../clients/js");
    let kit = kit.canonicalize().unwrap();
    assert!(
        banner.contains(&format!("\n  npm install stream-chat {}\n", kit.display())),
        "{banner}"
    );
    assert!(
        banner.contains(&format!(
            "require('callbridge-stream-chat');callbridge(new StreamChat('callbridge-sandbox-key','callbridge-sandbox-secret-not-for-production'),'{base}')"
        )),
        "{banner}"
    );
    // The printed Create Call command works as printed.
    let token = banner
        .split("-H 'Authorization: ")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    let client = http_client();
    let url = format!("{base}/channels/messaging/general/call?api_key=callbridge-sandbox-key");
    let (status, _, body) = send(
        &client,
        "POST",
        &url,
        &[("authorization", &token)],
        r#"{"id":"standup","type":"video"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let status = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let lines = server.lines.take().unwrap();
    let drain =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    let exit = wait_with_timeout(&mut server.child, Duration::from_secs(15));
    assert_eq!(exit, Some(0), "graceful exit on Ctrl-C");
    let rest = drain.join().unwrap();
    assert!(rest.contains("shutting down"), "{rest}");
    assert!(rest.contains("status=201"), "request log line: {rest}");
}

#[test]
fn the_binary_refuses_bad_settings_naming_the_variable() {
    let out = Command::new(workspace_binary("callbridge-local"))
        .env_clear()
        .env("STREAM_API_KEY", "k")
        .env("STREAM_API_SECRET", "s")
        .env("AGORA_APP_ID", "not-hex")
        .env("AGORA_APP_CERTIFICATE", "also-not-hex-and-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AGORA_APP_ID"), "{err}");
    assert!(!err.contains("also-not-hex-and-secret"));
}

fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn create_table_refuses_names_dynamodb_would_refuse() {
    for bad in ["t1", "a/b", "my table", &"x".repeat(256)] {
        let out = Command::new(workspace_binary("callbridge-local"))
            .arg("create-table")
            .env_clear()
            .env("CALLBRIDGE_TABLE_NAME", bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("CALLBRIDGE_TABLE_NAME"), "{err}");
        assert!(err.contains("3 to 255 characters"), "{err}");
    }
}

/// Without trust roots the 100ms client could never connect: the server does not start.
#[test]
fn no_trust_roots_for_100ms_stops_the_start() {
    let empty = std::env::temp_dir().join(format!("callbridge-no-ca-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(workspace_binary("callbridge-local"))
        .env_clear()
        .env("CALLBRIDGE_PORT", "0")
        .env("STREAM_API_KEY", "k")
        .env("STREAM_API_SECRET", "s")
        .env("CALLBRIDGE_PROVIDER", "hms")
        .env("HMS_APP_ACCESS_KEY", "6470b7a5e3f47d5e9a1c0f11")
        .env("HMS_APP_SECRET", "hms-secret-value-not-to-print")
        .env("HMS_TEMPLATE_ID", "t")
        .env("HMS_DEFAULT_ROLE", "guest")
        .env("SSL_CERT_FILE", empty.join("none.pem"))
        .env("SSL_CERT_DIR", &empty)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&empty).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no trusted CA certificates"), "{err}");
    assert!(!err.contains("hms-secret-value-not-to-print"));
}

// ---------------------------------------------------------------------------------------------
// Abuse over raw sockets: bodies that never come, requests hyper itself refuses.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound for every raw exchange: a server that never answers fails the test instead
/// of hanging it.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// One response as read off a raw connection.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    /// Status line and headers, as sent.
    head: String,
    /// The body parsed as JSON (Null when empty).
    body: Value,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A raw client connection; keeps what it read past one response for the next.
struct Raw {
    stream: TcpStream,
    pending: Vec<u8>,
}

impl Raw {
    async fn connect(addr: &str) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            pending: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads one response: its head, then the body its Content-Length announces.
    async fn response(&mut self) -> RawResponse {
        tokio::time::timeout(ANSWER_WITHIN, self.read_response())
            .await
            .expect("answered within 30 s")
    }

    /// Appends what the next read brings; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .expect("read the response");
        self.pending.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn read_response(&mut self) -> RawResponse {
        let head_end = loop {
            if let Some(i) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let more = self.fill().await;
            assert!(
                more,
                "connection closed before a response head: {:?}",
                String::from_utf8_lossy(&self.pending)
            );
        };
        let head = String::from_utf8(self.pending[..head_end].to_vec()).expect("ASCII head");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("status line of {head:?}"));
        let mut r = RawResponse {
            status,
            head,
            body: Value::Null,
        };
        let len: usize = r
            .header("content-length")
            .map(|v| v.parse().expect("numeric content-length"))
            .unwrap_or(0);
        while self.pending.len() < head_end + len {
            assert!(self.fill().await, "connection closed inside the body");
        }
        let rest = self.pending.split_off(head_end + len);
        let body = &self.pending[head_end..];
        if !body.is_empty() {
            r.body = serde_json::from_slice(body)
                .unwrap_or_else(|_| panic!("JSON body: {:?}", String::from_utf8_lossy(body)));
        }
        self.pending = rest;
        r
    }

    /// Asserts the server closes the connection (after its last answer), within the bound.
    async fn assert_closed(&mut self) {
        let mut rest = std::mem::take(&mut self.pending);
        let read = tokio::time::timeout(ANSWER_WITHIN, self.stream.read_to_end(&mut rest)).await;
        match read {
            Ok(Ok(_)) => assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest)),
            // A reset after the answer is a close too.
            Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
            Err(_) => panic!("connection still open after 30 s"),
        }
    }
}

/// Headers of a Get Call Token request announcing a body of `len` bytes, and `sent` of it.
fn stalled_request(key: &str, len: usize, sent: &str) -> Vec<u8> {
    format!(
        "POST /calls/standup?api_key={key} HTTP/1.1\r\nhost: localhost\r\n\
         content-type: application/json\r\ncontent-length: {len}\r\n\r\n{sent}"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_body_that_never_arrives_is_answered_408_in_streams_shape() {
    let server = start_with(ServeOptions {
        body_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    })
    .await;
    let key = server.app.config().api_key.clone();
    let mut stream = Raw::connect(&server.addr).await;
    stream.send(&stalled_request(&key, 100, r#"{"par"#)).await;
    let r = stream.response().await;
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("connection"), Some("close"));
    let msg = assert_stream_error(&r.body, 408, 23);
    assert!(msg.starts_with("GetCallToken"), "{msg}");
    stream.assert_closed().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_do_not_starve_normal_requests() {
    let server = start_with(ServeOptions {
        body_timeout: Duration::from_secs(1),
        ..ServeOptions::default()
    })
    .await;
    let key = server.app.config().api_key.clone();
    // 150 connections that send their headers and then nothing (the issue's attack: with a
    // 128-file limit they used to hold every descriptor for good).
    let mut stalled = Vec::new();
    for _ in 0..150 {
        let mut s = Raw::connect(&server.addr).await;
        s.send(&stalled_request(&key, 64, "")).await;
        stalled.push(s);
    }
    // Normal requests are answered meanwhile.
    let client = http_client();
    let token = sandbox_token(&server.app, "alice");
    let url = format!(
        "{}/channels/messaging/general/call?api_key={key}",
        server.base
    );
    for i in 0..5 {
        let body = json!({"id": format!("call-{i}"), "type": "video"}).to_string();
        let (status, _, body) = tokio::time::timeout(
            ANSWER_WITHIN,
            send(&client, "POST", &url, &[("authorization", &token)], body),
        )
        .await
        .expect("a normal request answered within 30 s");
        assert_eq!(status, 201, "{body}");
    }
    // And every stalled one gets its 408 and is closed.
    for mut s in stalled {
        let r = s.response().await;
        assert_eq!(r.status, 408, "{r:?}");
        assert_stream_error(&r.body, 408, 23);
        s.assert_closed().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_in_the_backlog() {
    let server = start_with(ServeOptions {
        max_connections: 2,
        body_timeout: Duration::from_secs(120),
        ..ServeOptions::default()
    })
    .await;
    let key = server.app.config().api_key.clone();
    // Two stalled connections hold both places (connected in order, so accepted first).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = Raw::connect(&server.addr).await;
        s.send(&stalled_request(&key, 64, "")).await;
        held.push(s);
    }
    // A third, complete request waits: the server does not take its connection yet.
    let mut third = Raw::connect(&server.addr).await;
    third
        .send(b"POST /calls/standup HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{}")
        .await;
    let early = tokio::time::timeout(Duration::from_secs(1), third.response()).await;
    assert!(early.is_err(), "answered beyond the limit: {early:?}");
    // One client gives up (its request is answered 400 into a closed socket); the third
    // connection takes its place and is answered (401: no api_key).
    drop(held.pop());
    let r = third.response().await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_stream_error(&r.body, 401, 2);
    drop(held);
    server.stop().await;
}

/// Opens `n` connections to `addr` at once; how many completed their handshake within `limit`.
/// The streams are returned so that they stay open.
async fn burst(addr: &str, n: usize, limit: Duration) -> Vec<tokio::net::TcpStream> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let addr = addr.to_string();
        tasks.spawn(async move { tokio::time::timeout(limit, TcpStream::connect(addr)).await });
    }
    let mut connected = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(Ok(stream)) = r.unwrap() {
            connected.push(stream);
        }
    }
    connected
}

/// The listener holds a burst of 1,000 clients that nobody accepts yet: each handshake
/// completes. With tokio's `TcpListener::bind` (backlog 128) only 129 did; the kernel dropped
/// the other SYNs for as long as nothing was accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listen_backlog_holds_a_burst_of_a_thousand_clients() {
    let listener = callbridge_local::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let connected = burst(&addr, 1000, Duration::from_secs(8)).await;
    assert_eq!(connected.len(), 1000, "clients connected, none accepted");
    drop(listener);
}

/// The binary under a burst of 1,000 clients that send nothing: it serves 256 and the backlog
/// holds the rest, so every client is connected before the first place frees up (the 10 s
/// header timeout). With a backlog of 128, 615 of them were still retransmitting their SYN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_holds_a_burst_of_a_thousand_clients() {
    let mut cmd = Command::new(workspace_binary("callbridge-local"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CALLBRIDGE_PORT", "0")
        .stdout(Stdio::null());
    let server = LocalBinary::start(cmd);
    let addr = server.base.trim_start_matches("http://").to_string();
    let connected = burst(&addr, 1000, Duration::from_secs(8)).await;
    assert_eq!(connected.len(), 1000, "clients connected within 8 s");
    drop(connected);
    drop(server);
}

/// Sends `request` on a connection of its own and reads the one answer.
async fn raw_exchange(addr: &str, request: &[u8]) -> (RawResponse, Raw) {
    let mut stream = Raw::connect(addr).await;
    stream.send(request).await;
    (stream.response().await, stream)
}

#[tokio::test]
async fn requests_hyper_refuses_are_answered_in_streams_shape() {
    let logs = LogCapture::global();
    let server = start().await;
    let long_uri = format!(
        "POST /calls/{} HTTP/1.1\r\nhost: localhost\r\n\r\n",
        "x".repeat(70_000)
    );
    let many_headers = format!(
        "POST /calls/standup HTTP/1.1\r\nhost: localhost\r\n{}\r\n",
        (0..120)
            .map(|i| format!("x-h{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: &[(&str, &[u8], u16, i64)] = &[
        ("no request line", b"GARBAGE\r\n\r\n", 400, 4),
        (
            "bad method",
            b"P(ST /calls/x HTTP/1.1\r\nhost: localhost\r\n\r\n",
            400,
            4,
        ),
        (
            "bad version",
            b"POST /calls/x HTTP/7.1\r\nhost: localhost\r\n\r\n",
            400,
            4,
        ),
        (
            "bad header name",
            b"POST /calls/x HTTP/1.1\r\nbad header: x\r\n\r\n",
            400,
            4,
        ),
        (
            "bad content-length",
            b"POST /calls/x HTTP/1.1\r\ncontent-length: 1x\r\n\r\n{}",
            400,
            4,
        ),
        (
            "two content-lengths",
            b"POST /calls/x HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}",
            400,
            4,
        ),
        (
            "transfer-encoding not ending in chunked",
            b"POST /calls/x HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n{}",
            400,
            4,
        ),
        (
            "transfer-encoding in HTTP/1.0",
            b"POST /calls/x HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            4,
        ),
        ("URI over 65534 bytes", long_uri.as_bytes(), 414, 4),
        ("more than 100 headers", many_headers.as_bytes(), 431, 24),
    ];
    for (what, request, status, code) in cases {
        let (r, mut stream) = raw_exchange(&server.addr, request).await;
        assert_eq!(r.status, *status, "{what}: {r:?}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
        assert_eq!(r.header("connection"), Some("close"), "{what}");
        assert_stream_error(&r.body, *status, *code);
        stream.assert_closed().await;
    }

    // After a good request on the same connection (pipelined: both answers may leave in one
    // write), the good answer stays whole and the bad request gets the Stream shape.
    let (first, mut stream) = raw_exchange(
        &server.addr,
        b"POST /calls/standup HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{}GARBAGE\r\n\r\n",
    )
    .await;
    assert_eq!(first.status, 401, "{first:?}");
    assert_stream_error(&first.body, 401, 2);
    let second = stream.response().await;
    assert_eq!(second.status, 400, "{second:?}");
    assert_stream_error(&second.body, 400, 4);
    stream.assert_closed().await;

    // hyper gives no answer to an HTTP/2 preface (it is not served here); the connection is
    // closed, not held.
    let mut stream = Raw::connect(&server.addr).await;
    stream.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    stream.assert_closed().await;

    // And the server still serves.
    let (r, _) = raw_exchange(
        &server.addr,
        b"POST /calls/standup HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");
    // Logged like every answer, without the method and path hyper could not read.
    let text = logs.text();
    for line in [
        r#"method=- route="(none)" status=414 code=4"#,
        r#"method=- route="(none)" status=431 code=24"#,
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    server.stop().await;
}

#[tokio::test]
async fn encodings_the_server_cannot_decode_are_refused_before_the_handler() {
    let server = start().await;
    let key = server.app.config().api_key.clone();
    let token = sandbox_token(&server.app, "alice");
    let body = r#"{"id":"standup","type":"video"}"#;
    let request = |framing: &str| {
        let mut r = format!(
            "POST /channels/messaging/general/call?api_key={key} HTTP/1.1\r\nhost: localhost\r\n\
             authorization: {token}\r\ncontent-type: application/json\r\n{framing}\r\n"
        );
        if framing.contains("chunked") || framing.contains("Chunked") {
            r.push_str(&format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()));
        } else {
            r.push_str(body);
        }
        r
    };
    let cl = format!("content-length: {}\r\n", body.len());
    let refused = [
        (
            "transfer-encoding: gzip, chunked\r\n".to_string(),
            "Transfer-Encoding",
        ),
        (
            "transfer-encoding: chunked, chunked\r\n".to_string(),
            "Transfer-Encoding",
        ),
        (
            "transfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n".to_string(),
            "Transfer-Encoding",
        ),
        (
            format!("content-encoding: gzip\r\n{cl}"),
            "Content-Encoding",
        ),
        (
            format!("content-encoding: identity, br\r\n{cl}"),
            "Content-Encoding",
        ),
    ];
    for (framing, named) in &refused {
        let (r, mut stream) = raw_exchange(&server.addr, request(framing).as_bytes()).await;
        assert_eq!(r.status, 400, "{framing:?}: {r:?}");
        assert_eq!(r.header("connection"), Some("close"), "{framing:?}");
        let msg = assert_stream_error(&r.body, 400, 4);
        assert!(
            msg.starts_with("CreateCall") && msg.contains(named),
            "{msg}"
        );
        stream.assert_closed().await;
    }
    assert_eq!(server.app.store().len(), 0, "refused before the handler");
    for framing in [
        "transfer-encoding: chunked\r\n".to_string(),
        "Transfer-Encoding: Chunked\r\n".to_string(),
        format!("content-encoding: identity\r\n{cl}"),
        cl.clone(),
    ] {
        let (r, _) = raw_exchange(&server.addr, request(&framing).as_bytes()).await;
        assert_eq!(r.status, 201, "{framing:?}: {r:?}");
    }
    server.stop().await;
}
