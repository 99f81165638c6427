//! Every Orchestra service in one process, on one port: the scheduler, the
//! artifact store, the review service and a phase executor, each the same
//! code that runs as its own binary in a cluster. Peers reach each other
//! over gRPC on the shared port, exactly as they would across a network.
//!
//! State lives under one data directory (a SQLite file per service and the
//! blob store) unless a Postgres URL is given, in which case each service
//! keeps its tables in its own schema of that database.
//!
//! The same port serves browsers: grpc-web calls, and the built web client
//! (`clients/web/dist`) at `/`, with the origins allowed to call from other
//! sites read from `ORCHESTRA_WEB_ORIGINS` ([`orchestra_kit::web`]).
//!
//! The options are `orchestra up`'s flags, so a fault in them names the
//! flag (`--data-dir`, `--database-url`), not a service's variable.

use std::future::Future;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use orchestra_kit::config::ConfigError;
use orchestra_kit::limits::{DEFAULT_MAX_MESSAGE_BYTES, MessageLimit};
use orchestra_kit::server::ServiceRoutes;
use orchestra_kit::web::WebConfig;
use orchestra_phase_executor::providers::settings::ProviderSettings;
use tokio::net::TcpListener;

/// Why the all-in-one process could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option cannot be used; the message names its flag.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A service failed to open for another reason (a migration, say).
    #[error("{service}: {message}")]
    Service {
        /// Which service.
        service: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The gRPC server failed.
    #[error("server failed: {0}")]
    Server(#[from] tonic::transport::Error),
}

/// The flag `orchestra up` reads the database URL from.
const DATABASE_FLAG: &str = "--database-url (ORCHESTRA_DATABASE_URL)";

/// A service's start-up error as `orchestra up` reports it: configuration
/// faults name `up`'s flag instead of the service's own variable.
fn service_error(
    service: &'static str,
    error: impl std::error::Error + 'static,
    options: &Options,
) -> Error {
    match orchestra_kit::start::config_error(&error) {
        Some(config) if config.variable.ends_with("_DATABASE_URL") => {
            Error::Config(ConfigError::new(
                DATABASE_FLAG,
                relabel(&config.problem, &config.variable, DATABASE_FLAG),
            ))
        }
        Some(config) if config.variable.ends_with("_BLOB_DIR") => Error::Config(ConfigError::new(
            "--data-dir",
            relabel(&config.problem, &config.variable, "--data-dir").replace(
                &options.data_dir.join("blobs").display().to_string(),
                &options.data_dir.display().to_string(),
            ),
        )),
        Some(config) => Error::Config(ConfigError::new(
            config.variable.clone(),
            config.problem.clone(),
        )),
        None => Error::Service {
            service,
            message: error.to_string(),
        },
    }
}

fn relabel(problem: &str, variable: &str, flag: &str) -> String {
    problem.replace(&format!("set {variable}"), &format!("set {flag}"))
}

/// How to run the mesh.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where SQLite files and blobs live.
    pub data_dir: PathBuf,
    /// A Postgres URL for every service instead of SQLite files.
    pub database_url: Option<String>,
    /// Lease time-to-live for the scheduler.
    pub lease_ttl: Duration,
    /// `llm` phases the built-in executor runs at once (0: no executor).
    pub executor_slots: u32,
    /// `function` phases the built-in executor runs at once, besides the
    /// `llm` ones.
    pub executor_function_slots: u32,
    /// The largest run input, form or artifact one message may carry, for
    /// every service and channel.
    pub max_message_bytes: usize,
    /// The built web client's folder and the origins allowed to call from
    /// other sites; `None` reads them from `ORCHESTRA_WEB_*` on open.
    pub web: Option<WebConfig>,
    /// The LLM providers the built-in executor calls, which templates may
    /// then name; `None` reads them from the environment (`*_API_KEY`,
    /// `ORCHESTRA_PROVIDER_*`) on open.
    pub providers: Option<ProviderSettings>,
}

impl Options {
    /// Defaults for a laptop: SQLite under `data_dir`, a 30 s lease, 4 slots
    /// for model calls and 64 for functions (the executor's own defaults).
    pub fn new(data_dir: PathBuf) -> Options {
        Options {
            data_dir,
            database_url: None,
            lease_ttl: Duration::from_secs(30),
            executor_slots: orchestra_phase_executor::config::DEFAULT_SLOTS,
            executor_function_slots: orchestra_phase_executor::config::DEFAULT_FUNCTION_SLOTS,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            web: None,
            providers: None,
        }
    }

    /// Checks what the flags' types do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_ttl.is_zero() {
            return Err(ConfigError::new(
                "--lease-ttl",
                "must be at least 1 second; a lease of 0 expires before any heartbeat",
            ));
        }
        if self
            .database_url
            .as_deref()
            .is_some_and(|url| url.trim().is_empty())
        {
            return Err(ConfigError::new(
                DATABASE_FLAG,
                "is empty; unset it for SQLite under --data-dir, or give postgres://…",
            ));
        }
        orchestra_kit::limits::check("max_message_bytes", self.max_message_bytes)
    }
}

