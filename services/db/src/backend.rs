//! The connection pool, over Postgres or SQLite.

use diesel::ConnectionError;
use diesel::SqliteConnection;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use futures::FutureExt;
use orchestra_kit::config::ConfigError;

use crate::{Error, Result};

/// A pool of Postgres connections whose `search_path` is the service's schema.
pub type PgPool = Pool<AsyncPgConnection>;
/// A pool of SQLite connections (WAL, busy timeout, foreign keys on).
pub type SqlitePool = Pool<SyncConnectionWrapper<SqliteConnection>>;

/// Which database engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Postgres: clusters and the test suites.
    Postgres,
    /// SQLite embedded in the process: the laptop default.
    Sqlite,
}

/// How a service connects.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// The Postgres schema that holds the service's tables, so services that
    /// share one database never see each other's tables. Ignored by SQLite,
    /// where each service has its own file.
    pub schema: String,
    /// The most connections the pool opens.
    pub max_connections: usize,
}

/// A service's handle on its database. Cheap to clone.
#[derive(Clone)]
pub enum Db {
    /// Postgres through tokio-postgres.
    Pg(PgPool),
    /// SQLite through diesel's synchronous driver on blocking threads.
    Sqlite(SqlitePool),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Db({:?})", self.backend())
    }
}

impl Db {
    /// Connects to the database a URL names: `postgres://…` or
    /// `postgresql://…` for Postgres; `sqlite://PATH`, `sqlite:PATH` or a
    /// plain file path for SQLite (the file and its folder are created).
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            connect_postgres(url, options).await
        } else {
            connect_sqlite(url, options).await
        }
    }

    /// Connects as [`Db::connect`] does, at a service's start-up: a URL no
    /// backend reads, or a database that cannot be reached, is a
    /// [`ConfigError`] naming `variable` (the setting the URL came from),
    /// so the service stops with exit status 2 saying what to change.
    pub async fn connect_configured(
        variable: &str,
        url: &str,
        options: &DbOptions,
    ) -> std::result::Result<Db, ConfigError> {
        Db::connect(url, options).await.map_err(|e| match e {
            Error::InvalidUrl { .. } => ConfigError::database_url(variable, &e.to_string()),
            _ => ConfigError::database(variable, url, &e),
        })
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Pg(_) => Backend::Postgres,
            Db::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the service's pending migrations, those for the backend in use.
    ///
    /// Needs a multi-threaded tokio runtime: diesel's harness blocks in place.
    pub async fn run_migrations(
        &self,
        postgres: EmbeddedMigrations,
        sqlite: EmbeddedMigrations,
    ) -> Result<()> {
        distinct_versions::<diesel::pg::Pg>(&postgres)?;
        distinct_versions::<diesel::sqlite::Sqlite>(&sqlite)?;
        match self {
            Db::Pg(pool) => {
                let conn = pool.get().await?;
                let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
                harness
                    .run_pending_migrations(postgres)
                    .map_err(|e| Error::Migration(e.to_string()))?;
            }
            Db::Sqlite(pool) => {
                let conn = pool.get().await?;
                let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
                harness
                    .run_pending_migrations(sqlite)
                    .map_err(|e| Error::Migration(e.to_string()))?;
            }
        }
        Ok(())
    }
}

/// Refuses migrations that share a version (the date-and-number prefix of
/// their folder): diesel records versions only, so the second of two would
/// be taken as applied and silently skipped.
fn distinct_versions<DB: diesel::backend::Backend>(
    source: &impl diesel::migration::MigrationSource<DB>,
) -> Result<()> {
    let migrations = source
        .migrations()
        .map_err(|e| Error::Migration(e.to_string()))?;
    let mut seen = std::collections::BTreeMap::new();
    for migration in &migrations {
        let name = migration.name().to_string();
        let version = migration.name().version().to_string();
        if let Some(other) = seen.insert(version.clone(), name.clone()) {
            return Err(Error::Migration(format!(
                "migrations {other} and {name} share version {version}; give one a later prefix"
            )));
        }
    }
    Ok(())
}

