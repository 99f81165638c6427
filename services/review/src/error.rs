//! The review service's one error type, and its one mapping to gRPC status.
//! Its variants are those of every Orchestra service (see
//! [`orchestra_kit::error`]).

use tonic::Status;

use orchestra_kit::config::ConfigError;
use orchestra_kit::error::{InvalidArgument, Violation};
use orchestra_kit::status;

/// Everything that can go wrong in the review service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; one violation per faulty field.
    #[error("{message}")]
    InvalidArgument {
        /// A summary of the faults.
        message: String,
        /// Each fault with the path of its field.
        violations: Vec<Violation>,
    },
    /// The task named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing the request would create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The task is not in a state that allows the request.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A service the request needs is down or slow; nothing was changed.
    #[error("{0}")]
    Unavailable(String),
    /// The database could not be reached, migrated or queried.
    #[error(transparent)]
    Db(#[from] orchestra_db::Error),
    /// A stored row could not be read back (a bug or a damaged database).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A fault the caller cannot fix (a peer's unexpected refusal, a value
    /// that cannot be encoded); logged, never sent.
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

impl Error {
    /// NOT_FOUND for a task id.
    pub fn task_not_found(id: &str) -> Error {
        Error::NotFound(format!("task {id} not found"))
    }

    /// What a failed call to the peer service `peer` means for the request
    /// that made it: UNAVAILABLE when the peer is down or slow (the request
    /// may be retried: nothing was changed), INTERNAL for any other answer.
    pub fn peer(peer: &'static str) -> impl Fn(Status) -> Error {
        move |answer| {
            let what = format!("{peer}: {}", answer.message());
            if status::is_transient(answer.code()) {
                Error::Unavailable(format!("{what}; nothing was changed, try again"))
            } else {
                Error::Internal(format!("{what} ({:?})", answer.code()))
            }
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Error::Db(orchestra_db::Error::Query(error))
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::Internal(format!("cannot encode a stored value: {error}"))
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
    fn codes() {
        let missing = Status::from(Error::task_not_found("t"));
        assert_eq!(missing.code(), Code::NotFound);
        assert_eq!(missing.message(), "task t not found");
        assert_eq!(
            Status::from(Error::FailedPrecondition("x".into())).code(),
            Code::FailedPrecondition
        );
        let outage = Error::Db(orchestra_db::Error::Pool("connection refused".into()));
        assert_eq!(Status::from(outage).code(), Code::Unavailable);
        let bad = Status::from(Error::invalid_field("person", "is required"));
        assert_eq!(
            orchestra_kit::status::field_violations(&bad),
            vec![("person".to_owned(), "is required".to_owned())]
        );
    }

    #[test]
    fn a_peer_failure_names_the_peer() {
        let down = Error::peer("artifact store")(Status::unavailable("tcp connect error"));
        let status = Status::from(down);
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "artifact store: tcp connect error; nothing was changed, try again"
        );
        let refused = Error::peer("artifact store")(Status::invalid_argument("bad key"));
        assert!(refused.to_string().starts_with("artifact store: bad key"));
        assert_eq!(Status::from(refused).code(), Code::Internal);
    }
}
