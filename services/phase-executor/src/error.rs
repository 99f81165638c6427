//! The executor's errors: why an attempt failed, and why the service could
//! not start.

use orchestra_proto::v1 as pb;

/// Why one attempt of a phase failed, as reported to the scheduler.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AttemptFailure {
    /// What went wrong, for people.
    pub message: String,
    /// Whether a new attempt could succeed.
    pub retryable: bool,
    /// Where the output broke its schema.
    pub violations: Vec<pb::FieldViolation>,
    /// The rejected output, kept in the artifact store.
    pub raw_output: Option<Box<pb::ArtifactRef>>,
}

impl AttemptFailure {
    /// A failure a retry cannot fix (bad template, unknown function…).
    pub fn permanent(message: impl Into<String>) -> Self {
        AttemptFailure {
            message: message.into(),
            retryable: false,
            violations: Vec::new(),
            raw_output: None,
        }
    }

    /// A failure a retry may fix (a provider outage, a store restart…).
    pub fn transient(message: impl Into<String>) -> Self {
        AttemptFailure {
            retryable: true,
            ..AttemptFailure::permanent(message)
        }
    }
}

/// Why the executor service failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting cannot be used; start-up stops naming its variable.
    #[error("{0}")]
    Config(#[from] orchestra_kit::config::ConfigError),
    /// The gRPC server failed.
    #[error("server failed: {0}")]
    Server(#[from] tonic::transport::Error),
}
