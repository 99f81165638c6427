//! The gRPC server every service runs on: the services it is given, plus
//! gRPC health checking (each service reported SERVING) and server
//! reflection (v1 and v1alpha, which Python's grpcio still uses).
//!
//! A service crate adds its tonic services to a [`ServiceRoutes`]; its binary
//! serves them alone, and the all-in-one process adds every service's to one
//! set and serves them on one port.
//!
//! Every request passes the same tower layers, stacked in one place in
//! [`serve`]: CORS for the allowed origins, the split between gRPC calls and
//! the web client's files ([`ByContentType`]), grpc-web translation, a span
//! per RPC, a timeout, load shedding, a queue and a concurrency limit
//! ([`ServerLimits`]), and the size-error rewrite. Browsers call the
//! services over grpc-web (binary and text) on the same port as plain gRPC;
//! [`ServiceRoutes::set_web`] names the origins allowed to do so from other
//! sites and the folder of the built web client ([`crate::web`]).
//!
//! A request above the configured message limit is refused by tonic with a
//! raw OUT_OF_RANGE; the [`SizeErrors`] layer turns it into
//! RESOURCE_EXHAUSTED naming the request, its size, the limit and what to do.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tower::BoxError;

use crate::limits::{DEFAULT_MAX_MESSAGE_BYTES, MessageLimit};
use crate::web::{WebAssets, WebConfig, cors_layer};

/// How long a server stopping waits for open calls and streams to end
/// before it stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How much one server takes on at once, and for how long. The defaults
/// suit a laptop and a small cluster alike; tests lower them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a request may take to reach its response headers before it
    /// fails as DEADLINE_EXCEEDED. A stream's body is not timed: a
    /// `WatchRun` or `Lease` stream lives for as long as its client keeps it.
    pub request_timeout: Duration,
    /// How many requests are handled at once, across every connection.
    pub max_in_flight: usize,
    /// How many requests may wait for one of those places, besides the one
    /// at the head of the queue (at least 1); a request that finds the queue
    /// full is refused at once as UNAVAILABLE, which clients retry.
    pub max_queued: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            request_timeout: Duration::from_secs(60),
            max_in_flight: 512,
            max_queued: 1024,
        }
    }
}

/// The tonic services one server hosts, with their names for health checks,
/// the message limit they were built with and the server's limits.
pub struct ServiceRoutes {
    builder: RoutesBuilder,
    names: Vec<&'static str>,
    limit: MessageLimit,
    server_limits: ServerLimits,
    /// Origins whose pages may call from other sites.
    origins: Vec<String>,
    /// The built web client, on the servers that host it.
    assets: Option<WebAssets>,
}

impl Default for ServiceRoutes {
    fn default() -> Self {
        ServiceRoutes {
            builder: RoutesBuilder::default(),
            names: Vec::new(),
            limit: MessageLimit::new(
                DEFAULT_MAX_MESSAGE_BYTES,
                "the service's MAX_MESSAGE_BYTES variable",
            ),
            server_limits: ServerLimits::default(),
            origins: Vec::new(),
            assets: None,
        }
    }
}

impl ServiceRoutes {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the message limit the services are built with (each
    /// generated server takes [`MessageLimit::channel_bytes`] both ways), so
    /// a request above it is refused naming that limit.
    pub fn set_message_limit(&mut self, limit: MessageLimit) -> &mut Self {
        self.limit = limit;
        self
    }

    /// The message limit requests are refused by.
    pub fn message_limit(&self) -> &MessageLimit {
        &self.limit
    }

    /// Replaces the default timeout, concurrency limit and queue.
    pub fn set_server_limits(&mut self, limits: ServerLimits) -> &mut Self {
        self.server_limits = limits;
        self
    }

    /// Hosts the web client: its built files are served at `/` on the
    /// services' port, and pages from `web.origins` may call the services
    /// across sites. Without it, a server still answers grpc-web from its
    /// own origin (or from tools that send none) and refuses other sites.
    pub fn set_web(&mut self, web: &WebConfig) -> &mut Self {
        self.origins = web.origins.clone();
        self.assets = Some(WebAssets::new(&web.dir));
        self
    }

    /// Adds one generated tonic server (e.g. `RunServiceServer::new(svc)`).
    pub fn add<S>(&mut self, service: S) -> &mut Self
    where
        S: tower_service::Service<
                http::Request<Body>,
                Response = http::Response<Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.builder.add_service(service);
        self
    }

    /// The full gRPC names of the services added so far.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }
}

