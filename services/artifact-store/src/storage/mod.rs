//! The service's private tables, on Postgres (schema `artifact_store`) or
//! SQLite, and the queries over them, one module per table.
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
use orchestra_kit::config::{ConfigError, Settings};

use crate::error::Result;

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The Postgres schema that holds this service's tables.
pub(crate) const SCHEMA: &str = "artifact_store";

/// Connects to the database the URL names and brings its tables up to date.
pub(crate) async fn connect(url: &str) -> Result<Db> {
    let options = DbOptions {
        schema: SCHEMA.to_owned(),
        max_connections: 8,
    };
    let db = Db::connect(url, &options).await.map_err(|e| {
        let variable = crate::Config::variable("database_url");
        match e {
            orchestra_db::Error::InvalidUrl { .. } => {
                ConfigError::database_url(&variable, &e.to_string())
            }
            _ => ConfigError::database(&variable, url, &e),
        }
    })?;
    db.run_migrations(POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS)
        .await?;
    Ok(db)
}

#[cfg(test)]
mod tests;
