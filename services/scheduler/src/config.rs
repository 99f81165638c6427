//! The scheduler's configuration, from `ORCHESTRA_SCHEDULER_*` variables.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Everything the scheduler reads at start-up. Every field has a default
/// that works on a laptop.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `ORCHESTRA_SCHEDULER_DATABASE_URL`: `postgres://…` or `sqlite://PATH`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// `ORCHESTRA_SCHEDULER_LISTEN_ADDR`: where the gRPC server listens.
    #[serde(default = "default_listen_addr")]
    pub listen_addr: SocketAddr,
    /// `ORCHESTRA_SCHEDULER_REVIEW_URL`: the review service, for human tasks.
    #[serde(default = "default_review_url")]
    pub review_url: String,
    /// `ORCHESTRA_SCHEDULER_ARTIFACT_STORE_URL`: where run inputs are stored.
    #[serde(default = "default_artifact_store_url")]
    pub artifact_store_url: String,
    /// `ORCHESTRA_SCHEDULER_LEASE_TTL_MS`: how long a lease lasts without a
    /// heartbeat before its attempt is retried.
    #[serde(default = "default_lease_ttl_ms")]
    pub lease_ttl_ms: u64,
    /// `ORCHESTRA_SCHEDULER_POLL_INTERVAL_MS`: how often lease streams and
    /// watchers look for work without being woken (wake-ups come in-process
    /// and, on Postgres, from other replicas by LISTEN/NOTIFY).
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// `ORCHESTRA_SCHEDULER_PROVIDERS`: LLM providers templates may name,
    /// comma-separated, besides `offline`.
    #[serde(default)]
    pub providers: Vec<String>,
}

fn default_database_url() -> String {
    "sqlite://.orchestra/data/scheduler.db".to_owned()
}

fn default_listen_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50051))
}

fn default_review_url() -> String {
    "http://127.0.0.1:50054".to_owned()
}

fn default_artifact_store_url() -> String {
    "http://127.0.0.1:50053".to_owned()
}

fn default_poll_interval_ms() -> u64 {
    500
}

fn default_lease_ttl_ms() -> u64 {
    30_000
}

impl Config {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Config, orchestra_kit::config::ConfigError> {
        orchestra_kit::config::from_env("ORCHESTRA_SCHEDULER_")
    }

    /// The defaults with the database in `dir` and the other services at
    /// the given URLs, for the all-in-one process and tests.
    pub fn for_data_dir(dir: &Path, review_url: &str, artifact_store_url: &str) -> Config {
        Config {
            database_url: format!("sqlite://{}", dir.join("scheduler.db").display()),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            review_url: review_url.to_owned(),
            artifact_store_url: artifact_store_url.to_owned(),
            lease_ttl_ms: default_lease_ttl_ms(),
            poll_interval_ms: default_poll_interval_ms(),
            providers: Vec::new(),
        }
    }

    /// The polling interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(10))
    }

    /// The lease time-to-live.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms.max(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_without_any_variable() {
        let config: Config =
            orchestra_kit::config::from_vars("ORCHESTRA_SCHEDULER_", Vec::new()).expect("defaults");
        assert_eq!(config.listen_addr.port(), 50051);
        assert!(config.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn a_bad_ttl_names_its_variable() {
        let err = orchestra_kit::config::from_vars::<Config>(
            "ORCHESTRA_SCHEDULER_",
            vec![("ORCHESTRA_SCHEDULER_LEASE_TTL_MS".into(), "soon".into())],
        )
        .expect_err("not a number");
        assert_eq!(err.variable, "ORCHESTRA_SCHEDULER_LEASE_TTL_MS");
    }
}
