//! An idle mesh leaves its database alone. Work is found by wake-ups
//! (in-process after a commit, LISTEN/NOTIFY between replicas) and timers,
//! and the database is read without a wake-up only at the slow safety
//! sweeps: the scheduler's (`ORCHESTRA_SCHEDULER_POLL_INTERVAL_MS`: its
//! lease streams, lease sweeper and outbox) and the review outbox's
//! ([`DEFAULT_SWEEP`]). Nothing polls, and a pooled connection is checked
//! out without a query of its own.
//!
//! Counted with Postgres' own `pg_stat_database.xact_commit` for the test's
//! database, read from another database so the reads are not counted. A
//! backend publishes its counts up to 10 s late when it goes idle
//! (`PGSTAT_IDLE_INTERVAL`), so the count starts only after that long.

use std::path::Path;
use std::time::Duration;

use orchestra_db::diesel::sql_types::{BigInt, Text};
use orchestra_db::{Backend, diesel};
use orchestra_db::diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use orchestra_db::outbox::DEFAULT_SWEEP;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions};

/// How late Postgres may publish an idle backend's counts, with a margin.
const STATS_LAG: Duration = Duration::from_secs(15);
/// How long the idle mesh is watched.
const WINDOW: Duration = Duration::from_secs(20);

#[derive(diesel::QueryableByName)]
struct Commits {
    #[diesel(sql_type = BigInt)]
    commits: i64,
}

/// Transactions committed in the mesh's database so far.
async fn committed(admin: &mut AsyncPgConnection, database: &str) -> i64 {
    // A fresh snapshot: within one transaction the statistics stay frozen.
    diesel::sql_query("SELECT pg_stat_clear_snapshot()")
        .execute(admin)
        .await
        .expect("clear the statistics snapshot");
    diesel::sql_query("SELECT xact_commit AS commits FROM pg_stat_database WHERE datname = $1")
        .bind::<Text, _>(database)
        .get_result::<Commits>(admin)
        .await
        .expect("the test database's counters")
        .commits
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
    // The scheduler's sweep longer than the test, so what is left to count
    // is the review outbox's sweep alone.
    let scheduler_sweep = Duration::from_secs(120);
    let mesh = Mesh::start(
        Backend::Postgres,
        MeshOptions {
            poll_interval: scheduler_sweep,
            ..MeshOptions::default()
        },
    )
    .await;
    work_once(&mesh).await;
    let database = mesh.postgres_database();
    let mut admin = AsyncPgConnection::establish(&orchestra_db::testing::postgres_admin_url())
        .await
        .expect("the Postgres admin connection");

    tokio::time::sleep(STATS_LAG).await;
    let before = committed(&mut admin, &database).await;
    tokio::time::sleep(WINDOW).await;
    let after = committed(&mut admin, &database).await;

    // Each review outbox sweep is one read; the first use of a statement
    // on a pooled connection prepares it, one more transaction. A poll
    // every second, or a query per checkout, costs several times this.
    let sweeps = WINDOW.as_secs().div_ceil(DEFAULT_SWEEP.as_secs()) + 1;
    let allowed = i64::try_from(2 * sweeps).expect("small");
    let counted = after - before;
    eprintln!("idle: {counted} transactions in {WINDOW:?}; the sweeps allow {allowed}");
    assert!(
        counted <= allowed,
        "{counted} transactions in {WINDOW:?} of idling; the sweeps allow {allowed}"
    );
    mesh.stop().await;
}
