//! Orchestra's review service: the human side of a workflow. People fill in
//! input forms and review candidates; their answers become artifacts and
//! reach the scheduler through an outbox, so none is lost while the
//! scheduler is down.
//!
//! - [`config`]: `ORCHESTRA_REVIEW_*` settings.
//! - [`error`]: the one error type and its mapping to gRPC status.
//! - [`grpc`]: the gRPC handlers (`grpc/review_svc.rs`: `ReviewService`).
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
use tokio::sync::Notify;
use tonic::transport::Channel;

use orchestra_db::Db;
use orchestra_kit::Background;
use orchestra_kit::config::Settings;
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
        let db = storage::open(&config.database_url).await?;
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

    /// Starts the service's one loop, the outbox dispatcher, which delivers
    /// resolutions to the scheduler. [`Background::stop`] lets it finish the
    /// delivery in hand; dropping the handle aborts it.
    pub fn spawn_background(&self) -> Background {
        let db = self.db.clone();
        let scheduler = TaskServiceClient::new(self.scheduler.clone())
            .max_decoding_message_size(self.limit.channel_bytes())
            .max_encoding_message_size(self.limit.channel_bytes());
        let wake = self.wake.clone();
        let mut background = Background::new();
        background.spawn_with_stop("review outbox", move |stop| {
            outbox::run(db, scheduler, wake, stop.cancelled_owned())
        });
        background
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
    let background = review.spawn_background();
    let mut routes = ServiceRoutes::new();
    review.add_routes(&mut routes);
    tracing::info!(addr = ?listener.local_addr().ok(), "review service listening");
    let served = orchestra_kit::server::serve(routes, listener, shutdown).await;
    background.stop().await;
    Ok(served?)
}
