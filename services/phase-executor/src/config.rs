//! The executor's configuration, from `ORCHESTRA_EXECUTOR_*` variables.

use std::net::SocketAddr;
use std::time::Duration;

use orchestra_kit::config::{ConfigError, Settings, check_nonzero, check_url};
use orchestra_kit::limits::{DEFAULT_MAX_MESSAGE_BYTES, MessageLimit};
use serde::Deserialize;

use crate::providers::http::HttpTuning;
use crate::providers::settings::ProviderSettings;

/// The prefix of every variable the executor reads.
pub const ENV_PREFIX: &str = "ORCHESTRA_EXECUTOR_";

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
    /// `ORCHESTRA_EXECUTOR_SLOTS`: how many `llm` phases run at once (model
    /// calls are slow and cost money, so this bound is small).
    #[serde(default = "default_slots")]
    pub slots: u32,
    /// `ORCHESTRA_EXECUTOR_FUNCTION_SLOTS`: how many `function` phases run at
    /// once, apart from the `llm` ones (built-in functions are quick, so
    /// they should not queue behind model calls).
    #[serde(default = "default_function_slots")]
    pub function_slots: u32,
    /// `ORCHESTRA_EXECUTOR_ID`: a stable name for this executor (a random
    /// one when unset); the scheduler sees `ID/llm` and `ID/function`, one
    /// per Lease stream.
    #[serde(default)]
    pub id: Option<String>,
    /// `ORCHESTRA_EXECUTOR_MAX_MESSAGE_BYTES`: the largest input or output
    /// (and message) read or sent; default 64 MiB.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// `ORCHESTRA_EXECUTOR_PROVIDER_CONCURRENCY`: model calls in flight at
    /// once per provider, so a wide fan-out queues here instead of tripping
    /// the provider's rate limit all at once.
    #[serde(default = "default_provider_concurrency")]
    pub provider_concurrency: usize,
    /// `ORCHESTRA_EXECUTOR_PROVIDER_RETRIES`: how often one model call is
    /// sent again after a failure that may heal (429, 5xx, a broken
    /// connection or stream, a timeout).
    #[serde(default = "default_provider_retries")]
    pub provider_retries: usize,
    /// `ORCHESTRA_EXECUTOR_PROVIDER_BACKOFF_MS`: the first wait before a
    /// retry; each next one doubles, with jitter. A provider's
    /// `retry-after` is honoured when it asks for longer.
    #[serde(default = "default_provider_backoff_ms")]
    pub provider_backoff_ms: u64,
    /// `ORCHESTRA_EXECUTOR_PROVIDER_MAX_BACKOFF_MS`: the longest wait the
    /// executor chooses between two tries.
    #[serde(default = "default_provider_max_backoff_ms")]
    pub provider_max_backoff_ms: u64,
    /// `ORCHESTRA_EXECUTOR_PROVIDER_CONNECT_TIMEOUT_MS`: how long connecting
    /// to a provider may take.
    #[serde(default = "default_provider_connect_timeout_ms")]
    pub provider_connect_timeout_ms: u64,
    /// `ORCHESTRA_EXECUTOR_PROVIDER_IDLE_TIMEOUT_MS`: the longest silence of
    /// a provider, before its answer starts and within its stream; past it
    /// the call is retried. Generous by default: reasoning models can think
    /// for minutes before their first token. The phase's `timeout` bounds
    /// the whole attempt regardless.
    #[serde(default = "default_provider_idle_timeout_ms")]
    pub provider_idle_timeout_ms: u64,
    /// `ORCHESTRA_EXECUTOR_SCHEMA_REPAIRS`: how many times a model whose
    /// answer breaks the phase's output schema is asked again, with the
    /// violations, before the attempt fails (0 to fail at once).
    #[serde(default = "default_schema_repairs")]
    pub schema_repairs: u32,
    /// The HTTP providers (keys and base URLs), from the providers' own
    /// variables (`ANTHROPIC_API_KEY`, …; see
    /// [`crate::providers::settings`]). `None` reads them from the process
    /// environment when the executor is built.
    #[serde(skip)]
    pub providers: Option<ProviderSettings>,
}

fn default_provider_concurrency() -> usize {
    8
}

fn default_provider_retries() -> usize {
    4
}

fn default_provider_backoff_ms() -> u64 {
    1_000
}

fn default_provider_max_backoff_ms() -> u64 {
    60_000
}

fn default_provider_connect_timeout_ms() -> u64 {
    10_000
}

fn default_provider_idle_timeout_ms() -> u64 {
    300_000
}

fn default_schema_repairs() -> u32 {
    1
}

fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}

impl Settings for Config {
    const PREFIX: &'static str = ENV_PREFIX;

