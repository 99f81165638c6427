//! Storage plumbing shared by every Orchestra service. It holds no tables:
//! each service owns its own schema and migrations, and reaches its database
//! through the [`Db`] handle defined here.
//!
//! - [`Db`]: a pool of Postgres (clusters, tests) or SQLite (a laptop)
//!   connections, chosen by the URL at start-up.
//! - [`db_run!`] and [`db_tx!`]: run one body of diesel code on whichever
//!   backend is in use; the body is compiled once per backend.
//! - [`impl_for_connections!`]: queries written once as a trait, implemented
//!   for both backends' connections, to run inside a caller's transaction.
//! - [`outbox`]: hand-offs to other services, stored with the change that
//!   causes them and delivered in order until accepted.
//! - [`prepared`]: statements diesel would prepare afresh each time, kept
//!   prepared by their SQL text on the hot path.
//! - [`testing`]: fresh databases for test suites on both backends.
//! - [`time`]: timestamps as epoch microseconds, the portable column type.

mod backend;
mod error;
mod macros;
pub mod outbox;
pub mod prepared;
pub mod testing;
pub mod time;

pub use backend::{Backend, Db, DbOptions, PgPool, SqlitePool};
pub use error::{Error, Result};

/// Re-exported so the macros and service crates name one version of each.
pub use diesel;
pub use diesel_async;
pub use diesel_migrations;
