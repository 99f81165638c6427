//! The scheduler's one error type, and its one mapping to gRPC status.
//! Its variants are those of every Orchestra service (see
//! [`orchestra_kit::error`]).

use tonic::Status;

use orchestra_kit::config::ConfigError;
use orchestra_kit::error::{InvalidArgument, Violation};
use orchestra_kit::status;

/// Everything that can go wrong in the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; one violation per faulty field.
    #[error("{message}")]
    InvalidArgument {
        /// A summary for people.
        message: String,
        /// The faults, each with its field path.
        violations: Vec<Violation>,
    },
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A template of that name exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request does not fit the current state (an expired lease, a
    /// decision on a phase that moved on, …).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Another service the request needs is unreachable; try again.
    #[error("{0}")]
    Unavailable(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] orchestra_db::Error),
    /// Stored data could not be read back (a bug or a corrupt row).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A fault the caller cannot fix (a change that did not load a row it
    /// needed, a value that cannot be encoded); logged, never sent.
    #[error("{0}")]
    Internal(String),
    /// A setting cannot be used; start-up stops naming its variable.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The gRPC server failed.
    #[error("grpc server failed: {0}")]
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

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Error::Db(orchestra_db::Error::Query(error))
    }
}

impl Error {
    /// Says whether the database is away: a pause to wait out, not a fault
    /// of the request or of the work in hand.
    pub fn is_outage(&self) -> bool {
        matches!(self, Error::Db(cause) if cause.is_outage())
    }
}

/// The scheduler's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
            Error::Db(cause) if cause.is_outage() => status::database_unavailable(&cause),
            Error::Db(_)
            | Error::Corrupt(_)
            | Error::Internal(_)
            | Error::Config(_)
            | Error::Server(_) => status::internal(&error),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn a_database_outage_is_unavailable_and_a_bad_query_internal() {
        let down = Error::Db(orchestra_db::Error::Pool("connection refused".into()));
        assert!(down.is_outage());
        assert_eq!(Status::from(down).code(), Code::Unavailable);
        let bug = Error::from(diesel::result::Error::NotFound);
        assert!(!bug.is_outage());
        assert_eq!(Status::from(bug).code(), Code::Internal);
    }
}
