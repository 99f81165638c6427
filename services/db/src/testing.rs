//! Fresh databases for tests: each [`TestDb`] is a new Postgres database on
//! the local server (dropped again at the end) or a new SQLite file in a
//! temporary folder, so test runs never see each other's rows.
//!
//! The Postgres server is `postgres://postgres@127.0.0.1:5432/postgres`
//! unless `ORCHESTRA_TEST_POSTGRES_URL` names another admin URL.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::{Backend, Db, DbOptions};

/// The admin URL test databases are created through.
pub fn postgres_admin_url() -> String {
    std::env::var("ORCHESTRA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test and is removed after it.
pub struct TestDb {
    backend: Backend,
    url: String,
    postgres_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new, empty database of the given backend.
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Postgres => TestDb::postgres().await,
            Backend::Sqlite => TestDb::sqlite(),
        }
    }

    /// A new, empty Postgres database on the local server.
    ///
    /// Panics when the server cannot be reached: Postgres tests need it.
    pub async fn postgres() -> TestDb {
        let admin = postgres_admin_url();
        let name = format!("orchestra_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test Postgres at {admin}: {e}"));
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        TestDb {
            backend: Backend::Postgres,
            url: format!("{base}/{name}"),
            postgres_name: Some(name),
            _dir: None,
        }
    }

    /// A new SQLite file in a temporary folder.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"));
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDb {
            backend: Backend::Sqlite,
            url,
            postgres_name: None,
            _dir: Some(dir),
        }
    }

    /// The backend this database runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL services connect with. For SQLite, a service that needs a file
    /// of its own should use [`TestDb::url_for`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A URL for one service: the shared database on Postgres (the service's
    /// schema keeps its tables apart), a file of its own on SQLite.
    pub fn url_for(&self, service: &str) -> String {
        match self.backend {
            Backend::Postgres => self.url.clone(),
            Backend::Sqlite => self.url.replace("test.db", &format!("{service}.db")),
        }
    }

    /// Connects as the given service would.
    pub async fn connect(&self, schema: &str) -> Db {
        let options = DbOptions {
            schema: schema.to_owned(),
            max_connections: 8,
        };
        Db::connect(&self.url_for(schema), &options)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database: {e}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on, so
        // the database is dropped from a thread with a runtime of its own.
        let admin = postgres_admin_url();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = AsyncPgConnection::establish(&admin).await.ok()?;
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: test database was not dropped");
        }
    }
}

/// Generates, for each named suite function `async fn f(db: &TestDb)`, one
/// test per backend: `postgres::f` and `sqlite::f`.
#[macro_export]
macro_rules! backend_tests {
    ($($suite:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $suite() {
                    let db = $crate::testing::TestDb::new($crate::Backend::Postgres).await;
                    super::$suite(&db).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $suite() {
                    let db = $crate::testing::TestDb::new($crate::Backend::Sqlite).await;
                    super::$suite(&db).await;
                }
            )*
        }
    };
}
