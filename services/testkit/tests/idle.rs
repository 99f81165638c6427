//! An idle mesh leaves its database alone. Work is found by wake-ups
//! (in-process after a commit, LISTEN/NOTIFY between replicas) and timers,
//! and the database is read without a wake-up only at the slow safety
//! sweeps: the scheduler's (`ORCHESTRA_SCHEDULER_POLL_INTERVAL_MS`: its
//! lease streams, lease sweeper and outbox) and the review outbox's
//! ([`DEFAULT_SWEEP`]). Nothing polls, and a pooled connection is checked
//! out without a query of its own.
//!
//! Watched through Postgres' `pg_stat_activity`, sampled every few
//! milliseconds from another database: each statement a service sends
//! restamps its backend's `query_start`, so the distinct stamps seen are
//! the moments the mesh used its database. (`pg_stat_database.xact_commit`
//! would count transactions, but a busy server publishes those 10 to 20 s
//! late, too unsteady for a test.)

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use orchestra_db::diesel::sql_types::{BigInt, Integer, Text};
use orchestra_db::diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use orchestra_db::outbox::DEFAULT_SWEEP;
use orchestra_db::{Backend, diesel};
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions};

/// How long the mesh gets to finish what the work left running (the lease
/// sweeper ticks while a lease is live) before it is watched.
const SETTLE: Duration = Duration::from_secs(3);
/// How long the idle mesh is watched.
const WINDOW: Duration = Duration::from_secs(25);
/// How often its backends are looked at: a poll would have to be faster
/// than this to hide in one sample.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

#[derive(diesel::QueryableByName)]
struct Activity {
    #[diesel(sql_type = Integer)]
    pid: i32,
    /// `query_start` in epoch microseconds.
    #[diesel(sql_type = BigInt)]
    started: i64,
    #[diesel(sql_type = Text)]
    query: String,
}

/// The statement each of the database's backends started last, by backend
/// and start time.
async fn activity(admin: &mut AsyncPgConnection, database: &str) -> Vec<Activity> {
    // A fresh snapshot each time: within a transaction it stays frozen.
    diesel::sql_query("SELECT pg_stat_clear_snapshot()")
        .execute(admin)
        .await
        .expect("clear the statistics snapshot");
    diesel::sql_query(
        "SELECT pid, (extract(epoch FROM query_start) * 1000000)::bigint AS started, \
         left(query, 60) AS query FROM pg_stat_activity \
         WHERE datname = $1 AND query_start IS NOT NULL",
    )
    .bind::<Text, _>(database)
    .load::<Activity>(admin)
    .await
    .expect("the test database's backends")
}

/// Runs a person's input and a function to the end, so that both outboxes
/// delivered, a lease stream leased and the lease sweeper woke.
async fn work_once(mesh: &Mesh) {
    mesh.apply_template(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ask_then_merge.yaml"),
    )
    .await;
    let run_id = mesh
        .runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: "ask-then-merge".into(),
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner()
        .run
        .expect("run")
        .id;
    let task = mesh.human_task(&run_id, "ask").await;
    mesh.review()
        .await
        .submit_input(pb::SubmitInputRequest {
            task_id: task.id,
            content_json: r#"{"ok": true}"#.into(),
            person: "ana".into(),
        })
        .await
        .expect("the answer is accepted");
    mesh.run_reaches(&run_id, &[pb::RunStatus::Completed]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_mesh_reads_its_database_only_at_the_safety_sweeps() {
    // The scheduler's sweep longer than the test, so what is left to see
    // is the review outbox's sweep alone.
    let mesh = Mesh::start(
        Backend::Postgres,
        MeshOptions {
            poll_interval: Duration::from_secs(300),
            ..MeshOptions::default()
        },
    )
    .await;
    work_once(&mesh).await;
    let database = mesh.postgres_database();
    let mut admin = AsyncPgConnection::establish(&orchestra_db::testing::postgres_admin_url())
        .await
        .expect("the Postgres admin connection");
    tokio::time::sleep(SETTLE).await;

    let mut known: BTreeMap<(i32, i64), String> = activity(&mut admin, &database)
        .await
        .into_iter()
        .map(|a| ((a.pid, a.started), a.query))
        .collect();
    let mut statements: Vec<String> = Vec::new();
    let until = tokio::time::Instant::now() + WINDOW;
    while tokio::time::Instant::now() < until {
        for a in activity(&mut admin, &database).await {
            if known.insert((a.pid, a.started), a.query.clone()).is_none() {
                statements.push(a.query);
            }
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }

    // One read per review outbox sweep, and one more where the window cuts
    // a sweep. A poll every second, or a query per checkout on a
    // connection of its own, shows many times this.
    let sweeps = WINDOW.as_secs().div_ceil(DEFAULT_SWEEP.as_secs()) + 1;
    let allowed = usize::try_from(sweeps).expect("small");
    eprintln!(
        "idle: {} statements in {WINDOW:?}; the sweeps allow {allowed}: {statements:#?}",
        statements.len()
    );
    assert!(
        statements.len() <= allowed,
        "{} statements in {WINDOW:?} of idling, the sweeps allow {allowed}: {statements:#?}",
        statements.len()
    );
    assert!(
        statements.iter().all(|q| q.contains("outbox")),
        "only the outbox sweep reads: {statements:#?}"
    );
    mesh.stop().await;
}
