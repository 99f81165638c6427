//! Why a benchmark could not be run.

use std::time::Duration;

/// Everything that stops the benchmark; each says what to do where it can.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A service binary is not where the benchmark looks for it.
    #[error(
        "{binary} not found in {dir}: build the binaries first (`cargo build --release --bins`) or pass --bin-dir"
    )]
    MissingBinary {
        /// The binary's name.
        binary: String,
        /// Where it was looked for.
        dir: String,
    },
    /// A process could not be started.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// Which process.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The mesh did not answer in time after it was started.
    #[error("{what} did not start serving within {after:?}")]
    NotServing {
        /// Which configuration.
        what: String,
        /// How long the benchmark waited.
        after: Duration,
    },
    /// A gRPC call failed.
    #[error("{call}: {status}")]
    Rpc {
        /// Which call.
        call: &'static str,
        /// The status the server returned.
        status: Box<tonic::Status>,
    },
    /// A run ended other than completed.
    #[error("run {run_id} ended {status} instead of completing")]
    RunFailed {
        /// The run.
        run_id: String,
        /// How it ended.
        status: String,
    },
    /// A repetition outran the benchmark's time limit.
    #[error("{workload} did not finish within {limit:?} ({progress})")]
    Timeout {
        /// Which workload.
        workload: String,
        /// The limit (`--timeout`).
        limit: Duration,
        /// How far it got.
        progress: String,
    },
    /// Postgres could not be reached or queried for its counters.
    #[error("postgres: {0}")]
    Postgres(String),
    /// A local file or socket operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The benchmark's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds the call's name to a failed gRPC call.
pub(crate) fn rpc(call: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Rpc {
        call,
        status: Box::new(status),
    }
}