/// `http://ADDR/`, with a wildcard address replaced by loopback.
fn browser_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, addr.port()))
}

/// Runs every service on `listener` until `shutdown` resolves: [`open`],
/// then [`Standalone::serve`].
pub async fn serve(
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    open(options, listener).await?.serve(shutdown).await
}

/// Every service opened (databases migrated, blob folder made) and mounted
/// on one bound listener, ready to serve. A fault in the options or the
/// data has been found by the time this exists, so `orchestra up` says it
/// is up only once it is.
pub struct Standalone {
    addr: SocketAddr,
    listener: TcpListener,
    routes: ServiceRoutes,
    review: orchestra_review::Review,
    scheduler: orchestra_scheduler::Scheduler,
    /// The built-in executor, unless `executor_slots` is 0.
    executor: Option<orchestra_phase_executor::Executor>,
    /// The folder the web client is served from.
    web_dir: PathBuf,
}

/// Opens every service for `listener`'s address; see [`Standalone`].
pub async fn open(options: Options, listener: TcpListener) -> Result<Standalone, Error> {
    options.validate()?;
    let web = match &options.web {
        Some(web) => {
            web.validate()?;
            web.clone()
        }
        None => WebConfig::from_env()?,
    };
    let addr: SocketAddr = listener.local_addr().map_err(|e| Error::Service {
        service: "listener",
        message: e.to_string(),
    })?;
    let own_url = format!("http://{addr}");
    std::fs::create_dir_all(&options.data_dir)
        .map_err(|e| ConfigError::folder("--data-dir", &options.data_dir, &e))?;

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
    // One limit for every service and channel, as a cluster would set it.
    let limit = options.max_message_bytes;
    artifact_config.max_message_bytes = limit;
    review_config.max_message_bytes = limit;
    scheduler_config.max_message_bytes = limit;

    let executor = orchestra_phase_executor::Executor::new(&orchestra_phase_executor::Config {
        slots: options.executor_slots.max(1),
        function_slots: options.executor_function_slots.max(1),
        max_message_bytes: limit,
        providers: options.providers.clone(),
        ..orchestra_phase_executor::Config::with_urls(&own_url, &own_url)
    })
    .map_err(|e| service_error("phase executor", e, &options))?;
    // Templates may name every provider the built-in executor can call
    // (those whose keys are in the environment).
    if options.executor_slots > 0 {
        scheduler_config.providers.extend(executor.provider_names());
    }

    let artifacts = orchestra_artifact_store::ArtifactStore::open(&artifact_config)
        .await
        .map_err(|e| service_error("artifact store", e, &options))?;
    let review = orchestra_review::Review::open(&review_config)
        .await
        .map_err(|e| service_error("review service", e, &options))?;
    let scheduler = orchestra_scheduler::Scheduler::open(&scheduler_config)
        .await
        .map_err(|e| service_error("scheduler", e, &options))?;

    let mut routes = ServiceRoutes::new();
    artifacts.add_routes(&mut routes);
    review.add_routes(&mut routes);
    scheduler.add_routes(&mut routes);
    executor.add_routes(&mut routes);
    // Each service recorded its own variable; on one port the limit is up's.
    routes.set_message_limit(MessageLimit::new(limit, "orchestra up"));
    routes.set_web(&web);
    Ok(Standalone {
        addr,
        listener,
        routes,
        review,
        scheduler,
        executor: (options.executor_slots > 0).then_some(executor),
        web_dir: web.dir,
    })
}

impl Standalone {
    /// The address every service is served on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address a browser on this machine opens to reach the web
    /// client: the listening address, with a wildcard (`0.0.0.0`, `[::]`)
    /// replaced by loopback, which browsers do not accept as a host.
    pub fn browser_url(&self) -> String {
        browser_url(self.addr)
    }

    /// Whether the web client's folder holds a built client; until it does,
    /// `/` shows a page saying how to build it.
    pub fn web_client_built(&self) -> bool {
        self.web_dir.join("index.html").is_file()
    }

    /// The folder the web client is served from.
    pub fn web_dir(&self) -> &Path {
        &self.web_dir
    }

    /// Starts every service's background loops and serves until `shutdown`
    /// resolves; then ends open streams and stops the loops.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let mut background = self.review.spawn_background();
        if let Some(executor) = &self.executor {
            background.extend(executor.start());
        }
        background.extend(self.scheduler.spawn_background());
        let served = orchestra_kit::server::serve(
            self.routes,
            self.listener,
            self.scheduler.draining(shutdown),
        )
        .await;
        background.stop().await;
        Ok(served?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_address_opens_as_loopback() {
        let url = |text: &str| browser_url(text.parse().expect("address"));
        assert_eq!(url("127.0.0.1:50051"), "http://127.0.0.1:50051/");
        assert_eq!(url("0.0.0.0:8080"), "http://127.0.0.1:8080/");
        assert_eq!(url("[::]:8080"), "http://[::1]:8080/");
        assert_eq!(url("192.168.1.5:50051"), "http://192.168.1.5:50051/");
    }
}
