//! The service's private tables, on Postgres (schema `artifact_store`) or
//! SQLite, and the queries over them, one module per table; [`open`]
//! connects and migrates.
//!
//! - [`schema`]: the diesel table definitions shared by both backends.
//! - [`models`]: the rows as Rust structs.
//! - [`versions`]: storing a version (the one write transaction) and
//!   reading versions back.
//! - [`contents`]: content rows by sha256.

pub(crate) mod contents;
pub(crate) mod models;
pub(crate) mod schema;
pub(crate) mod versions;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};

use orchestra_db::{Db, DbOptions};
use orchestra_kit::config::Settings;

use crate::Config;
use crate::error::Result;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The Postgres schema that holds this service's tables.
pub(crate) const SCHEMA: &str = "artifact_store";

/// Connects to the database `url` names (its own schema on Postgres) and
/// brings its tables up to date. A database that cannot be used is a
/// configuration error naming `ORCHESTRA_ARTIFACT_STORE_DATABASE_URL`.
pub(crate) async fn open(url: &str) -> Result<Db> {
    let options = DbOptions {
        schema: SCHEMA.to_owned(),
        max_connections: 8,
    };
    let db = Db::connect_configured(&Config::variable("database_url"), url, &options).await?;
    db.run_migrations(POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS)
        .await?;
    Ok(db)
}

#[cfg(test)]
mod tests;