async fn connect_postgres(url: &str, options: &DbOptions) -> Result<Db> {
    let schema = options.schema.clone();
    if !is_identifier(&schema) {
        return Err(Error::InvalidUrl {
            url: redact(url),
            reason: format!("schema `{schema}` must be lowercase letters, digits and `_`"),
        });
    }
    // Create the schema once, up front: concurrent CREATE SCHEMA IF NOT EXISTS
    // from many new connections can still collide on Postgres' catalog.
    let mut first = AsyncPgConnection::establish(url).await?;
    first
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await?;
    drop(first);

    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // No `SELECT 1` on every checkout (the default, `Verified`): that made
    // every look at the database two transactions, and an idle service's
    // sweep a steady load. A connection the server closed (restarted,
    // terminated) is still never handed out: its driver task ends when the
    // socket does, and the pool discards a closed or mid-transaction
    // connection on checkout. One that dies while checked out fails its
    // query as an outage (UNAVAILABLE), which callers retry.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let schema = schema.clone();
        async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.batch_execute(&format!("SET search_path TO {schema}"))
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    let pool = Pool::builder(manager)
        .max_size(options.max_connections)
        .build()
        .map_err(|e| Error::Pool(e.to_string()))?;
    // Fail at start-up, not at the first request, when the server is unreachable.
    drop(pool.get().await?);
    Ok(Db::Pg(pool))
}

async fn connect_sqlite(url: &str, options: &DbOptions) -> Result<Db> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url)
        .to_owned();
    if path.is_empty() || path.contains("://") {
        return Err(Error::InvalidUrl {
            url: redact(url),
            reason: "expected postgres://USER@HOST:PORT/DB, sqlite://PATH or a file path".into(),
        });
    }
    if let Some(dir) = std::path::Path::new(&path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| Error::InvalidUrl {
            url: redact(url),
            reason: format!("cannot create folder {}: {e}", dir.display()),
        })?;
    }
    let mut config = ManagerConfig::<SyncConnectionWrapper<SqliteConnection>>::default();
    // A file cannot go away under an open connection: checking one with a
    // query (a blocking-thread hand-off each time) buys nothing.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(|url| {
        async move {
            let mut conn = SyncConnectionWrapper::<SqliteConnection>::establish(url).await?;
            // Per-connection pragmas, so every pooled connection needs them.
            conn.batch_execute(
                "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000; \
                 PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            )
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(path, config);
    let pool = Pool::builder(manager)
        // Writes serialize in SQLite anyway; a few readers beside them suffice.
        .max_size(options.max_connections.clamp(1, 4))
        .build()
        .map_err(|e| Error::Pool(e.to_string()))?;
    drop(pool.get().await?);
    Ok(Db::Sqlite(pool))
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(is_identifier("scheduler"));
        assert!(is_identifier("artifact_store"));
        assert!(!is_identifier("a;drop"));
        assert!(!is_identifier(""));
    }

    #[tokio::test]
    async fn a_database_that_cannot_be_used_names_its_setting() {
        let options = DbOptions {
            schema: "probe".to_owned(),
            max_connections: 1,
        };
        // Port 1: nothing listens there.
        let url = "postgres://u:secret@127.0.0.1:1/d";
        let err = Db::connect_configured("X_DATABASE_URL", url, &options)
            .await
            .expect_err("nothing listens");
        assert_eq!(err.variable, "X_DATABASE_URL");
        assert!(!err.problem.contains("secret"), "{}", err.problem);
        let bad_schema = DbOptions {
            schema: "a;drop".to_owned(),
            ..options
        };
        let err = Db::connect_configured("X_DATABASE_URL", url, &bad_schema)
            .await
            .expect_err("not an identifier");
        assert!(
            err.problem.contains("set X_DATABASE_URL"),
            "{}",
            err.problem
        );
    }
}
