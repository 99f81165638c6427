//! A loopback HTTP server that plays scripted replies in a provider's wire
//! format and records what the client sent, for the provider tests.
//!
//! Each request takes the next [`Reply`] of the script: a server-sent event
//! stream cut into the given pieces (sent one by one, a moment apart, so
//! the client reads them as separate pieces), a stream that stalls after
//! its pieces, or an error status with headers and a body. The server
//! counts requests in flight (a response body is in flight until the
//! client drops it), so tests can see a bound on concurrency and a
//! cancelled call closing its connection.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use futures::StreamExt;
use serde_json::Value;

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// `200 text/event-stream`, sent in these pieces.
    Stream(Vec<Vec<u8>>),
    /// `200 text/event-stream`: these pieces, then silence until the client
    /// gives up.
    Stall(Vec<Vec<u8>>),
    /// An error status with headers and a body.
    Status {
        /// The HTTP status.
        status: u16,
        /// Extra headers, such as `retry-after`.
        headers: Vec<(&'static str, String)>,
        /// The body, usually the provider's JSON error.
        body: String,
    },
}

impl Reply {
    /// A whole stream in one piece.
    pub fn stream(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::Stream(vec![bytes.into()])
    }

    /// An error status with a JSON body.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Status {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
        }
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: Method,
    /// The path and query.
    pub path: String,
    /// Every header.
    pub headers: HeaderMap,
    /// The body, parsed as JSON.
    pub body: Value,
}

impl Recorded {
    /// A header's value, `""` when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }
}

#[derive(Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Recorded>>,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    closed: AtomicUsize,
}

/// The server; it stops when dropped.
pub struct WireServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl WireServer {
    /// Starts a server on 127.0.0.1 with an empty script.
    pub async fn start() -> WireServer {
        let shared = Arc::new(Shared::default());
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serves");
        });
        WireServer { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Adds replies to the script, in order.
    pub fn play(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().expect("script").extend(replies);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("requests").clone()
    }

    /// The most responses that were in flight at once.
    pub fn most_in_flight(&self) -> usize {
        self.shared.most_in_flight.load(Ordering::SeqCst)
    }

    /// How many streamed responses the client has stopped reading.
    pub fn closed(&self) -> usize {
        self.shared.closed.load(Ordering::SeqCst)
    }
}

impl Drop for WireServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts a response in flight until its body ends or is dropped.
struct InFlight(Arc<Shared>, bool);

impl InFlight {
    fn new(shared: Arc<Shared>) -> InFlight {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.most_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(shared, false)
    }

    fn finish(&mut self) {
        if !self.1 {
            self.1 = true;
            self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.0.closed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.finish();
    }
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.lock().expect("requests").push(Recorded {
        method,
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let reply = shared.script.lock().expect("script").pop_front();
    let guard = InFlight::new(shared.clone());
    match reply {
        None => {
            drop(guard);
            status_response(
                500,
                &[],
                "{\"error\": {\"message\": \"no reply scripted\"}}",
            )
        }
        Some(Reply::Status {
            status,
            headers,
            body,
        }) => {
            drop(guard);
            status_response(status, &headers, &body)
        }
        Some(Reply::Stream(pieces)) => sse_response(pieces, false, guard),
        Some(Reply::Stall(pieces)) => sse_response(pieces, true, guard),
    }
}

fn status_response(status: u16, headers: &[(&'static str, String)], body: &str) -> Response {
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).expect("status"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response
        .body(Body::from(body.to_owned()))
        .expect("response")
}

fn sse_response(pieces: Vec<Vec<u8>>, stall: bool, mut guard: InFlight) -> Response {
    let pieces = futures::stream::iter(pieces).then(|piece| async move {
        // Separate writes, so the client reads the pieces as cut.
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok::<_, std::io::Error>(Bytes::from(piece))
    });
    let body = if stall {
        pieces.chain(futures::stream::pending()).boxed()
    } else {
        pieces.boxed()
    };
    // The response counts as in flight until its last piece is out (before
    // the client can see its end) or the client goes away (the body is
    // dropped).
    let end = futures::stream::poll_fn(move |_| {
        guard.finish();
        std::task::Poll::Ready(None)
    });
    let body = body.chain(end);
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .expect("response")
}

/// Waits up to five seconds for `condition`.
pub async fn eventually(condition: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// The bytes of `whole` before the first `needle`.
pub fn before(whole: &[u8], needle: &str) -> Vec<u8> {
    let at = whole
        .windows(needle.len())
        .position(|window| window == needle.as_bytes())
        .expect("the needle is there");
    whole[..at].to_vec()
}

/// Server-sent events: `(name, data)` pairs, each ended by a blank line,
/// with `newline` (`"\n"` or `"\r\n"`) between lines.
pub fn sse(events: &[(Option<&str>, String)], newline: &str) -> Vec<u8> {
    let mut out = String::new();
    for (name, data) in events {
        if let Some(name) = name {
            out.push_str(&format!("event: {name}{newline}"));
        }
        out.push_str(&format!("data: {data}{newline}{newline}"));
    }
    out.into_bytes()
}

/// Cuts `bytes` into pieces of at most `size`, and also through the middle
/// of every multi-byte UTF-8 character, so the client meets characters and
/// lines split across reads.
pub fn cut(bytes: &[u8], size: usize) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes);
    let mut cuts: Vec<usize> = (size..bytes.len()).step_by(size).collect();
    for (index, character) in text.char_indices() {
        if character.len_utf8() > 1 {
            cuts.push(index + 1);
        }
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts {
        pieces.push(bytes[start..cut].to_vec());
        start = cut;
    }
    pieces.push(bytes[start..].to_vec());
    pieces
}
