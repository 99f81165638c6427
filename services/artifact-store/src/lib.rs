//! The artifact store: versioned, content-addressed outputs of phase
//! attempts, validated against their JSON Schemas, with history and diffs.
//! It serves `orchestra.v1.ArtifactService`.
//!
//! - [`config`]: [`Config`] from `ORCHESTRA_ARTIFACT_STORE_*` variables.
//! - [`ArtifactStore`]: the opened store; [`ArtifactStore::add_routes`]
//!   mounts its gRPC service, and [`serve`] runs it alone.
//! - `artifacts`: what each RPC does.
//! - `upload`: WriteArtifactContent, content that arrives in chunks.
//! - [`grpc`]: the gRPC handlers (`grpc/artifact_svc.rs`: [`ArtifactSvc`]).
//! - `storage`: the private tables (Postgres schema `artifact_store`, or a
//!   SQLite file) and their queries.
//! - `blobs`: content above the inline limit, as files named by sha256.
//! - `validation`: JSON Schema checks; `diff`: JSON and text diffs.
//! - [`error`]: the crate's [`Error`] and its mapping to gRPC statuses.

mod artifacts;
mod blobs;
pub mod config;
mod diff;
pub mod error;
pub mod grpc;
mod storage;
mod upload;
mod validation;

use std::future::Future;
use std::sync::Arc;

use orchestra_db::Db;
use orchestra_kit::config::{ConfigError, Settings};
use orchestra_kit::limits::MessageLimit;
use orchestra_kit::server::ServiceRoutes;
use orchestra_proto::v1::artifact_service_server::ArtifactServiceServer;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::{Error, Result};
pub use grpc::ArtifactSvc;

/// An opened artifact store: its database, blob folder and inline limit.
/// Cheap to clone.
#[derive(Clone)]
pub struct ArtifactStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    blobs: blobs::BlobStore,
    inline_limit: usize,
    /// The largest content one artifact may have, as one message or streamed.
    limit: MessageLimit,
}

impl ArtifactStore {
    /// Connects to the database (Postgres schema `artifact_store`), applies
    /// pending migrations and creates the blob folder.
    ///
    /// Needs a multi-threaded tokio runtime, for the migrations. A blob
    /// folder that cannot be created or a database that cannot be opened is
    /// [`Error::Config`], naming its variable.
    pub async fn open(config: &Config) -> Result<ArtifactStore> {
        let blobs = blobs::BlobStore::open(&config.blob_dir)
            .await
            .map_err(|e| match e {
                Error::Blob(cause) => Error::Config(ConfigError::folder(
                    &Config::variable("blob_dir"),
                    &config.blob_dir,
                    &cause,
                )),
                other => other,
            })?;
        let db = storage::open(&config.database_url).await?;
        Ok(ArtifactStore {
            inner: Arc::new(Inner {
                db,
                blobs,
                inline_limit: config.inline_limit_bytes,
                limit: config.message_limit(),
            }),
        })
    }

    /// Adds `ArtifactService` to a server's routes, taking and sending
    /// messages up to the configured limit.
    pub fn add_routes(&self, routes: &mut ServiceRoutes) {
        let bytes = self.inner.limit.channel_bytes();
        let service = ArtifactServiceServer::new(ArtifactSvc::new(self.clone()))
            .max_decoding_message_size(bytes)
            .max_encoding_message_size(bytes);
        routes
            .set_message_limit(self.inner.limit.clone())
            .add(service);
    }
}

/// Opens the store and serves it alone on `listener` until `shutdown`
/// resolves.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let store = ArtifactStore::open(&config).await?;
    let mut routes = ServiceRoutes::new();
    store.add_routes(&mut routes);
    tracing::info!(addr = ?listener.local_addr().ok(), "artifact store serving");
    orchestra_kit::server::serve(routes, listener, shutdown).await?;
    Ok(())
}
