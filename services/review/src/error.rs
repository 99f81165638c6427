//! The review service's one error type, and its one mapping to gRPC status.

use tonic::{Code, Status};

use orchestra_kit::status::{database_unavailable, internal, invalid_argument};

/// Everything that can go wrong in the review service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached or migrated.
    #[error(transparent)]
    Db(#[from] orchestra_db::Error),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// A value could not be encoded as JSON for storage.
    #[error("cannot encode a stored value: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored row could not be read back (a bug or a damaged database).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A setting cannot be used; start-up stops naming its variable.
    #[error("{0}")]
    Config(#[from] orchestra_kit::config::ConfigError),
    /// The gRPC server failed.
    #[error("grpc server failed: {0}")]
    Server(#[from] tonic::transport::Error),
    /// The request is malformed; one `(field, description)` per fault.
    #[error("{message}")]
    InvalidArgument {
        /// A summary of the faults.
        message: String,
        /// Each fault with the path of its field.
        violations: Vec<(String, String)>,
    },
    /// No task has this id.
    #[error("task {0} not found")]
    TaskNotFound(String),
    /// The task is not in a state that allows the request.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The artifact store answered with an error or could not be reached.
    #[error("artifact store: {message}")]
    ArtifactStore {
        /// The status code it answered (UNAVAILABLE when unreachable).
        code: Code,
        /// Its message.
        message: String,
    },
}

impl Error {
    /// INVALID_ARGUMENT about one field.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Error {
        let (field, description) = (field.into(), description.into());
        Error::InvalidArgument {
            message: format!("{field}: {description}"),
            violations: vec![(field, description)],
        }
    }
}

impl From<Status> for Error {
    /// Statuses come only from the artifact store; the scheduler's are the
    /// outbox dispatcher's to judge.
    fn from(status: Status) -> Self {
        Error::ArtifactStore {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

/// The result of a review operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::InvalidArgument {
                message,
                violations,
            } => invalid_argument(&message, violations),
            Error::TaskNotFound(_) => Status::not_found(error.to_string()),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
            Error::ArtifactStore {
                code: Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown,
                ..
            } => Status::unavailable(format!("{error}; nothing was changed, try again")),
            Error::Db(cause) if cause.is_outage() => database_unavailable(&cause),
            Error::Query(cause) if orchestra_db::Error::is_outage_query(&cause) => {
                database_unavailable(&cause)
            }
            Error::ArtifactStore { .. }
            | Error::Db(_)
            | Error::Query(_)
            | Error::Json(_)
            | Error::Corrupt(_)
            | Error::Config(_)
            | Error::Server(_) => internal(&error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(
            Status::from(Error::TaskNotFound("t".into())).code(),
            Code::NotFound
        );
        assert_eq!(
            Status::from(Error::FailedPrecondition("x".into())).code(),
            Code::FailedPrecondition
        );
        let outage = Error::Db(orchestra_db::Error::Pool("connection refused".into()));
        assert_eq!(Status::from(outage).code(), Code::Unavailable);
        let down = Status::from(Error::from(Status::unavailable("tcp connect error")));
        assert_eq!(down.code(), Code::Unavailable);
        let bad = Status::from(Error::invalid_field("person", "is required"));
        assert_eq!(
            orchestra_kit::status::field_violations(&bad),
            vec![("person".to_owned(), "is required".to_owned())]
        );
    }
}
