//! The storage error every service's own error wraps.

/// A failure to reach or use the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL names no backend we know, or is malformed.
    #[error("invalid database url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given, with any password removed.
        url: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A connection could not be made.
    #[error("cannot connect to the database: {0}")]
    Connection(#[from] diesel::ConnectionError),
    /// The pool gave no connection (database down, or pool exhausted).
    #[error("no database connection available: {0}")]
    Pool(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
}

/// The result of a storage operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Error {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Error::Pool(error.to_string())
    }
}
