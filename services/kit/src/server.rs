//! The gRPC server every service runs on: the services it is given, plus
//! gRPC health checking (each service reported SERVING) and server
//! reflection (v1 and v1alpha, which Python's grpcio still uses).
//!
//! A service crate adds its tonic services to a [`ServiceRoutes`]; its binary
//! serves them alone, and the all-in-one process adds every service's to one
//! set and serves them on one port.

use std::convert::Infallible;
use std::future::Future;

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;

/// The tonic services one server hosts, with their names for health checks.
#[derive(Default)]
pub struct ServiceRoutes {
    builder: RoutesBuilder,
    names: Vec<&'static str>,
}

impl ServiceRoutes {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
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
    tonic::transport::Server::builder()
        // grpc-web callers (through the gateway or directly) speak HTTP/1.1.
        .accept_http1(true)
        .add_routes(routes.builder.routes())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
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
