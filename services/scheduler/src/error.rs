//! The scheduler's one error type, and its one mapping to gRPC status.

use orchestra_kit::status;
use orchestra_model::Violation;
use tonic::Status;

/// Everything that can go wrong in the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; one violation per faulty field.
    #[error("{message}")]
    Invalid {
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
    /// A setting cannot be used; start-up stops naming its variable.
    #[error("{0}")]
    Config(#[from] orchestra_kit::config::ConfigError),
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

    /// An invalid request about one field.
    pub fn invalid_field(field: &str, description: impl Into<String>) -> Error {
        let description = description.into();
        Error::Invalid {
            message: format!("{field}: {description}"),
            violations: vec![Violation::new(field, description)],
        }
    }
}

/// The scheduler's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::Invalid {
                message,
                violations,
            } => status::invalid_argument(
                &message,
                violations.into_iter().map(|v| (v.field, v.description)),
            ),
            Error::NotFound(message) => Status::not_found(message),
            Error::AlreadyExists(message) => Status::already_exists(message),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
            Error::Unavailable(message) => Status::unavailable(message),
            Error::Db(cause) if cause.is_outage() => status::database_unavailable(&cause),
            Error::Db(cause) => status::internal(&cause),
            Error::Corrupt(cause) => status::internal(&cause),
            Error::Config(cause) => status::internal(&cause),
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
