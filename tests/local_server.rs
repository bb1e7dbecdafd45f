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
        callbridge::jwt::HS256_HEADER_B64,
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

/// Reads one response from `stream`: its head, then the body its Content-Length announces.
async fn read_response(stream: &mut TcpStream) -> RawResponse {
    tokio::time::timeout(ANSWER_WITHIN, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await.expect("read the response");
            assert!(
                n > 0,
                "connection closed before a response head: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).expect("ASCII head");
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
        while buf.len() < head_end + len {
            let n = stream.read(&mut chunk).await.expect("read the body");
            assert!(n > 0, "connection closed inside the body");
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = &buf[head_end..head_end + len];
        if !body.is_empty() {
            r.body = serde_json::from_slice(body)
                .unwrap_or_else(|_| panic!("JSON body: {:?}", String::from_utf8_lossy(body)));
        }
        r
    })
    .await
    .expect("answered within 30 s")
}

/// Asserts the server closes `stream` (after its last answer), within the bound.
async fn assert_closed(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(ANSWER_WITHIN, stream.read_to_end(&mut rest)).await;
    match read {
        Ok(Ok(_)) => assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest)),
        // A reset after the answer is a close too.
        Ok(Err(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        Err(_) => panic!("connection still open after 30 s"),
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
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    stream
        .write_all(&stalled_request(&key, 100, r#"{"par"#))
        .await
        .unwrap();
    let r = read_response(&mut stream).await;
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("connection"), Some("close"));
    let msg = assert_stream_error(&r.body, 408, 23);
    assert!(msg.starts_with("GetCallToken"), "{msg}");
    assert_closed(&mut stream).await;
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
        let mut s = TcpStream::connect(&server.addr).await.unwrap();
        s.write_all(&stalled_request(&key, 64, "")).await.unwrap();
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
        let r = read_response(&mut s).await;
        assert_eq!(r.status, 408, "{r:?}");
        assert_stream_error(&r.body, 408, 23);
        assert_closed(&mut s).await;
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
        let mut s = TcpStream::connect(&server.addr).await.unwrap();
        s.write_all(&stalled_request(&key, 64, "")).await.unwrap();
        held.push(s);
    }
    // A third, complete request waits: the server does not take its connection yet.
    let mut third = TcpStream::connect(&server.addr).await.unwrap();
    third
        .write_all(
            b"POST /calls/standup HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{}",
        )
        .await
        .unwrap();
    let early = tokio::time::timeout(Duration::from_secs(1), read_response(&mut third)).await;
    assert!(early.is_err(), "answered beyond the limit: {early:?}");
    // One client gives up (its request is answered 400 into a closed socket); the third
    // connection takes its place and is answered (401: no api_key).
    drop(held.pop());
    let r = read_response(&mut third).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_stream_error(&r.body, 401, 2);
    drop(held);
    server.stop().await;
}
