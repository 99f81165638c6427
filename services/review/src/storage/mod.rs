//! The review service's own database: human tasks and the outbox of
//! resolutions for the scheduler (the shared [`orchestra_db::outbox`]). Nothing outside this crate reads it.
//!
//! Every function takes the [`Db`] handle and runs on either backend; the
//! changes that must go together (a task decided and its outbox message)
//! are one transaction.

pub mod models;
mod schema;
pub mod tasks;
#[cfg(test)]
mod tests;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use orchestra_db::Db;

use crate::Result;

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The Postgres schema that holds the service's tables.
pub const SCHEMA: &str = "review";

/// Applies pending migrations for the backend in use.
pub async fn migrate(db: &Db) -> Result<()> {
    db.run_migrations(POSTGRES, SQLITE).await?;
    Ok(())
}
