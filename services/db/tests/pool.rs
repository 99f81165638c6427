//! The Postgres pool: a checkout sends the server nothing (no `SELECT 1`
//! per checkout, which made an idle service's every look two transactions),
//! and connections the server closed (a restart, terminated backends) are
//! replaced without a caller seeing an error.

use std::time::Duration;

use diesel::sql_types::{Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use orchestra_db::testing::{TestDb, postgres_admin_url};
use orchestra_db::{Db, DbOptions, db_run};

#[derive(Debug, diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(Debug, diesel::QueryableByName)]
struct Statement {
    #[diesel(sql_type = Text)]
    query: String,
}

async fn admin() -> AsyncPgConnection {
    AsyncPgConnection::establish(&postgres_admin_url())
        .await
        .expect("the Postgres admin connection")
}

async fn connect(test: &TestDb, connections: usize) -> Db {
    let options = DbOptions {
        schema: "pool".to_owned(),
        max_connections: connections,
    };
    Db::connect(test.url(), &options).await.expect("connect")
}

/// The server process behind one checkout.
async fn backend_pid(db: &Db) -> Result<i32, orchestra_db::Error> {
    db_run!(db, |conn| {
        diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(conn)
            .await
            .map(|row| row.pid)
            .map_err(orchestra_db::Error::from)
    })
}

/// The last statement a server process ran, as the server reports it.
async fn last_statement(admin: &mut AsyncPgConnection, pid: i32) -> String {
    diesel::sql_query("SELECT query FROM pg_stat_activity WHERE pid = $1")
        .bind::<Integer, _>(pid)
        .get_result::<Statement>(admin)
        .await
        .expect("the backend is listed")
        .query
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_sends_the_server_nothing() {
    let test = TestDb::postgres().await;
    let db = connect(&test, 1).await;
    let pid = backend_pid(&db).await.expect("first query");
    let mut admin = admin().await;
    let before = last_statement(&mut admin, pid).await;
    assert!(before.contains("pg_backend_pid"), "{before}");
    // Checked out and handed back, twice, running nothing of ours.
    for _ in 0..2 {
        db_run!(&db, |_conn| Ok::<(), orchestra_db::Error>(())).expect("checkout");
    }
    let after = last_statement(&mut admin, pid).await;
    assert_eq!(after, before, "a checkout ran a statement of its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_closed_are_replaced_without_an_error() {
    let test = TestDb::postgres().await;
    let db = connect(&test, 4).await;
    // Fill the pool: four checkouts held at once open four connections.
    let held = futures::future::join_all((0..4).map(|_| {
        let db = db.clone();
        async move {
            db_run!(&db, |conn| {
                diesel::sql_query("SELECT pg_backend_pid() AS pid, pg_sleep(0.2)")
                    .get_result::<Pid>(conn)
                    .await
                    .map(|row| row.pid)
                    .map_err(orchestra_db::Error::from)
            })
        }
    }))
    .await;
    let old: Vec<i32> = held.into_iter().map(|pid| pid.expect("query")).collect();
    assert_eq!(old.len(), 4);

    // What a restart of the server does to them.
    let name = test.url().rsplit('/').next().expect("database name");
    admin()
        .await
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .expect("terminate");
    // The connections' driver tasks see their sockets close.
    tokio::time::sleep(Duration::from_millis(300)).await;

    for _ in 0..8 {
        let pid = backend_pid(&db)
            .await
            .expect("a closed connection is not handed out");
        assert!(!old.contains(&pid), "{pid} was terminated");
    }
}
