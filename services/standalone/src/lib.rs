//! Every Orchestra service in one process, on one port: the scheduler, the
//! artifact store, the review service and a phase executor, each the same
//! code that runs as its own binary in a cluster. Peers reach each other
//! over gRPC on the shared port, exactly as they would across a network.
//!
//! State lives under one data directory (a SQLite file per service and the
//! blob store) unless a Postgres URL is given, in which case each service
//! keeps its tables in its own schema of that database.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use orchestra_kit::server::ServiceRoutes;
use tokio::net::TcpListener;

/// How to run the mesh.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where SQLite files and blobs live.
    pub data_dir: PathBuf,
    /// A Postgres URL for every service instead of SQLite files.
    pub database_url: Option<String>,
    /// Lease time-to-live for the scheduler.
    pub lease_ttl: Duration,
    /// Phases the built-in executor runs at once (0: no executor).
    pub executor_slots: u32,
}

impl Options {
    /// Defaults for a laptop: SQLite under `data_dir`, a 30 s lease, 4 slots.
    pub fn new(data_dir: PathBuf) -> Options {
        Options {
            data_dir,
            database_url: None,
            lease_ttl: Duration::from_secs(30),
            executor_slots: 4,
        }
    }
}

/// Runs every service on `listener` until `shutdown` resolves.
pub async fn serve(
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let own_url = format!("http://{addr}");
    std::fs::create_dir_all(&options.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            options.data_dir.display()
        )
    })?;

    let mut artifact_config = orchestra_artifact_store::Config::for_data_dir(&options.data_dir);
    let mut review_config =
        orchestra_review::Config::for_data_dir(&options.data_dir, &own_url, &own_url);
    let mut scheduler_config =
        orchestra_scheduler::Config::for_data_dir(&options.data_dir, &own_url, &own_url);
    scheduler_config.lease_ttl_ms =
        u64::try_from(options.lease_ttl.as_millis()).unwrap_or(u64::MAX);
    if let Some(url) = &options.database_url {
        artifact_config.database_url = url.clone();
        review_config.database_url = url.clone();
        scheduler_config.database_url = url.clone();
    }

    let artifacts = orchestra_artifact_store::ArtifactStore::open(&artifact_config)
        .await
        .context("artifact store")?;
    let review = orchestra_review::Review::open(&review_config)
        .await
        .context("review service")?;
    let scheduler = orchestra_scheduler::Scheduler::open(&scheduler_config)
        .await
        .context("scheduler")?;
    let executor = orchestra_phase_executor::Executor::new(&orchestra_phase_executor::Config {
        slots: options.executor_slots.max(1),
        ..orchestra_phase_executor::Config::with_urls(&own_url, &own_url)
    })
    .context("phase executor")?;

    let mut routes = ServiceRoutes::new();
    artifacts.add_routes(&mut routes);
    review.add_routes(&mut routes);
    scheduler.add_routes(&mut routes);
    executor.add_routes(&mut routes);

    let (stop_review, review_stopped) = tokio::sync::watch::channel(false);
    let review_outbox = review.spawn_outbox(review_stopped);
    let _scheduler_background = scheduler.spawn_background();
    let _executor = (options.executor_slots > 0).then(|| executor.start());

    let served = orchestra_kit::server::serve(routes, listener, scheduler.draining(shutdown)).await;
    let _ = stop_review.send(true);
    let _ = review_outbox.await;
    served.context("server failed")
}
