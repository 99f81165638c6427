//! The crate's one error type, and its one mapping onto gRPC statuses. Its
//! variants are those of every Orchestra service (see
//! [`orchestra_kit::error`]), with `ResourceExhausted` for content above
//! the size limit and `Blob` for the blob folder.

use tonic::Status;

use orchestra_kit::config::ConfigError;
use orchestra_kit::error::{InvalidArgument, Violation};
use orchestra_kit::status;

/// What can go wrong in the artifact store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; one violation per faulty field.
    #[error("{message}")]
    InvalidArgument {
        /// A summary for the status message.
        message: String,
        /// The faults, each naming the request field it concerns.
        violations: Vec<Violation>,
    },
    /// The artifact or version asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The attempt already stored different content under this name.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request does not fit the artifact's current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The content is larger than the configured limit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A service the request needs is down or slow; nothing was changed.
    #[error("{0}")]
    Unavailable(String),
    /// The database could not be reached, migrated or queried.
    #[error(transparent)]
    Db(#[from] orchestra_db::Error),
    /// Stored data that cannot be read back (a bug or a damaged store).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// A fault the caller cannot fix; logged, never sent.
    #[error("{0}")]
    Internal(String),
    /// Reading or writing the blob store failed.
    #[error("blob store: {0}")]
    Blob(#[from] std::io::Error),
    /// A setting cannot be used; start-up stops naming its variable.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Server(#[from] tonic::transport::Error),
}

/// The result of an artifact store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument {
                message,
                violations,
            } => status::bad_request(&message, violations),
            Error::NotFound(message) => Status::not_found(message),
            Error::AlreadyExists(message) => Status::already_exists(message),
            Error::FailedPrecondition(message) => Status::failed_precondition(message),
            Error::ResourceExhausted(message) => Status::resource_exhausted(message),
            Error::Unavailable(message) => Status::unavailable(message),
            Error::Db(cause) if cause.is_outage() => status::database_unavailable(&cause),
            Error::Db(_)
            | Error::Corrupt(_)
            | Error::Internal(_)
            | Error::Blob(_)
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
    fn codes_follow_the_table() {
        assert_eq!(
            Status::from(Error::NotFound("x".into())).code(),
            Code::NotFound
        );
        assert_eq!(
            Status::from(Error::AlreadyExists("x".into())).code(),
            Code::AlreadyExists
        );
        assert_eq!(
            Status::from(Error::ResourceExhausted("x".into())).code(),
            Code::ResourceExhausted
        );
        let status = Status::from(Error::invalid_field("name", "is required"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "name: is required");
        assert_eq!(
            status::field_violations(&status),
            vec![("name".to_owned(), "is required".to_owned())]
        );
    }

    #[test]
    fn a_database_outage_is_unavailable_not_internal() {
        let down = Error::Db(orchestra_db::Error::Pool("connection refused".into()));
        let status = Status::from(down);
        assert_eq!(status.code(), Code::Unavailable);
        assert!(!status.message().contains("refused"));
    }

    #[test]
    fn internal_faults_hide_their_cause() {
        let error = Error::Blob(std::io::Error::other("/secret/path"));
        let status = Status::from(error);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }
}