/// Serves the routes on a bound listener until `shutdown` resolves. Binding
/// is the caller's, so tests can listen on port 0 and read the address.
pub async fn serve(
    mut routes: ServiceRoutes,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in &routes.names {
        health
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(orchestra_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let builder = &mut routes.builder;
    builder.add_service(health_service);
    // Building fails only on a malformed descriptor set, which build.rs made.
    match (reflection().build_v1(), reflection().build_v1alpha()) {
        (Ok(v1), Ok(v1alpha)) => {
            builder.add_service(v1);
            builder.add_service(v1alpha);
        }
        (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "server reflection is off"),
    }
    let size_limit = Arc::new(routes.limit.clone());
    let limits = routes.server_limits.clone();
    // The layers every request passes, outermost first. The queue splits
    // them in two: its worker task owns the inner half.
    let admitted = tower::ServiceBuilder::new()
        // At most this many requests are handled at once, on any connection.
        .concurrency_limit(limits.max_in_flight)
        // A request above the message limit is refused in plain words.
        .layer(SizeErrorsLayer { limit: size_limit })
        .service(routes.builder.routes().prepare());
    // Requests beyond the concurrency limit wait here, in arrival order.
    let (queue, worker) = tower::buffer::Buffer::pair(admitted, limits.max_queued.max(1));
    let worker = tokio::spawn(worker);
    let grpc = tower::ServiceBuilder::new()
        // grpc-web (binary or base64 text, over HTTP/1.1 or 2) becomes gRPC
        // for every layer below, and their answers grpc-web again; plain
        // gRPC passes through untouched.
        .layer(tonic_web::GrpcWebLayer::new())
        // Shed and timed-out requests become statuses a client understands.
        .layer(OverloadLayer {
            timeout: limits.request_timeout,
        })
        // A request must reach its response headers in time; a stream's
        // body then runs on for as long as it lives.
        .timeout(limits.request_timeout)
        // A request that finds the queue full is refused at once.
        .load_shed()
        .service(queue);
    let service = tower::ServiceBuilder::new()
        // Pages from the allowed origins may call; preflights are answered
        // here, and other sites get no Access-Control-Allow-Origin.
        .layer(cors_layer(&routes.origins))
        .service(ByContentType {
            grpc,
            other: routes.assets.clone(),
        });
    let (fired, on_fired) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = fired.send(());
    };
    let server = tonic::transport::Server::builder()
        // grpc-web callers (through the gateway or directly) speak HTTP/1.1.
        .accept_http1(true)
        // A span per RPC, named by its method, over every layer above.
        .trace_fn(rpc_span)
        .serve_with_incoming_shutdown(service, incoming(listener), shutdown);
    // A graceful stop waits for open calls, and a stream that does not end
    // by itself (a browser's WatchInbox) would hold it for ever: past the
    // grace the server stops all the same.
    let mut cut = false;
    let served = tokio::select! {
        served = server => served,
        () = async {
            if on_fired.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::info!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "streams still open after the shutdown grace; stopping anyway"
            );
            cut = true;
            Ok(())
        }
    };
    // The worker ends once the server has dropped the queue, and drops the
    // services (their database pools, say) as it ends: wait for that, so a
    // service started again at once finds its SQLite files free.
    // Streams cut at the grace still hold the services, so the worker would
    // not end: waiting for it then would only delay the stop.
    if !cut {
        let _ = tokio::time::timeout(Duration::from_secs(5), worker).await;
    }
    served
}

/// The connections a listener accepts, each with TCP_NODELAY set: without
/// it a small response can wait ~40 ms for a delayed ACK (Nagle).
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Sends gRPC and grpc-web calls (any `application/grpc*` content type) to
/// the service stack, and everything else (a browser loading the page) to
/// the web client's files, or answers 404 on a server without them. The
/// grpc-web layer would refuse a plain HTTP/1.1 GET, so the split comes
/// before it.
#[derive(Clone)]
pub struct ByContentType<G> {
    grpc: G,
    other: Option<WebAssets>,
}

impl<G, B> tower_service::Service<http::Request<B>> for ByContentType<G>
where
    G: tower_service::Service<http::Request<B>, Response = http::Response<Body>>
        + Clone
        + Send
        + 'static,
    G::Future: Send + 'static,
    G::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call readies its own clone, so a page load never holds one
        // of the gRPC queue's places.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        use tower::ServiceExt;
        let is_grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/grpc"));
        if is_grpc {
            let grpc = self.grpc.clone();
            return Box::pin(async move { grpc.oneshot(request).await.map_err(Into::into) });
        }
        match self.other.clone() {
            Some(assets) => Box::pin(async move {
                let response = assets.oneshot(request).await;
                Ok(response.unwrap_or_else(|never| match never {}))
            }),
            None => Box::pin(async move {
                let mut response = http::Response::new(Body::new(
                    "this port serves gRPC and grpc-web calls only\n".to_owned(),
                ));
                *response.status_mut() = http::StatusCode::NOT_FOUND;
                Ok(response)
            }),
        }
    }
}

