//! Orchestra's scheduler: templates and their versions, runs, the phase
//! state machine, each run's event log, and the task queue with its leases.
//!
//! - [`engine`]: every state change, each one transaction; [`engine::run_tx`]
//!   is the unit of work that applies the transition table to one run.
//! - [`grpc`]: TemplateService, RunService and TaskService, each handler
//!   reading its request and handing it to the engine.
//! - [`storage`]: the scheduler's tables and queries, one module per table,
//!   for both backends.
//! - [`outbox`]: hand-offs to the review service that survive restarts.
//! - [`bus`]: after a commit, each watched run's events to its watchers and
//!   wake-ups for the rest; [`listen`]: the same for other replicas' commits
//!   (Postgres LISTEN/NOTIFY).
//!
//! [`Scheduler`] ties them together; `main.rs` and the all-in-one process
//! only configure and start it.

mod bus;
pub mod config;
mod convert;
mod engine;
pub mod error;
mod grpc;
mod listen;
mod outbox;
mod storage;

use std::future::Future;

use orchestra_kit::Background;
use orchestra_kit::config::Settings;
use orchestra_kit::limits::MessageLimit;
use orchestra_kit::server::ServiceRoutes;
use orchestra_model::Catalog;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::review_service_client::ReviewServiceClient;
use orchestra_proto::v1::run_service_server::RunServiceServer;
use orchestra_proto::v1::task_service_server::TaskServiceServer;
use orchestra_proto::v1::template_service_server::TemplateServiceServer;
use tokio::net::TcpListener;
use tonic::transport::Channel;

pub use config::Config;
pub use error::{Error, Result};

use engine::{Engine, LeaseSettings};

/// A running scheduler's parts. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    engine: Engine,
    database_url: String,
    review: ReviewServiceClient<Channel>,
    limit: MessageLimit,
}

impl Scheduler {
    /// Connects to the database, applies migrations, and prepares clients
    /// of the review service and artifact store (connected on first use).
    ///
    /// A setting that cannot be used (a peer URL, an unreachable database)
    /// is [`Error::Config`], naming its variable.
    pub async fn open(config: &Config) -> Result<Scheduler> {
        let limit = config.message_limit();
        let review = ReviewServiceClient::new(orchestra_kit::channel::lazy(
            &config.review_url,
            &Config::variable("review_url"),
        )?)
        .max_decoding_message_size(limit.channel_bytes())
        .max_encoding_message_size(limit.channel_bytes());
        let artifacts = ArtifactServiceClient::new(orchestra_kit::channel::lazy(
            &config.artifact_store_url,
            &Config::variable("artifact_store_url"),
        )?)
        .max_decoding_message_size(limit.channel_bytes())
        .max_encoding_message_size(limit.channel_bytes());
        let db = storage::open(&config.database_url).await?;
        let mut catalog = Catalog::builtin();
        catalog.providers.extend(config.providers.iter().cloned());
        let engine = Engine::new(
            db,
            bus::Bus::new(config.sweep_interval()),
            catalog,
            LeaseSettings {
                ttl: config.lease_ttl(),
                min_attempts_on_expiry: 3,
            },
            artifacts,
            limit.clone(),
        );
        Ok(Scheduler {
            engine,
            database_url: config.database_url.clone(),
            review,
            limit,
        })
    }

    /// Adds TemplateService, RunService and TaskService, each taking and
    /// sending messages up to the configured limit.
    pub fn add_routes(&self, routes: &mut ServiceRoutes) {
        let bytes = self.limit.channel_bytes();
        routes
            .set_message_limit(self.limit.clone())
            .add(
                TemplateServiceServer::new(grpc::template_svc::TemplateSvc::new(
                    self.engine.clone(),
                ))
                .max_decoding_message_size(bytes)
                .max_encoding_message_size(bytes),
            )
            .add(
                RunServiceServer::new(grpc::run_svc::RunSvc::new(self.engine.clone()))
                    .max_decoding_message_size(bytes)
                    .max_encoding_message_size(bytes),
            )
            .add(
                TaskServiceServer::new(grpc::task_svc::TaskSvc::new(self.engine.clone()))
                    .max_decoding_message_size(bytes)
                    .max_encoding_message_size(bytes),
            );
    }

    /// Ends the scheduler's open streams (leases, watches), so a server
    /// shutting down can drain; call it when the shutdown signal arrives.
    pub fn close_streams(&self) {
        self.engine.bus().close();
    }

    /// Wraps a shutdown signal so open streams end when it fires.
    pub fn draining(
        &self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> impl Future<Output = ()> + Send {
        let scheduler = self.clone();
        async move {
            shutdown.await;
            scheduler.close_streams();
        }
    }

    /// Starts the lease sweeper, the outbox dispatcher and, on Postgres, the
    /// listener for other replicas' commits.
    pub fn spawn_background(&self) -> Background {
        let mut background = Background::new();
        let engine = self.engine.clone();
        // Sweeps hold nothing that must finish: a stop may cut one short.
        background.spawn("lease sweeper", async move { engine.sweep_leases().await });
        let (engine, review) = (self.engine.clone(), self.review.clone());
        background.spawn_with_stop("outbox to review", move |stop| async move {
            outbox::run(engine, review, stop.cancelled_owned()).await;
        });
        if self.engine.db().backend() == orchestra_db::Backend::Postgres {
            background.spawn(
                "listener for other replicas",
                listen::run(self.database_url.clone(), self.engine.clone()),
            );
        }
        background
    }
}

/// Runs the scheduler on a bound listener until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let scheduler = Scheduler::open(&config).await?;
    let mut routes = ServiceRoutes::new();
    scheduler.add_routes(&mut routes);
    let background = scheduler.spawn_background();
    tracing::info!(addr = ?listener.local_addr().ok(), "scheduler listening");
    let served = orchestra_kit::server::serve(routes, listener, scheduler.draining(shutdown)).await;
    background.stop().await;
    served.map_err(Error::Server)
}
