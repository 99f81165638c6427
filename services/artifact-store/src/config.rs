//! The service's configuration, read from `ORCHESTRA_ARTIFACT_STORE_*`
//! variables. Every field has a default that works on a laptop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use orchestra_kit::config::{ConfigError, Settings};
use orchestra_kit::limits::{DEFAULT_MAX_MESSAGE_BYTES, MessageLimit};
use serde::Deserialize;

/// The prefix of every variable this service reads.
pub const ENV_PREFIX: &str = "ORCHESTRA_ARTIFACT_STORE_";

/// The largest inline limit accepted: content above it always goes to the
/// blob store, and a gRPC message must still carry a whole Put.
const MAX_INLINE_LIMIT: usize = 16 * 1024 * 1024;

/// How the artifact store runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Config {
    /// `postgres://…` (tables in the schema `artifact_store`) or
    /// `sqlite://PATH`. Variable `ORCHESTRA_ARTIFACT_STORE_DATABASE_URL`.
    #[serde(default = "default_database_url")]
    pub database_url: String,
    /// The folder that holds content larger than the inline limit, one file
    /// per sha256. Variable `ORCHESTRA_ARTIFACT_STORE_BLOB_DIR`.
    #[serde(default = "default_blob_dir")]
    pub blob_dir: PathBuf,
    /// Where the gRPC server listens. Variable
    /// `ORCHESTRA_ARTIFACT_STORE_LISTEN_ADDR`.
    #[serde(
        default = "default_listen_addr",
        deserialize_with = "deserialize_listen_addr"
    )]
    pub listen_addr: SocketAddr,
    /// Content up to this many bytes is kept in the database and returned
    /// inline by GetArtifact; larger content goes to the blob store.
    /// Variable `ORCHESTRA_ARTIFACT_STORE_INLINE_LIMIT_BYTES`.
    #[serde(default = "default_inline_limit_bytes")]
    pub inline_limit_bytes: usize,
    /// The largest artifact (and message) accepted or sent, in bytes;
    /// larger content is refused naming this limit. Default 64 MiB.
    /// Variable `ORCHESTRA_ARTIFACT_STORE_MAX_MESSAGE_BYTES`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
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
    /// Reads the configuration from the environment and checks it; the error
    /// names the variable at fault.
    pub fn from_env() -> Result<Config, ConfigError> {
        orchestra_kit::config::load()
    }

    /// The message limit, with the variable that sets it.
    pub fn message_limit(&self) -> MessageLimit {
        MessageLimit::new(self.max_message_bytes, Self::variable("max_message_bytes"))
    }

    /// The configuration for one data folder, as the all-in-one process uses:
    /// `DIR/artifact_store.db`, blobs in `DIR/blobs`, any free local port.
    pub fn for_data_dir(dir: &Path) -> Config {
        Config {
            database_url: format!("sqlite://{}", dir.join("artifact_store.db").display()),
            blob_dir: dir.join("blobs"),
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            inline_limit_bytes: default_inline_limit_bytes(),
            max_message_bytes: default_max_message_bytes(),
        }
    }

    /// Checks what serde cannot: values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.database_url.trim().is_empty() {
            return Err(problem("DATABASE_URL", "must name a database"));
        }
        if self.inline_limit_bytes > MAX_INLINE_LIMIT {
            return Err(problem(
                "INLINE_LIMIT_BYTES",
                &format!("must be at most {MAX_INLINE_LIMIT}"),
            ));
        }
        if self.blob_dir.as_os_str().is_empty() {
            return Err(problem("BLOB_DIR", "must name a folder"));
        }
        orchestra_kit::limits::check(&Self::variable("max_message_bytes"), self.max_message_bytes)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: default_database_url(),
            blob_dir: default_blob_dir(),
            listen_addr: default_listen_addr(),
            inline_limit_bytes: default_inline_limit_bytes(),
            max_message_bytes: default_max_message_bytes(),
        }
    }
}

fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}

fn problem(field: &str, what: &str) -> ConfigError {
    ConfigError {
        variable: format!("{ENV_PREFIX}{field}"),
        problem: what.to_owned(),
    }
}

fn default_database_url() -> String {
    "sqlite://.orchestra/data/artifact_store.db".to_owned()
}

fn default_blob_dir() -> PathBuf {
    PathBuf::from(".orchestra/data/blobs")
}

fn default_listen_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50053))
}

/// Parses `listen_addr` with an error that names its variable: envy names
/// the field only for numbers and booleans, which it parses itself, so this
/// repeats envy's wording that the kit reads the name from.
fn deserialize_listen_addr<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(|error| {
        serde::de::Error::custom(format!(
            "{error}, expected HOST:PORT such as 127.0.0.1:50053, \
             while parsing value '{text}' provided by listen_addr"
        ))
    })
}

fn default_inline_limit_bytes() -> usize {
    64 * 1024
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
    fn typos_and_tiny_limits_are_refused() {
        let err = read(&[("ORCHESTRA_ARTIFACT_STORE_BLOB_DIRECTORY", "/b")]).expect_err("typo");
        assert_eq!(err.variable, "ORCHESTRA_ARTIFACT_STORE_BLOB_DIRECTORY");
        assert!(
            err.problem
                .contains("did you mean ORCHESTRA_ARTIFACT_STORE_BLOB_DIR?"),
            "{}",
            err.problem
        );
        let err = read(&[("ORCHESTRA_ARTIFACT_STORE_MAX_MESSAGE_BYTES", "0")]).expect_err("zero");
        assert_eq!(err.variable, "ORCHESTRA_ARTIFACT_STORE_MAX_MESSAGE_BYTES");
    }

    #[test]
    fn every_field_has_a_default() {
        assert_eq!(read(&[]).expect("defaults"), Config::default());
        assert_eq!(Config::default().listen_addr.port(), 50053);
    }

    #[test]
    fn variables_override_defaults() {
        let config = read(&[
            ("ORCHESTRA_ARTIFACT_STORE_BLOB_DIR", "/tmp/b"),
            ("ORCHESTRA_ARTIFACT_STORE_INLINE_LIMIT_BYTES", "10"),
        ])
        .expect("valid");
        assert_eq!(config.blob_dir, PathBuf::from("/tmp/b"));
        assert_eq!(config.inline_limit_bytes, 10);
    }

    #[test]
    fn errors_name_the_variable() {
        let err = read(&[("ORCHESTRA_ARTIFACT_STORE_LISTEN_ADDR", "nowhere")]).expect_err("bad");
        assert_eq!(err.variable, "ORCHESTRA_ARTIFACT_STORE_LISTEN_ADDR");
        let err = read(&[("ORCHESTRA_ARTIFACT_STORE_DATABASE_URL", " ")]).expect_err("empty");
        assert_eq!(err.variable, "ORCHESTRA_ARTIFACT_STORE_DATABASE_URL");
    }

    #[test]
    fn a_data_dir_holds_database_and_blobs() {
        let config = Config::for_data_dir(Path::new("/data"));
        assert_eq!(config.database_url, "sqlite:///data/artifact_store.db");
        assert_eq!(config.blob_dir, PathBuf::from("/data/blobs"));
        assert_eq!(config.listen_addr.port(), 0);
        assert_eq!(config.inline_limit_bytes, 65536);
    }
}
