//! The crate's one error type, and its one mapping onto gRPC statuses.

use orchestra_kit::status;
use tonic::Status;

/// What can go wrong in the artifact store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The artifact or version asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed; one `(field, description)` per fault.
    #[error("{message}")]
    InvalidArgument {
        /// A summary for the status message.
        message: String,
        /// The faults, each naming the request field it concerns.
        violations: Vec<(String, String)>,
    },
    /// The attempt already stored different content under this name.
    #[error("{0}")]
    AlreadyExists(String),
    /// The content is larger than the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// A setting cannot be used; start-up stops naming its variable.
    #[error("{0}")]
    Config(#[from] orchestra_kit::config::ConfigError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] orchestra_db::Error),
    /// Reading or writing the blob store failed.
    #[error("blob store: {0}")]
    Blob(#[from] std::io::Error),
    /// Stored data that cannot be read back (a bug or a damaged store).
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The gRPC server failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The result of an artifact store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// INVALID_ARGUMENT about one field.
    pub fn invalid_field(field: &str, description: impl Into<String>) -> Error {
        let description = description.into();
        Error::InvalidArgument {
            message: format!("{field}: {description}"),
            violations: vec![(field.to_owned(), description)],
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Error::Storage(orchestra_db::Error::Query(error))
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::NotFound(message) => Status::not_found(message),
            Error::InvalidArgument {
                message,
                violations,
            } => status::invalid_argument(&message, violations),
            Error::AlreadyExists(message) => Status::already_exists(message),
            Error::TooLarge(message) => Status::resource_exhausted(message),
            Error::Storage(cause) if cause.is_outage() => status::database_unavailable(&cause),
            Error::Storage(_)
            | Error::Blob(_)
            | Error::Corrupt(_)
            | Error::Transport(_)
            | Error::Config(_) => status::internal(&error),
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
        let status = Status::from(Error::invalid_field("name", "is required"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status::field_violations(&status),
            vec![("name".to_owned(), "is required".to_owned())]
        );
    }

    #[test]
    fn a_database_outage_is_unavailable_not_internal() {
        let down = Error::Storage(orchestra_db::Error::Pool("connection refused".into()));
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
