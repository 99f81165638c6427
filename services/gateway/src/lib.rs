//! Orchestra's gateway: the one address browsers and outside clients use
//! when the services run apart. It speaks gRPC and grpc-web (binary and
//! text) with CORS for the configured origins, serves the built web client
//! at `/`, and forwards each call by its gRPC service name to the service
//! that owns it, server streams, deadlines and cancellation included. It
//! keeps no state.
//!
//! - [`config`]: `ORCHESTRA_GATEWAY_*` settings (the peers' URLs).
//! - [`error`]: start-up faults.
//! - [`forward`]: the tonic service that forwards one gRPC service's calls.
//! - `deadline`: `grpc-timeout` kept for a whole call, streams included.
//!
//! The layers in front (grpc-web, CORS, the web client's files, limits)
//! are the kit's ([`orchestra_kit::server::serve`]), as on every service.
//! TaskService is not forwarded: it is how executors lease and complete
//! work inside the mesh, not something a browser or an outside client may
//! call.
//!
//! [`Gateway`] is the forwarding state; [`serve`] runs it on a listener.

pub mod config;
mod deadline;
pub mod error;
pub mod forward;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpListener;

use orchestra_kit::config::Settings;
use orchestra_kit::server::ServiceRoutes;
use orchestra_kit::web::WebConfig;

pub use config::Config;
pub use error::{Error, Result};

use forward::{Forward, Upstream};

/// The gateway: a lazy channel to each owning service. Cheap to clone;
/// clones share the channels and the count of open calls.
#[derive(Clone)]
pub struct Gateway {
    scheduler: Upstream,
    artifact_store: Upstream,
    review: Upstream,
    executor: Upstream,
    open: Arc<AtomicUsize>,
}

impl Gateway {
    /// Prepares a channel to each service, dialled on first use, so the
    /// services may start before or after the gateway. A URL that cannot
    /// be dialled is a [`Error::Config`] naming its variable.
    pub fn open(config: &Config) -> Result<Gateway> {
        let open = Arc::new(AtomicUsize::new(0));
        let upstream = |owner: &'static str, url: &str, field: &str| -> Result<Upstream> {
            let channel = orchestra_kit::channel::lazy(url, &Config::variable(field))?;
            Ok(Upstream::new(owner, url, channel, open.clone()))
        };
        Ok(Gateway {
            scheduler: upstream("scheduler", &config.scheduler_url, "scheduler_url")?,
            artifact_store: upstream(
                "artifact store",
                &config.artifact_store_url,
                "artifact_store_url",
            )?,
            review: upstream("review service", &config.review_url, "review_url")?,
            executor: upstream("phase executor", &config.executor_url, "executor_url")?,
            open,
        })
    }

    /// Adds a forwarding service per owned gRPC service.
    pub fn add_routes(&self, routes: &mut ServiceRoutes) {
        routes.add(Forward::<forward::TemplateService>::new(
            self.scheduler.clone(),
        ));
        routes.add(Forward::<forward::RunService>::new(self.scheduler.clone()));
        routes.add(Forward::<forward::ArtifactService>::new(
            self.artifact_store.clone(),
        ));
        routes.add(Forward::<forward::ReviewService>::new(self.review.clone()));
        routes.add(Forward::<forward::ProviderService>::new(
            self.executor.clone(),
        ));
    }

    /// How many forwarded calls are open now: from arrival until the
    /// response ends or the caller drops it.
    pub fn open_calls(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// Runs the gateway on `listener` until `shutdown` resolves, with the web
/// settings read from `ORCHESTRA_WEB_*`.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let web = WebConfig::from_env()?;
    serve_with(&Gateway::open(&config)?, &web, listener, shutdown).await
}

/// Runs `gateway` on `listener` with the given web settings until
/// `shutdown` resolves.
pub async fn serve_with(
    gateway: &Gateway,
    web: &WebConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let mut routes = ServiceRoutes::new();
    gateway.add_routes(&mut routes);
    routes.set_web(web);
    tracing::info!(addr = ?listener.local_addr().ok(), "gateway serving");
    Ok(orchestra_kit::server::serve(routes, listener, shutdown).await?)
}
