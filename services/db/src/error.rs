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

impl Error {
    /// Says whether the database is away (down, restarting, refusing or
    /// dropping connections, or busy) rather than the request being wrong:
    /// callers map this to UNAVAILABLE, which clients retry, and treat it as
    /// a pause, not as a fault of the work in hand.
    pub fn is_outage(&self) -> bool {
        match self {
            Error::Connection(_) | Error::Pool(_) => true,
            Error::Query(error) => Error::is_outage_query(error),
            Error::InvalidUrl { .. } | Error::Migration(_) => false,
        }
    }

    /// Says whether a query failed because its connection went away (the
    /// server was restarted or its backends terminated) or the database was
    /// locked; see [`Error::is_outage`].
    pub fn is_outage_query(error: &diesel::result::Error) -> bool {
        use diesel::result::{DatabaseErrorKind, Error as Query};
        match error {
            Query::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            )
            | Query::BrokenTransactionManager => true,
            Query::DatabaseError(_, info) => {
                let message = info.message();
                // Postgres 57P01-57P03 (the server is shutting down or starting)
                // and SQLite's busy timeout carry no kind of their own.
                message.starts_with("terminating connection")
                    || message.contains("the database system is")
                    || message.contains("database is locked")
                    || message.contains("connection closed")
            }
            _ => false,
        }
    }
}

/// The result of a storage operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Error {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Error::Pool(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error as Query};

    use super::*;

    #[test]
    fn a_lost_connection_is_an_outage_and_a_bad_query_is_not() {
        let closed = Query::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand,
            Box::new("connection closed".to_owned()),
        );
        assert!(Error::Query(closed).is_outage());
        let terminated = Query::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("terminating connection due to administrator command".to_owned()),
        );
        assert!(Error::Query(terminated).is_outage());
        assert!(Error::Pool("timed out".into()).is_outage());
        let unique = Query::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("duplicate key".to_owned()),
        );
        assert!(!Error::Query(unique).is_outage());
        assert!(!Error::Query(Query::NotFound).is_outage());
    }
}
