//! A Lambda Runtime API on a loopback port, for running the real function binaries: it serves
//! `/2018-06-01/runtime/invocation/next` (long poll), takes `.../{id}/response`,
//! `.../{id}/error` and `/runtime/init/error`, as the Lambda service does.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// What the function posted back.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response(Value),
    Error(Value),
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, String)>,
    outcomes: HashMap<String, Outcome>,
    init_error: Option<(Option<String>, Value)>,
    next_id: u64,
    /// When the function first asked for an event: the end of its initialisation.
    first_poll: Option<std::time::Instant>,
}

#[derive(Clone)]
pub struct RuntimeApi {
    state: Arc<Mutex<State>>,
    event_ready: Arc<Notify>,
    outcome_ready: Arc<Notify>,
    pub addr: std::net::SocketAddr,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let event_ready = Arc::new(Notify::new());
        let outcome_ready = Arc::new(Notify::new());
        let (s, e, o) = (
            Arc::clone(&state),
            Arc::clone(&event_ready),
            Arc::clone(&outcome_ready),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (s, e, o) = (Arc::clone(&s), Arc::clone(&e), Arc::clone(&o));
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (s, e, o) = (Arc::clone(&s), Arc::clone(&e), Arc::clone(&o));
                        async move { Ok::<_, std::convert::Infallible>(serve(req, s, e, o).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        RuntimeApi {
            state,
            event_ready,
            outcome_ready,
            addr,
            task: Arc::new(task),
        }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event; returns its request id.
    pub fn push(&self, event: &str) -> String {
        let mut st = self.state.lock().unwrap();
        st.next_id += 1;
        let id = format!("req-{:04}", st.next_id);
        st.queue.push_back((id.clone(), event.to_string()));
        drop(st);
        self.event_ready.notify_waiters();
        self.event_ready.notify_one();
        id
    }

    /// Waits for the function's answer to `id`.
    pub async fn outcome(&self, id: &str, limit: Duration) -> Option<Outcome> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.outcome_ready.notified();
            if let Some(o) = self.state.lock().unwrap().outcomes.get(id).cloned() {
                return Some(o);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Sends an event and waits for the answer.
    pub async fn invoke(&self, event: &str) -> Outcome {
        let id = self.push(event);
        self.outcome(&id, Duration::from_secs(20))
            .await
            .expect("the function answered")
    }

    /// When the function first asked for an event (`GET .../invocation/next`): the end of
    /// its initialisation, as Lambda bills and reports it (`Init Duration`).
    pub async fn first_poll(&self, limit: Duration) -> Option<std::time::Instant> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.outcome_ready.notified();
            if let Some(t) = self.state.lock().unwrap().first_poll {
                return Some(t);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// The init error the function reported: (error type header, body).
    pub async fn init_error(&self, limit: Duration) -> Option<(Option<String>, Value)> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.outcome_ready.notified();
            if let Some(e) = self.state.lock().unwrap().init_error.clone() {
                return Some(e);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r
}

async fn serve(
    req: hyper::Request<Incoming>,
    state: Arc<Mutex<State>>,
    event_ready: Arc<Notify>,
    outcome_ready: Arc<Notify>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json = || serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        (Method::GET, ["2018-06-01", "runtime", "invocation", "next"]) => loop {
            {
                let mut st = state.lock().unwrap();
                if st.first_poll.is_none() {
                    st.first_poll = Some(std::time::Instant::now());
                    outcome_ready.notify_waiters();
                }
            }
            let notified = event_ready.notified();
            if let Some((id, event)) = state.lock().unwrap().queue.pop_front() {
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    + 30_000;
                let mut r = reply(StatusCode::OK, &event);
                let h = r.headers_mut();
                h.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
                h.insert(
                    "lambda-runtime-deadline-ms",
                    deadline.to_string().parse().unwrap(),
                );
                h.insert(
                    "lambda-runtime-invoked-function-arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:callbridge"
                        .parse()
                        .unwrap(),
                );
                h.insert(
                    "lambda-runtime-trace-id",
                    "Root=1-5e1b4151-5ac6c58f3375aa3c7c6b73c9".parse().unwrap(),
                );
                h.insert("content-type", "application/json".parse().unwrap());
                return r;
            }
            notified.await;
        },
        (
            Method::POST,
            [
                "2018-06-01",
                "runtime",
                "invocation",
                id,
                kind @ ("response" | "error"),
            ],
        ) => {
            let outcome = if *kind == "response" {
                Outcome::Response(json())
            } else {
                Outcome::Error(json())
            };
            state
                .lock()
                .unwrap()
                .outcomes
                .insert(id.to_string(), outcome);
            outcome_ready.notify_waiters();
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        (Method::POST, ["2018-06-01", "runtime", "init", "error"]) => {
            state.lock().unwrap().init_error = Some((error_type, json()));
            outcome_ready.notify_waiters();
            reply(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
        }
        _ => reply(StatusCode::NOT_FOUND, r#"{"errorMessage":"unknown path"}"#),
    }
}