    fn validate(&self) -> Result<(), ConfigError> {
        check_url(&Self::variable("scheduler_url"), &self.scheduler_url)?;
        check_url(
            &Self::variable("artifact_store_url"),
            &self.artifact_store_url,
        )?;
        check_nonzero(
            &Self::variable("slots"),
            u64::from(self.slots),
            "how many llm phases run at once; with 0 the executor would lease none",
        )?;
        check_nonzero(
            &Self::variable("function_slots"),
            u64::from(self.function_slots),
            "how many function phases run at once; with 0 the executor would lease none",
        )?;
        if self.id.as_deref().is_some_and(|id| id.trim().is_empty()) {
            return Err(ConfigError::new(
                Self::variable("id"),
                "is empty; unset it for a generated id, or name this executor",
            ));
        }
        for (field, value, meaning) in [
            (
                "provider_concurrency",
                self.provider_concurrency as u64,
                "model calls in flight per provider; with 0 none would ever start",
            ),
            (
                "provider_backoff_ms",
                self.provider_backoff_ms,
                "the first wait before a retry; with 0 a failing provider would be hammered",
            ),
            (
                "provider_connect_timeout_ms",
                self.provider_connect_timeout_ms,
                "how long connecting may take; with 0 no connection could be made",
            ),
            (
                "provider_idle_timeout_ms",
                self.provider_idle_timeout_ms,
                "the longest silence of a provider; with 0 every call would time out",
            ),
        ] {
            check_nonzero(&Self::variable(field), value, meaning)?;
        }
        orchestra_kit::limits::check(&Self::variable("max_message_bytes"), self.max_message_bytes)
    }

    fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }
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

/// How many `llm` phases run at once unless told otherwise.
pub const DEFAULT_SLOTS: u32 = 4;

/// How many `function` phases run at once unless told otherwise. Functions
/// take microseconds to milliseconds: enough slots that a wide fan-out runs
/// at once, few enough that a flood cannot swamp the process.
pub const DEFAULT_FUNCTION_SLOTS: u32 = 64;

fn default_slots() -> u32 {
    DEFAULT_SLOTS
}

fn default_function_slots() -> u32 {
    DEFAULT_FUNCTION_SLOTS
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

    /// The defaults, talking to the given scheduler and artifact store.
    pub fn with_urls(scheduler_url: &str, artifact_store_url: &str) -> Config {
        Config {
            scheduler_url: scheduler_url.to_owned(),
            artifact_store_url: artifact_store_url.to_owned(),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            slots: default_slots(),
            function_slots: default_function_slots(),
            id: None,
            max_message_bytes: default_max_message_bytes(),
            provider_concurrency: default_provider_concurrency(),
            provider_retries: default_provider_retries(),
            provider_backoff_ms: default_provider_backoff_ms(),
            provider_max_backoff_ms: default_provider_max_backoff_ms(),
            provider_connect_timeout_ms: default_provider_connect_timeout_ms(),
            provider_idle_timeout_ms: default_provider_idle_timeout_ms(),
            schema_repairs: default_schema_repairs(),
            providers: None,
        }
    }

    /// How model calls over HTTP behave.
    pub fn http_tuning(&self) -> HttpTuning {
        HttpTuning {
            concurrency: self.provider_concurrency,
            retries: self.provider_retries,
            backoff: Duration::from_millis(self.provider_backoff_ms),
            max_backoff: Duration::from_millis(self.provider_max_backoff_ms),
            connect_timeout: Duration::from_millis(self.provider_connect_timeout_ms),
            idle_timeout: Duration::from_millis(self.provider_idle_timeout_ms),
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
    fn defaults_suit_a_laptop() {
        let config = read(&[]).expect("defaults");
        assert_eq!(config.slots, 4);
        assert_eq!(config.function_slots, 64);
        assert_eq!(config.listen_addr.port(), 50052);
        assert_eq!(config.http_tuning(), HttpTuning::default());
        assert_eq!(config.schema_repairs, 1);
        assert!(config.providers.is_none());
    }

    #[test]
    fn settings_that_parse_but_make_no_sense_are_refused() {
        for (variable, value) in [
            ("ORCHESTRA_EXECUTOR_SLOTS", "0"),
            ("ORCHESTRA_EXECUTOR_FUNCTION_SLOTS", "0"),
            ("ORCHESTRA_EXECUTOR_FUNCTION_SLOTS", "-1"),
            ("ORCHESTRA_EXECUTOR_SCHEDULER_URL", "ftp://x"),
            ("ORCHESTRA_EXECUTOR_ARTIFACT_STORE_URL", "127.0.0.1:50053"),
            ("ORCHESTRA_EXECUTOR_ID", " "),
            ("ORCHESTRA_EXECUTOR_SLOT", "2"),
            ("ORCHESTRA_EXECUTOR_PROVIDER_CONCURRENCY", "0"),
            ("ORCHESTRA_EXECUTOR_PROVIDER_IDLE_TIMEOUT_MS", "0"),
            ("ORCHESTRA_EXECUTOR_SCHEMA_REPAIRS", "-1"),
        ] {
            let err = read(&[(variable, value)]).expect_err(variable);
            assert_eq!(err.variable, variable);
        }
    }
}