/// The span every RPC runs in, named by its method.
fn rpc_span(request: &http::Request<()>) -> tracing::Span {
    tracing::info_span!("rpc", method = %request.uri().path())
}

/// Wraps a service in [`Overload`].
#[derive(Clone)]
pub struct OverloadLayer {
    timeout: Duration,
}

impl<S> tower::Layer<S> for OverloadLayer {
    type Service = Overload<S>;

    fn layer(&self, inner: S) -> Overload<S> {
        Overload {
            inner,
            timeout: self.timeout,
        }
    }
}

/// Turns the errors of the layers below into gRPC statuses: a shed request
/// (the queue is full) is UNAVAILABLE, which clients and outboxes retry, and
/// a request that did not reach its response in time is DEADLINE_EXCEEDED.
/// tonic would send the first as RESOURCE_EXHAUSTED, which reads as the
/// caller's fault.
#[derive(Clone)]
pub struct Overload<S> {
    inner: S,
    timeout: Duration,
}

impl<S, B> tower_service::Service<http::Request<B>> for Overload<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc = request.uri().path().to_owned();
        let timeout = self.timeout;
        let response = self.inner.call(request);
        Box::pin(async move {
            match response.await {
                Err(error) if error.is::<tower::load_shed::error::Overloaded>() => {
                    tracing::warn!(%rpc, "shed: the server is at its concurrency limit");
                    Ok(overloaded_status().into_http())
                }
                Err(error) if error.is::<tower::timeout::error::Elapsed>() => {
                    Ok(timed_out_status(&rpc, timeout).into_http())
                }
                other => other,
            }
        })
    }
}

/// The status a shed request gets.
pub fn overloaded_status() -> tonic::Status {
    tonic::Status::unavailable("the server is busy; try again in a moment")
}

/// The status of a request that did not reach its response in time.
pub fn timed_out_status(rpc: &str, timeout: Duration) -> tonic::Status {
    let method = rpc.rsplit('/').next().unwrap_or(rpc);
    tonic::Status::deadline_exceeded(format!(
        "{method} did not finish within the server's {}s limit; try again",
        timeout.as_secs_f64()
    ))
}

/// Wraps a service in [`SizeErrors`].
#[derive(Clone)]
pub struct SizeErrorsLayer {
    limit: Arc<MessageLimit>,
}

impl<S> tower::Layer<S> for SizeErrorsLayer {
    type Service = SizeErrors<S>;

    fn layer(&self, inner: S) -> SizeErrors<S> {
        SizeErrors {
            inner,
            limit: self.limit.clone(),
        }
    }
}

/// Rewrites tonic's "decoded message length too large" (OUT_OF_RANGE, with
/// tonic's own wording) as RESOURCE_EXHAUSTED that names the RPC, the
/// request's size, the configured limit and the streaming alternative.
#[derive(Clone)]
pub struct SizeErrors<S> {
    inner: S,
    limit: Arc<MessageLimit>,
}

impl<S, B> tower_service::Service<http::Request<B>> for SizeErrors<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc = request.uri().path().to_owned();
        let limit = self.limit.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match too_large(response.headers()) {
                Some(size) => too_large_status(&rpc, size, &limit).into_http(),
                None => response,
            })
        })
    }
}

/// The size tonic reports when it refused a request as too large.
fn too_large(headers: &http::HeaderMap) -> Option<usize> {
    let status = tonic::Status::from_header_map(headers)?;
    if status.code() != tonic::Code::OutOfRange {
        return None;
    }
    let found = status
        .message()
        .strip_prefix("Error, decoded message length too large: found ")?;
    found.split_once(' ')?.0.parse().ok()
}

/// The status a too-large request gets.
pub fn too_large_status(rpc: &str, size: usize, limit: &MessageLimit) -> tonic::Status {
    let method = rpc.rsplit('/').next().unwrap_or(rpc);
    tonic::Status::resource_exhausted(format!(
        "{}; store large content with ArtifactService.WriteArtifactContent, which \
         streams it, and pass it by reference (orchestra run start does so for \
         large inputs by itself), or raise the limit",
        limit.exceeded(&format!("the {method} request"), size)
    ))
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut incoming = incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let accepted = incoming.next().await.expect("one").expect("accepted");
        assert!(accepted.nodelay().expect("nodelay"));
    }

    #[test]
    fn shed_and_late_requests_are_retryable_codes() {
        assert_eq!(overloaded_status().code(), tonic::Code::Unavailable);
        let late = timed_out_status("/orchestra.v1.RunService/StartRun", Duration::from_secs(60));
        assert_eq!(late.code(), tonic::Code::DeadlineExceeded);
        assert!(late.message().starts_with("StartRun did not finish within"));
    }
}
