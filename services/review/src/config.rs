//! The review service's configuration, read from `ORCHESTRA_REVIEW_*`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use orchestra_kit::config::{ConfigError, Settings, check_url};
use orchestra_kit::limits::{DEFAULT_MAX_MESSAGE_BYTES, MessageLimit};

/// The environment prefix of every variable.
pub const ENV_PREFIX: &str = "ORCHESTRA_REVIEW_";

/// How the review service runs. Every field has a laptop default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Config {
    /// `ORCHESTRA_REVIEW_DATABASE_URL`: `postgres://…` (tables in schema
    /// `review`) or `sqlite://PATH`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// `ORCHESTRA_REVIEW_LISTEN_ADDR`: where the gRPC server listens.
    #[serde(default = "default_listen_addr", deserialize_with = "socket_addr")]
    pub listen_addr: SocketAddr,
    /// `ORCHESTRA_REVIEW_SCHEDULER_URL`: the scheduler's TaskService, where
    /// resolutions are delivered.
    #[serde(default = "default_scheduler_url")]
    pub scheduler_url: String,
    /// `ORCHESTRA_REVIEW_ARTIFACT_STORE_URL`: the artifact store, where
    /// submissions and decisions are stored and items are read.
    #[serde(default = "default_artifact_store_url")]
    pub artifact_store_url: String,
    /// `ORCHESTRA_REVIEW_MAX_MESSAGE_BYTES`: the largest form or decision
    /// (and message) accepted or sent; default 64 MiB.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
}

fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}

impl Settings for Config {
    const PREFIX: &'static str = ENV_PREFIX;

    fn validate(&self) -> Result<(), ConfigError> {
        Config::validate(self)
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
}

fn default_database_url() -> String {
    "sqlite://.orchestra/data/review.db".to_owned()
}

fn default_listen_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 50054))
}

/// Parses `HOST:PORT`. envy's own error for a `SocketAddr` does not name
/// the variable, so this one ends as envy's do: "… provided by FIELD".
fn socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        D::Error::custom(format!(
            "expected HOST:PORT such as 127.0.0.1:50054, got `{text}` provided by listen_addr"
        ))
    })
}

fn default_scheduler_url() -> String {
    "http://127.0.0.1:50051".to_owned()
}

fn default_artifact_store_url() -> String {
    "http://127.0.0.1:50053".to_owned()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: default_database_url(),
            listen_addr: default_listen_addr(),
            scheduler_url: default_scheduler_url(),
            artifact_store_url: default_artifact_store_url(),
            max_message_bytes: default_max_message_bytes(),
        }
    }
}

impl Config {
    /// Reads the configuration from the process environment; the error
    /// names the variable at fault.
    pub fn from_env() -> Result<Config, ConfigError> {
        orchestra_kit::config::load()
    }

    /// The message limit, with the variable that sets it.
    pub fn message_limit(&self) -> MessageLimit {
        MessageLimit::new(self.max_message_bytes, Self::variable("max_message_bytes"))
    }

    /// The configuration of an embedded review service: its SQLite file in
    /// `dir`, and the given peers.
    pub fn for_data_dir(dir: &Path, scheduler_url: &str, artifact_store_url: &str) -> Config {
        Config {
            database_url: format!("sqlite://{}", dir.join("review.db").display()),
            scheduler_url: scheduler_url.to_owned(),
            artifact_store_url: artifact_store_url.to_owned(),
            ..Config::default()
        }
    }

    /// Checks what serde cannot: the database is named, the peers are
    /// http(s) URLs, the message limit leaves room for a form.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.database_url.trim().is_empty() {
            return Err(ConfigError::new(
                Self::variable("database_url"),
                "must name a database: postgres://… or sqlite://PATH",
            ));
        }
        check_url(&Self::variable("scheduler_url"), &self.scheduler_url)?;
        check_url(
            &Self::variable("artifact_store_url"),
            &self.artifact_store_url,
        )?;
        orchestra_kit::limits::check(&Self::variable("max_message_bytes"), self.max_message_bytes)
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
    fn the_clis_review_server_is_not_a_typo() {
        let config = read(&[("ORCHESTRA_REVIEW_SERVER", "http://elsewhere:50054")])
            .expect("ORCHESTRA_REVIEW_SERVER is the CLI's");
        assert_eq!(config, Config::default());
        let err = read(&[("ORCHESTRA_REVIEW_SCHEDULER_ULR", "http://x:1")]).expect_err("typo");
        assert!(
            err.problem
                .contains("did you mean ORCHESTRA_REVIEW_SCHEDULER_URL?"),
            "{}",
            err.problem
        );
    }

    #[test]
    fn defaults_suit_a_laptop() {
        let config = read(&[]).expect("defaults");
        assert_eq!(config, Config::default());
        assert_eq!(config.listen_addr.port(), 50054);
    }

    #[test]
    fn bad_variables_are_named() {
        let err = read(&[("ORCHESTRA_REVIEW_LISTEN_ADDR", "here")]).expect_err("bad addr");
        assert_eq!(err.variable, "ORCHESTRA_REVIEW_LISTEN_ADDR");
        let err =
            read(&[("ORCHESTRA_REVIEW_SCHEDULER_URL", "localhost:1")]).expect_err("no scheme");
        assert_eq!(err.variable, "ORCHESTRA_REVIEW_SCHEDULER_URL");
    }

    #[test]
    fn a_data_dir_holds_the_sqlite_file() {
        let config = Config::for_data_dir(Path::new("/d"), "http://s", "http://a");
        assert_eq!(config.database_url, "sqlite:///d/review.db");
        assert_eq!(config.scheduler_url, "http://s");
    }
}
