//! The review service's own database: human tasks and the outbox of
//! resolutions for the scheduler (the shared [`orchestra_db::outbox`]).
//! Nothing outside this crate reads it; [`open`] connects and migrates.
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

use orchestra_db::{Db, DbOptions};
use orchestra_kit::config::Settings;

use crate::{Config, Result};

const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The Postgres schema that holds the service's tables.
pub const SCHEMA: &str = "review";

/// Connects to the database `url` names (its own schema on Postgres) and
/// applies pending migrations. A database that cannot be used is a
/// configuration error naming `ORCHESTRA_REVIEW_DATABASE_URL`.
pub async fn open(url: &str) -> Result<Db> {
    let options = DbOptions {
        schema: SCHEMA.to_owned(),
        max_connections: 8,
    };
    let db = Db::connect_configured(&Config::variable("database_url"), url, &options).await?;
    db.run_migrations(POSTGRES, SQLITE).await?;
    Ok(db)
}
