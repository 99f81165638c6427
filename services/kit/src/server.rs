//! The gRPC server every service runs on: the services it is given, plus
//! gRPC health checking (each service reported SERVING) and server
//! reflection (v1 and v1alpha, which Python's grpcio still uses).
//!
//! A service crate adds its tonic services to a [`ServiceRoutes`]; its binary
//! serves them alone, and the all-in-one process adds every service's to one
//! set and serves them on one port.
//!
//! A request above the configured message limit is refused by tonic with a
//! raw OUT_OF_RANGE; the [`SizeErrors`] layer turns it into
//! RESOURCE_EXHAUSTED naming the request, its size, the limit and what to do.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;

use crate::limits::{DEFAULT_MAX_MESSAGE_BYTES, MessageLimit};

/// The tonic services one server hosts, with their names for health checks,
/// and the message limit they were built with.
pub struct ServiceRoutes {
    builder: RoutesBuilder,
    names: Vec<&'static str>,
    limit: MessageLimit,
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
    let limit = Arc::new(routes.limit.clone());
    tonic::transport::Server::builder()
        // grpc-web callers (through the gateway or directly) speak HTTP/1.1.
        .accept_http1(true)
        // A request above the message limit is refused in plain words.
        .layer(tower::layer::layer_fn(move |inner| SizeErrors {
            inner,
            limit: limit.clone(),
        }))
        .add_routes(routes.builder.routes())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
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
