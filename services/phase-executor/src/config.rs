//! The executor's configuration, from `ORCHESTRA_EXECUTOR_*` variables.

use std::net::SocketAddr;

use serde::Deserialize;

/// Everything the executor reads at start-up; the defaults work on a laptop.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `ORCHESTRA_EXECUTOR_SCHEDULER_URL`: where tasks are leased.
    #[serde(default = "default_scheduler_url")]
    pub scheduler_url: String,
    /// `ORCHESTRA_EXECUTOR_ARTIFACT_STORE_URL`: where inputs are read and
    /// outputs stored.
    #[serde(default = "default_artifact_store_url")]
    pub artifact_store_url: String,
    /// `ORCHESTRA_EXECUTOR_LISTEN_ADDR`: where ProviderService and health listen.
    #[serde(default = "default_listen_addr")]
    pub listen_addr: SocketAddr,
    /// `ORCHESTRA_EXECUTOR_SLOTS`: how many phases run at once.
    #[serde(default = "default_slots")]
    pub slots: u32,
    /// `ORCHESTRA_EXECUTOR_ID`: a stable name for this executor (a random
    /// one when unset).
    #[serde(default)]
    pub id: Option<String>,
}

fn default_scheduler_url() -> String {
    "http://127.0.0.1:50051".to_owned()
}

fn default_artifact_store_url() -> String {
    "http://127.0.0.1:50053".to_owned()
}

fn default_listen_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50052))
}

fn default_slots() -> u32 {
    4
}

impl Config {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Result<Config, orchestra_kit::config::ConfigError> {
        orchestra_kit::config::from_env("ORCHESTRA_EXECUTOR_")
    }

    /// The defaults, talking to the given scheduler and artifact store.
    pub fn with_urls(scheduler_url: &str, artifact_store_url: &str) -> Config {
        Config {
            scheduler_url: scheduler_url.to_owned(),
            artifact_store_url: artifact_store_url.to_owned(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            slots: default_slots(),
            id: None,
        }
    }

    /// This executor's id.
    pub fn executor_id(&self) -> String {
        self.id.clone().unwrap_or_else(|| {
            format!(
                "executor-{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
            )
        })
    }
}
