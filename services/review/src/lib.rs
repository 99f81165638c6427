//! Orchestra's review service: the human side of a workflow. People fill in
//! input forms and review candidates; their answers become artifacts and
//! reach the scheduler through an outbox, so none is lost while the
//! scheduler is down.
//!
//! - [`config`]: `ORCHESTRA_REVIEW_*` settings.
//! - [`error`]: the one error type and its mapping to gRPC status.
//! - [`grpc`]: the `ReviewService` handler.
//! - `actions`: open, claim, submit and decide, over storage and the stores.
//! - `artifacts`: the artifact store client (outputs, review content, diffs).
//! - `forms`: JSON Schema checks of submissions, as field violations.
//! - `inbox`: the broadcast of task changes behind WatchInbox.
//! - `outbox`: the dispatcher that delivers resolutions to the scheduler.
//! - `storage`: tasks and outbox tables, Postgres schema `review` or SQLite.
//!
//! [`Review`] is the service's state; [`serve`] runs it on a listener.

mod actions;
mod artifacts;
pub mod config;
pub mod error;
mod forms;
pub mod grpc;
mod inbox;
mod outbox;
mod storage;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use orchestra_db::{Db, DbOptions};
use orchestra_kit::config::{ConfigError, Settings};
use orchestra_kit::limits::MessageLimit;
use orchestra_kit::server::ServiceRoutes;
use orchestra_proto::v1::review_service_server::ReviewServiceServer;
use orchestra_proto::v1::task_service_client::TaskServiceClient;

pub use config::Config;
pub use error::{Error, Result};

use artifacts::Artifacts;
use inbox::Inbox;

/// The review service: its database, its peers and its live inbox. Cheap
/// to clone; every clone shares the same state.
#[derive(Clone)]
pub struct Review {
    db: Db,
    inbox: Inbox,
    /// Wakes the outbox dispatcher when a message is stored.
    wake: Arc<Notify>,
    scheduler: Channel,
    artifacts: Artifacts,
    limit: MessageLimit,
}

impl Review {
    /// Connects to the database (Postgres schema `review`), applies
    /// migrations and prepares lazy channels to the scheduler and the
    /// artifact store, which need not be up yet. A setting that cannot be
    /// used (a peer URL, an unreachable database) is [`Error::Config`],
    /// naming its variable.
    pub async fn open(config: &Config) -> Result<Review> {
        let limit = config.message_limit();
        let scheduler = orchestra_kit::channel::lazy(
            &config.scheduler_url,
            &Config::variable("scheduler_url"),
        )?;
        let artifacts = orchestra_kit::channel::lazy(
            &config.artifact_store_url,
            &Config::variable("artifact_store_url"),
        )?;
        let options = DbOptions {
            schema: storage::SCHEMA.to_owned(),
            max_connections: 8,
        };
        let db = Db::connect(&config.database_url, &options)
            .await
            .map_err(|e| {
                let variable = Config::variable("database_url");
                match e {
                    orchestra_db::Error::InvalidUrl { .. } => {
                        ConfigError::database_url(&variable, &e.to_string())
                    }
                    _ => ConfigError::database(&variable, &config.database_url, &e),
                }
            })?;
        storage::migrate(&db).await?;
        Ok(Review {
            db,
            inbox: Inbox::default(),
            wake: Arc::new(Notify::new()),
            scheduler,
            artifacts: Artifacts::new(artifacts, limit.channel_bytes()),
            limit,
        })
    }

    /// Adds `ReviewService` to a server's routes, taking and sending
    /// messages up to the configured limit.
    pub fn add_routes(&self, routes: &mut ServiceRoutes) {
        let bytes = self.limit.channel_bytes();
        routes.set_message_limit(self.limit.clone()).add(
            ReviewServiceServer::new(grpc::ReviewSvc::new(self.clone()))
                .max_decoding_message_size(bytes)
                .max_encoding_message_size(bytes),
        );
    }

    /// Starts the outbox dispatcher, which delivers resolutions to the
    /// scheduler until `shutdown` turns true or its sender is dropped.
    pub fn spawn_outbox(&self, shutdown: watch::Receiver<bool>) -> JoinHandle<()> {
        let mut shutdown = shutdown;
        let stop = async move {
            // A dropped sender stops the dispatcher too.
            let _ = shutdown.wait_for(|stopping| *stopping).await;
        };
        tokio::spawn(outbox::run(
            self.db.clone(),
            TaskServiceClient::new(self.scheduler.clone())
                .max_decoding_message_size(self.limit.channel_bytes())
                .max_encoding_message_size(self.limit.channel_bytes()),
            self.wake.clone(),
            stop,
        ))
    }
}

/// Runs the review service on a bound listener, with its outbox dispatcher,
/// until `shutdown` resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let review = Review::open(&config).await?;
    let (stop, stopped) = watch::channel(false);
    let dispatcher = review.spawn_outbox(stopped);
    let mut routes = ServiceRoutes::new();
    review.add_routes(&mut routes);
    tracing::info!(addr = ?listener.local_addr().ok(), "review service listening");
    let served = orchestra_kit::server::serve(routes, listener, shutdown).await;
    let _ = stop.send(true);
    let _ = dispatcher.await;
    Ok(served?)
}
