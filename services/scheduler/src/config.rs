//! The scheduler's configuration, from `ORCHESTRA_SCHEDULER_*` variables.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use orchestra_kit::config::{ConfigError, Settings, check_nonzero, check_url};
use orchestra_kit::limits::{DEFAULT_MAX_MESSAGE_BYTES, MessageLimit};
use serde::Deserialize;

/// The prefix of every variable the scheduler reads.
pub const ENV_PREFIX: &str = "ORCHESTRA_SCHEDULER_";

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
    /// `ORCHESTRA_SCHEDULER_POLL_INTERVAL_MS`: the safety sweep: how often
    /// an idle lease stream, the lease sweeper and the outbox dispatcher
    /// look in the database without being woken. Work is found by wake-ups (in-process and, on
    /// Postgres, from other replicas by LISTEN/NOTIFY) and timers, so this
    /// only bounds how long a missed wake-up can delay it. Run watchers
    /// never poll.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// `ORCHESTRA_SCHEDULER_PROVIDERS`: LLM providers templates may name,
    /// comma-separated, besides `offline`.
    #[serde(default)]
    pub providers: Vec<String>,
    /// `ORCHESTRA_SCHEDULER_MAX_MESSAGE_BYTES`: the largest run input (and
    /// message) accepted or sent; larger inputs go through the artifact
    /// store's streaming upload. Default 64 MiB.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
}

fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
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
    10_000
}

fn default_lease_ttl_ms() -> u64 {
    30_000
}

impl Settings for Config {
    const PREFIX: &'static str = ENV_PREFIX;

    fn validate(&self) -> Result<(), ConfigError> {
        if self.database_url.trim().is_empty() {
            return Err(ConfigError::new(
                Self::variable("database_url"),
                "must name a database: postgres://… or sqlite://PATH",
            ));
        }
        check_url(&Self::variable("review_url"), &self.review_url)?;
        check_url(
            &Self::variable("artifact_store_url"),
            &self.artifact_store_url,
        )?;
        check_nonzero(
            &Self::variable("lease_ttl_ms"),
            self.lease_ttl_ms,
            "a lease of 0 ms expires before any executor can heartbeat",
        )?;
        check_nonzero(
            &Self::variable("poll_interval_ms"),
            self.poll_interval_ms,
            "polling every 0 ms would spin",
        )?;
        orchestra_kit::limits::check(&Self::variable("max_message_bytes"), self.max_message_bytes)
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}

impl Config {
    /// Reads the configuration from the environment and checks it; the error
    /// names the variable at fault.
    pub fn from_env() -> Result<Config, ConfigError> {
        orchestra_kit::config::load()
    }

    /// The message limit, with the variable that sets it.
    pub fn message_limit(&self) -> MessageLimit {
        MessageLimit::new(self.max_message_bytes, Self::variable("max_message_bytes"))
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
            max_message_bytes: default_max_message_bytes(),
        }
    }

    /// The safety sweep's interval.
    pub fn sweep_interval(&self) -> Duration {
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

    fn read(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        orchestra_kit::config::load_from(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn defaults_work_without_any_variable() {
        let config = read(&[]).expect("defaults");
        assert_eq!(config.listen_addr.port(), 50051);
        assert!(config.database_url.starts_with("sqlite://"));
        assert_eq!(config.max_message_bytes, 64 * 1024 * 1024);
    }

    #[test]
    fn a_bad_ttl_names_its_variable() {
        let err = read(&[("ORCHESTRA_SCHEDULER_LEASE_TTL_MS", "soon")]).expect_err("not a number");
        assert_eq!(err.variable, "ORCHESTRA_SCHEDULER_LEASE_TTL_MS");
    }

    #[test]
    fn settings_that_parse_but_make_no_sense_are_refused() {
        for (variable, value) in [
            ("ORCHESTRA_SCHEDULER_LEASE_TTL_MS", "0"),
            ("ORCHESTRA_SCHEDULER_POLL_INTERVAL_MS", "0"),
            ("ORCHESTRA_SCHEDULER_REVIEW_URL", "not-a-url"),
            ("ORCHESTRA_SCHEDULER_ARTIFACT_STORE_URL", "ftp://x"),
            ("ORCHESTRA_SCHEDULER_MAX_MESSAGE_BYTES", "0"),
            ("ORCHESTRA_SCHEDULER_DATABASE_URL", ""),
        ] {
            let err = read(&[(variable, value)]).expect_err(variable);
            assert_eq!(err.variable, variable);
        }
    }

    #[test]
    fn a_typo_is_refused_naming_the_setting_meant() {
        let err = read(&[("ORCHESTRA_SCHEDULER_DATABSE_URL", "postgres://x")]).expect_err("typo");
        assert_eq!(err.variable, "ORCHESTRA_SCHEDULER_DATABSE_URL");
        assert!(
            err.problem
                .contains("did you mean ORCHESTRA_SCHEDULER_DATABASE_URL?"),
            "{}",
            err.problem
        );
    }
}
