//! The gateway's configuration, read from `ORCHESTRA_GATEWAY_*`: where it
//! listens and where each service it forwards to runs. The browser-facing
//! settings (allowed origins, the web client's folder) are the kit's
//! `ORCHESTRA_WEB_*`, shared with `orchestra up`.

use std::net::{Ipv4Addr, SocketAddr};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use orchestra_kit::config::{ConfigError, Settings, check_url};

/// The environment prefix of every variable.
pub const ENV_PREFIX: &str = "ORCHESTRA_GATEWAY_";

/// How the gateway runs. Every field has a laptop default: the services'
/// own default ports on loopback.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Config {
    /// `ORCHESTRA_GATEWAY_LISTEN_ADDR`: where browsers and gRPC clients
    /// reach the gateway.
    #[serde(default = "default_listen_addr", deserialize_with = "socket_addr")]
    pub listen_addr: SocketAddr,
    /// `ORCHESTRA_GATEWAY_SCHEDULER_URL`: the scheduler, which owns
    /// TemplateService and RunService.
    #[serde(default = "default_scheduler_url")]
    pub scheduler_url: String,
    /// `ORCHESTRA_GATEWAY_ARTIFACT_STORE_URL`: the artifact store, which
    /// owns ArtifactService.
    #[serde(default = "default_artifact_store_url")]
    pub artifact_store_url: String,
    /// `ORCHESTRA_GATEWAY_REVIEW_URL`: the review service, which owns
    /// ReviewService.
    #[serde(default = "default_review_url")]
    pub review_url: String,
    /// `ORCHESTRA_GATEWAY_EXECUTOR_URL`: a phase executor, which owns
    /// ProviderService (the providers and their labels).
    #[serde(default = "default_executor_url")]
    pub executor_url: String,
}

fn default_listen_addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))
}

fn default_scheduler_url() -> String {
    "http://127.0.0.1:50051".to_owned()
}

fn default_executor_url() -> String {
    "http://127.0.0.1:50052".to_owned()
}

fn default_artifact_store_url() -> String {
    "http://127.0.0.1:50053".to_owned()
}

fn default_review_url() -> String {
    "http://127.0.0.1:50054".to_owned()
}

/// Parses `HOST:PORT`, ending its error as envy's do ("… provided by
/// FIELD") so the kit names the variable.
fn socket_addr<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|_| {
        D::Error::custom(format!(
            "expected HOST:PORT such as 127.0.0.1:8080, got `{text}` provided by listen_addr"
        ))
    })
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen_addr: default_listen_addr(),
            scheduler_url: default_scheduler_url(),
            artifact_store_url: default_artifact_store_url(),
            review_url: default_review_url(),
            executor_url: default_executor_url(),
        }
    }
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

impl Config {
    /// Reads the configuration from the process environment; the error
    /// names the variable at fault.
    pub fn from_env() -> Result<Config, ConfigError> {
        orchestra_kit::config::load()
    }

    /// A gateway in front of the given services, listening anywhere.
    pub fn with_urls(
        scheduler: &str,
        artifact_store: &str,
        review: &str,
        executor: &str,
    ) -> Config {
        Config {
            listen_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            scheduler_url: scheduler.to_owned(),
            artifact_store_url: artifact_store.to_owned(),
            review_url: review.to_owned(),
            executor_url: executor.to_owned(),
        }
    }

    /// Checks that every peer is an http(s) URL.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_url(&Self::variable("scheduler_url"), &self.scheduler_url)?;
        check_url(
            &Self::variable("artifact_store_url"),
            &self.artifact_store_url,
        )?;
        check_url(&Self::variable("review_url"), &self.review_url)?;
        check_url(&Self::variable("executor_url"), &self.executor_url)
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
    fn defaults_point_at_the_services_default_ports() {
        let config = read(&[]).expect("defaults");
        assert_eq!(config, Config::default());
        assert_eq!(config.listen_addr.port(), 8080);
        assert_eq!(config.review_url, "http://127.0.0.1:50054");
    }

    #[test]
    fn bad_variables_are_named() {
        let err = read(&[("ORCHESTRA_GATEWAY_LISTEN_ADDR", "here")]).expect_err("bad addr");
        assert_eq!(err.variable, "ORCHESTRA_GATEWAY_LISTEN_ADDR");
        let err = read(&[("ORCHESTRA_GATEWAY_REVIEW_URL", "review:50054")]).expect_err("no scheme");
        assert_eq!(err.variable, "ORCHESTRA_GATEWAY_REVIEW_URL");
        let err = read(&[("ORCHESTRA_GATEWAY_SCHEDULER_ULR", "http://x:1")]).expect_err("typo");
        assert!(
            err.problem.contains("ORCHESTRA_GATEWAY_SCHEDULER_URL"),
            "{}",
            err.problem
        );
    }
}
