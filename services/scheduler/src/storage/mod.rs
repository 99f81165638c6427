//! The scheduler's own database: its tables on Postgres (schema
//! `scheduler`) or SQLite, and the queries over them, one module per table.
//! Nothing outside this crate reads them.
//!
//! - [`schema`] and [`models`]: the tables as diesel sees them, and their rows.
//! - [`templates`], [`runs`], [`phases`], [`events`], [`tasks`],
//!   [`executors`]: each table's queries as a trait over one connection.
//! - [`changes`]: what the NOTIFY that tells other replicas about a commit
//!   says; [`writes`]: everything a change to a run writes, in one go,
//!   written once per connection type because the backends differ.
//!
//! The outbox's table and queries are the shared ones of
//! [`orchestra_db::outbox`].
//!
//! Each table's trait is implemented for both backends' connections by
//! [`orchestra_db::impl_for_connections!`], so a query is written once and
//! compiled for Postgres and for SQLite, and runs inside the caller's
//! transaction; the engine above stays generic over the traits with no
//! diesel bounds at all.

pub(crate) mod changes;
pub(crate) mod events;
pub(crate) mod executors;
pub(crate) mod models;
pub(crate) mod phases;
pub(crate) mod runs;
pub(crate) mod schema;
pub(crate) mod tasks;
pub(crate) mod templates;
#[cfg(test)]
mod tests;
pub(crate) mod writes;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use orchestra_db::{Db, DbOptions};
use orchestra_kit::config::Settings;

use crate::Config;
use crate::error::Result;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The Postgres schema that holds this service's tables.
pub(crate) const SCHEMA: &str = "scheduler";

/// Connects to the scheduler's database (its own schema on Postgres) and
/// applies pending migrations. A database that cannot be opened is
/// [`crate::Error::Config`], naming `ORCHESTRA_SCHEDULER_DATABASE_URL`.
pub(crate) async fn open(database_url: &str) -> Result<Db> {
    let options = DbOptions {
        schema: SCHEMA.into(),
        max_connections: 16,
    };
    let variable = Config::variable("database_url");
    let db = Db::connect_configured(&variable, database_url, &options).await?;
    db.run_migrations(POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS)
        .await?;
    Ok(db)
}
