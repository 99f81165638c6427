//! The executor's errors: why an attempt failed, and what its own service
//! can refuse or fail with (and the one mapping of that to gRPC status).

use tonic::Status;

use orchestra_kit::error::{InvalidArgument, Violation};
use orchestra_kit::status;
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

    /// The same failure, its message followed by `note` when there is one.
    pub fn noting(mut self, note: Option<&str>) -> Self {
        if let Some(note) = note {
            self.message = format!("{}; {note}", self.message);
        }
        self
    }

    /// A failure a retry may fix (a provider outage, a store restart…).
    pub fn transient(message: impl Into<String>) -> Self {
        AttemptFailure {
            retryable: true,
            ..AttemptFailure::permanent(message)
        }
    }
}

/// What can go wrong in the executor's own service: the variants of every
/// Orchestra service (see [`orchestra_kit::error`]), mapped to gRPC status
/// once, below. `ProviderService` refuses nothing today; a new RPC uses
/// these rather than a shape of its own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; one violation per faulty field.
    #[error("{message}")]
    InvalidArgument {
        /// A summary for the status message.
        message: String,
        /// The faults, each with the path of its field.
        violations: Vec<Violation>,
    },
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing the request would create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request does not fit the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A service the request needs is down or slow; nothing was changed.
    #[error("{0}")]
    Unavailable(String),
    /// A fault the caller cannot fix; logged, never sent.
    #[error("{0}")]
    Internal(String),
    /// A setting cannot be used; start-up stops naming its variable.
    #[error("{0}")]
    Config(#[from] orchestra_kit::config::ConfigError),
    /// The gRPC server failed.
    #[error("server failed: {0}")]
    Server(#[from] tonic::transport::Error),
}

impl InvalidArgument for Error {
    fn invalid_argument(message: String, violations: Vec<Violation>) -> Error {
        Error::InvalidArgument {
            message,
            violations,
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::InvalidArgument {
                message,
                violations,
            } => status::bad_request(&message, violations),
            Error::NotFound(message) => Status::not_found(message),
            Error::AlreadyExists(message) => Status::already_exists(message),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
            Error::Unavailable(message) => Status::unavailable(message),
            Error::Internal(_) | Error::Config(_) | Error::Server(_) => status::internal(&error),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn codes_follow_the_table() {
        let invalid = Status::from(Error::invalid_field("executor_id", "is required"));
        assert_eq!(invalid.code(), Code::InvalidArgument);
        assert_eq!(
            status::field_violations(&invalid),
            vec![("executor_id".to_owned(), "is required".to_owned())]
        );
        assert_eq!(
            Status::from(Error::Unavailable("x".into())).code(),
            Code::Unavailable
        );
        let hidden = Status::from(Error::Internal("/secret".into()));
        assert_eq!(hidden.code(), Code::Internal);
        assert!(!hidden.message().contains("secret"));
    }
}
