//! The server's tower layers over real gRPC on 127.0.0.1:0: shedding,
//! the timeout (and streams that outlive it), a span per RPC, grpc-web
//! calls inside the same limits, and what a server without the web client
//! tells a browser.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, oneshot};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use orchestra_kit::server::{SHUTDOWN_GRACE, ServerLimits, ServiceRoutes, serve};

/// A service whose every call waits at a gate, then answers NOT_FOUND.
#[derive(Clone)]
struct Slow {
    arrived: Arc<Notify>,
    gate: Arc<Semaphore>,
}

impl NamedService for Slow {
    const NAME: &'static str = "test.Slow";
}

impl tower_service::Service<http::Request<Body>> for Slow {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: http::Request<Body>) -> Self::Future {
        let slow = self.clone();
        Box::pin(async move {
            slow.arrived.notify_one();
            let _passed = slow.gate.acquire().await;
            Ok(Status::not_found("passed the gate").into_http())
        })
    }
}

struct Running {
    url: String,
    slow: Slow,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(limits: ServerLimits) -> Running {
    let slow = Slow {
        arrived: Arc::new(Notify::new()),
        gate: Arc::new(Semaphore::new(0)),
    };
    let mut routes = ServiceRoutes::new();
    routes.add(slow.clone()).set_server_limits(limits);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(routes, listener, async move {
        let _ = stopped.await;
    }));
    Running {
        url,
        slow,
        stop: Some(stop),
    }
}

fn channel(url: &str) -> Channel {
    orchestra_kit::channel::lazy(url, "TEST_URL").expect("channel")
}

/// One call of the slow service.
async fn call_slow(channel: Channel) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static("/test.Slow/Wait");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    match grpc.unary(tonic::Request::new(()), path, codec).await {
        Ok(_) => Status::ok(""),
        Err(status) => status,
    }
}

