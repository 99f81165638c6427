//! The storage plumbing on both backends: connecting, migrations, the
//! `db_run!`/`db_tx!` macros, transactions and schema isolation.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use orchestra_db::diesel_migrations::{EmbeddedMigrations, embed_migrations};
use orchestra_db::testing::TestDb;
use orchestra_db::{Backend, Db, DbOptions, backend_tests, db_run, db_tx};

const PG: EmbeddedMigrations = embed_migrations!("tests/migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("tests/migrations/sqlite");

diesel::table! {
    notes (id) {
        id -> Text,
        body -> Text,
        created_at -> BigInt,
    }
}

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error(transparent)]
    Db(#[from] orchestra_db::Error),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("rolled back on purpose")]
    Abort,
}

async fn add(db: &Db, id: &str) -> Result<usize, TestError> {
    let id = id.to_owned();
    db_run!(db, |conn| {
        diesel::insert_into(notes::table)
            .values((
                notes::id.eq(id),
                notes::body.eq("b"),
                notes::created_at.eq(1_i64),
            ))
            .execute(conn)
            .await
            .map_err(TestError::from)
    })
}

async fn count(db: &Db) -> Result<i64, TestError> {
    db_run!(db, |conn| notes::table
        .count()
        .get_result::<i64>(conn)
        .await
        .map_err(TestError::from))
}

async fn migrations_apply_and_reapply(db: &TestDb) {
    let handle = db.connect("notes").await;
    handle.run_migrations(PG, SQLITE).await.expect("first run");
    handle
        .run_migrations(PG, SQLITE)
        .await
        .expect("second run is a no-op");
    assert_eq!(handle.backend(), db.backend());
    add(&handle, "a").await.expect("insert");
    assert_eq!(count(&handle).await.expect("count"), 1);
}

async fn transactions_commit_or_roll_back(db: &TestDb) {
    let handle = db.connect("notes").await;
    handle.run_migrations(PG, SQLITE).await.expect("migrate");
    let committed: Result<(), TestError> = db_tx!(&handle, |c| -> Result<(), TestError> {
        for id in ["x", "y"] {
            diesel::insert_into(notes::table)
                .values((
                    notes::id.eq(id),
                    notes::body.eq("b"),
                    notes::created_at.eq(2_i64),
                ))
                .execute(c)
                .await?;
        }
        Ok(())
    });
    committed.expect("commit");
    let rolled_back: Result<(), TestError> = db_tx!(&handle, |c| -> Result<(), TestError> {
        diesel::insert_into(notes::table)
            .values((
                notes::id.eq("z"),
                notes::body.eq("b"),
                notes::created_at.eq(3_i64),
            ))
            .execute(c)
            .await?;
        Err(TestError::Abort)
    });
    assert!(matches!(rolled_back, Err(TestError::Abort)));
    assert_eq!(count(&handle).await.expect("count"), 2, "z was rolled back");
}

async fn concurrent_writers_all_land(db: &TestDb) {
    let handle = db.connect("notes").await;
    handle.run_migrations(PG, SQLITE).await.expect("migrate");
    let writers = (0..16).map(|i| {
        let handle = handle.clone();
        tokio::spawn(async move {
            let r: Result<(), TestError> = db_tx!(&handle, |c| -> Result<(), TestError> {
                let n = notes::table.count().get_result::<i64>(c).await?;
                diesel::insert_into(notes::table)
                    .values((
                        notes::id.eq(format!("w{i}")),
                        notes::body.eq(n.to_string()),
                        notes::created_at.eq(4_i64),
                    ))
                    .execute(c)
                    .await?;
                Ok(())
            });
            r
        })
    });
    for writer in futures::future::join_all(writers).await {
        writer.expect("task").expect("write");
    }
    assert_eq!(count(&handle).await.expect("count"), 16);
}

async fn services_do_not_share_tables(db: &TestDb) {
    let one = db.connect("one").await;
    let two = db.connect("two").await;
    one.run_migrations(PG, SQLITE).await.expect("migrate one");
    two.run_migrations(PG, SQLITE).await.expect("migrate two");
    add(&one, "only-in-one").await.expect("insert");
    assert_eq!(count(&one).await.expect("count one"), 1);
    assert_eq!(count(&two).await.expect("count two"), 0);
}

backend_tests!(
    migrations_apply_and_reapply,
    transactions_commit_or_roll_back,
    concurrent_writers_all_land,
    services_do_not_share_tables,
);

#[tokio::test]
async fn a_bad_url_says_what_is_expected() {
    let options = DbOptions {
        schema: "x".into(),
        max_connections: 1,
    };
    let err = Db::connect("mysql://h/d", &options)
        .await
        .expect_err("mysql is not ours");
    let message = err.to_string();
    assert!(message.contains("expected postgres://"), "{message}");
}

#[tokio::test]
async fn an_unreachable_postgres_fails_at_connect() {
    let options = DbOptions {
        schema: "x".into(),
        max_connections: 1,
    };
    let err = Db::connect("postgres://postgres@127.0.0.1:1/none", &options)
        .await
        .expect_err("nothing listens on port 1");
    assert!(err.to_string().contains("cannot connect"), "{err}");
    let _ = Backend::Postgres;
}

const DUP_PG: EmbeddedMigrations = embed_migrations!("tests/migrations_duplicate/postgres");
const DUP_SQLITE: EmbeddedMigrations = embed_migrations!("tests/migrations_duplicate/sqlite");

/// Two migration folders with one version: diesel would skip the second
/// as applied; start-up refuses them instead, naming both.
#[tokio::test(flavor = "multi_thread")]
async fn migrations_sharing_a_version_are_refused() {
    let test = TestDb::new(Backend::Sqlite).await;
    let db = test.connect("dup").await;
    let error = db
        .run_migrations(DUP_PG, DUP_SQLITE)
        .await
        .expect_err("refused");
    let message = error.to_string();
    assert!(
        message.contains("2026-01-01-000000_a")
            && message.contains("2026-01-01-000000_b")
            && message.contains("share version 20260101000000"),
        "{message}"
    );
}
