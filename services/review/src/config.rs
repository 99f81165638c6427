//! The review service's configuration, read from `ORCHESTRA_REVIEW_*`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use orchestra_kit::config::ConfigError;

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
        }
    }
}

impl Config {
    /// Reads the configuration from the process environment; the error
    /// names the variable at fault.
    pub fn from_env() -> Result<Config, ConfigError> {
        let config: Config = orchestra_kit::config::from_env(ENV_PREFIX)?;
        config.validate()?;
        Ok(config)
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

    /// Checks what serde cannot: the peers are http(s) URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, url) in [
            ("SCHEDULER_URL", &self.scheduler_url),
            ("ARTIFACT_STORE_URL", &self.artifact_store_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError {
                    variable: format!("{ENV_PREFIX}{field}"),
                    problem: format!("expected an http:// or https:// URL, got `{url}`"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let config: Config = orchestra_kit::config::from_vars(ENV_PREFIX, vars)?;
        config.validate()?;
        Ok(config)
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