#[tokio::test]
async fn a_request_beyond_the_queue_is_shed_as_unavailable() {
    let server = start(ServerLimits {
        max_in_flight: 1,
        max_queued: 1,
        ..ServerLimits::default()
    })
    .await;
    let channel = channel(&server.url);
    let first = tokio::spawn(call_slow(channel.clone()));
    server.slow.arrived.notified().await;
    // The second waits at the head of the queue for the one place, the
    // third in the queue's one place.
    let second = tokio::spawn(call_slow(channel.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = tokio::spawn(call_slow(channel.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shed = tokio::time::timeout(Duration::from_secs(5), call_slow(channel.clone()))
        .await
        .expect("a shed request is answered at once");
    assert_eq!(shed.code(), Code::Unavailable, "{shed:?}");
    assert!(shed.message().contains("busy"), "{shed:?}");
    // The admitted and the queued all run once the gate opens.
    server.slow.gate.add_permits(3);
    for call in [first, second, third] {
        assert_eq!(call.await.expect("join").code(), Code::NotFound);
    }
}

#[tokio::test]
async fn a_request_past_the_timeout_is_deadline_exceeded() {
    let server = start(ServerLimits {
        request_timeout: Duration::from_millis(200),
        ..ServerLimits::default()
    })
    .await;
    let status = call_slow(channel(&server.url)).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("Wait"), "{status:?}");
}

#[tokio::test]
async fn a_stream_outlives_the_timeout() {
    let server = start(ServerLimits {
        request_timeout: Duration::from_millis(200),
        ..ServerLimits::default()
    })
    .await;
    let mut health = HealthClient::new(channel(&server.url));
    let mut stream = health
        .watch(HealthCheckRequest {
            service: "test.Slow".to_owned(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = stream.message().await.expect("first message");
    assert!(first.is_some());
    // Well past the timeout the stream is still open: no error, no end.
    let later = tokio::time::timeout(Duration::from_millis(800), stream.message()).await;
    assert!(later.is_err(), "the stream ended: {later:?}");
}

#[tokio::test]
async fn two_hundred_concurrent_requests_pass_at_default_limits() {
    let server = start(ServerLimits::default()).await;
    let channel = channel(&server.url);
    let calls: Vec<_> = (0..200)
        .map(|_| {
            let channel = channel.clone();
            tokio::spawn(async move {
                HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: "test.Slow".to_owned(),
                    })
                    .await
                    .map(drop)
            })
        })
        .collect();
    for call in calls {
        call.await.expect("join").expect("served");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_services_are_dropped_when_serve_returns() {
    /// Held by the service; its receiver learns when the service is gone.
    #[derive(Clone)]
    struct Holder(#[allow(dead_code)] Arc<oneshot::Sender<()>>);
    impl NamedService for Holder {
        const NAME: &'static str = "test.Holder";
    }
    impl tower_service::Service<http::Request<Body>> for Holder {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;
        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _request: http::Request<Body>) -> Self::Future {
            std::future::ready(Ok(Status::not_found("held").into_http()))
        }
    }
    let (held, mut gone) = oneshot::channel();
    let mut routes = ServiceRoutes::new();
    routes.add(Holder(Arc::new(held)));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    serve(routes, listener, async {}).await.expect("served");
    // A database pool inside would be closed by now, not a moment later.
    assert_eq!(gone.try_recv(), Err(oneshot::error::TryRecvError::Closed));
}

/// Records the `method` field of every `rpc` span.
#[derive(Clone, Default)]
struct Methods(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Methods {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Visit<'a>(&'a Mutex<Vec<String>>);
        impl tracing::field::Visit for Visit<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "method"
                    && let Ok(mut methods) = self.0.lock()
                {
                    methods.push(format!("{value:?}"));
                }
            }
        }
        if attrs.metadata().name() == "rpc" {
            attrs.record(&mut Visit(&self.0));
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_rpc_runs_in_a_span_named_by_its_method() {
    use tracing_subscriber::layer::SubscriberExt;
    let methods = Methods::default();
    // The runtime has one thread, so the server's tasks see this subscriber.
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(methods.clone())
            .with(tracing_subscriber::filter::LevelFilter::INFO),
    );
    let server = start(ServerLimits::default()).await;
    HealthClient::new(channel(&server.url))
        .check(HealthCheckRequest::default())
        .await
        .expect("check");
    let seen = methods.0.lock().expect("lock").clone();
    assert!(
        seen.iter().any(|m| m == "/grpc.health.v1.Health/Check"),
        "{seen:?}"
    );
}

/// Sends one HTTP/1.1 request as a browser would and returns the response's
/// head (status line and headers, lower-cased) and raw body.
async fn http1(url: &str, head: &str, body: &[u8]) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{head}\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.expect("write");
    socket.write_all(body).await.expect("write body");
    let mut raw = Vec::new();
    socket.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    (
        String::from_utf8_lossy(&raw[..split]).to_lowercase(),
        raw[split + 4..].to_vec(),
    )
}

#[tokio::test]
async fn grpc_web_calls_pass_the_same_limits_as_grpc() {
    let server = start(ServerLimits {
        max_in_flight: 1,
        max_queued: 1,
        ..ServerLimits::default()
    })
    .await;
    let channel = channel(&server.url);
    let first = tokio::spawn(call_slow(channel.clone()));
    server.slow.arrived.notified().await;
    let second = tokio::spawn(call_slow(channel.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = tokio::spawn(call_slow(channel.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A browser's call finds the queue full too, and reads why.
    let (head, _) = http1(
        &server.url,
        "POST /test.Slow/Wait HTTP/1.1\r\ncontent-type: application/grpc-web+proto\r\nx-grpc-web: 1",
        &[0, 0, 0, 0, 0],
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("grpc-status: 14"), "UNAVAILABLE: {head}");
    server.slow.gate.add_permits(3);
    for call in [first, second, third] {
        assert_eq!(call.await.expect("join").code(), Code::NotFound);
    }
}

#[tokio::test]
async fn a_server_without_the_web_client_refuses_pages_and_other_sites() {
    let server = start(ServerLimits::default()).await;
    let (head, body) = http1(&server.url, "GET / HTTP/1.1", b"").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("gRPC and grpc-web calls only"));
    // No origin is allowed unless configured: a preflight gets no
    // Access-Control-Allow-Origin, so a browser never sends the call.
    let (head, _) = http1(
        &server.url,
        "OPTIONS /test.Slow/Wait HTTP/1.1\r\norigin: http://elsewhere.example\r\n\
         access-control-request-method: POST",
        b"",
    )
    .await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");
}

#[tokio::test]
async fn a_call_that_never_ends_holds_the_stop_only_for_the_grace() {
    let slow = Slow {
        arrived: Arc::new(Notify::new()),
        gate: Arc::new(Semaphore::new(0)),
    };
    let mut routes = ServiceRoutes::new();
    routes.add(slow.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(serve(routes, listener, async move {
        let _ = stopped.await;
    }));
    // A call that waits for ever, as a browser's WatchInbox does.
    let call = tokio::spawn(call_slow(channel(&url)));
    slow.arrived.notified().await;
    let began = tokio::time::Instant::now();
    stop.send(()).expect("stop");
    tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(2), served)
        .await
        .expect("the server stops once the grace has passed")
        .expect("server task")
        .expect("served");
    assert!(began.elapsed() >= SHUTDOWN_GRACE - Duration::from_millis(100));
    call.abort();
}
