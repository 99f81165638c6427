//! The artifact store: versioned, content-addressed outputs of phase
//! attempts, validated against their JSON Schemas, with history and diffs.
//! It serves `orchestra.v1.ArtifactService`.
//!
//! - [`config`]: [`Config`] from `ORCHESTRA_ARTIFACT_STORE_*` variables.
//! - [`ArtifactStore`]: the opened store; [`ArtifactStore::add_routes`]
//!   mounts its gRPC service, and [`serve`] runs it alone.
//! - `artifacts`: what each RPC does.
//! - [`grpc`]: the tonic handler, [`ArtifactSvc`].
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
mod validation;

use std::future::Future;
use std::sync::Arc;

use orchestra_db::Db;
use orchestra_kit::server::ServiceRoutes;
use orchestra_proto::v1::artifact_service_server::ArtifactServiceServer;
use tokio::net::TcpListener;

pub use config::Config;
pub use error::{Error, Result};
pub use grpc::ArtifactSvc;

/// The largest gRPC message the service accepts: a Put carries its whole
/// content, so this bounds an artifact's size.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

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
}

impl ArtifactStore {
    /// Connects to the database (Postgres schema `artifact_store`), applies
    /// pending migrations and creates the blob folder.
    ///
    /// Needs a multi-threaded tokio runtime, for the migrations.
    pub async fn open(config: &Config) -> Result<ArtifactStore> {
        let db = storage::connect(&config.database_url).await?;
        let blobs = blobs::BlobStore::open(&config.blob_dir).await?;
        Ok(ArtifactStore {
            inner: Arc::new(Inner {
                db,
                blobs,
                inline_limit: config.inline_limit_bytes,
            }),
        })
    }

    /// Adds `ArtifactService` to a server's routes, accepting messages up to
    /// [`MAX_MESSAGE_BYTES`].
    pub fn add_routes(&self, routes: &mut ServiceRoutes) {
        let service = ArtifactServiceServer::new(ArtifactSvc::new(self.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        routes.add(service);
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
