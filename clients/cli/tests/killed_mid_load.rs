//! `orchestra up` killed with SIGKILL in the middle of many concurrent runs
//! (the benchmark's W1: diamonds a → (b, c) → d → e, 50 in flight) and
//! started again on the same data, on SQLite and on Postgres. Nothing a
//! client was told survives only in memory:
//! - every event a watcher received before the kill is in the log after the
//!   restart, with the same seq and body;
//! - every run a watcher saw complete is still COMPLETED, with the same last
//!   seq;
//! - every other accepted run completes after the restart;
//! - no run's log has a gap.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orchestra_db::Backend;
use orchestra_db::testing::TestDb;
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use tokio::sync::Semaphore;
use tonic::transport::Channel;

use common::process::{Up, connect, free_addr};

const TEMPLATE: &str = "\
name: diamond
phases:
  - { id: a, kind: function, function: json.merge }
  - { id: b, kind: function, function: json.merge, needs: [a] }
  - { id: c, kind: function, function: json.merge, needs: [a] }
  - { id: d, kind: function, function: json.merge, needs: [b, c] }
  - { id: e, kind: function, function: json.merge, needs: [d] }
";

/// Runs kept in flight before the kill.
const IN_FLIGHT: usize = 50;
/// Runs seen complete before the kill.
const COMPLETED_BEFORE_KILL: usize = 5;

/// What the client was told about one accepted run before the kill.
#[derive(Debug, Default)]
struct Seen {
    /// The events its watcher received, in order.
    events: Vec<pb::RunEvent>,
    /// Its last seq, once its watcher saw it complete (the stream ends
    /// after a run finishes).
    completed: Option<i64>,
}

type Log = Arc<Mutex<BTreeMap<String, Seen>>>;

/// The run's status, if the server answers.
async fn status(runs: &mut RunServiceClient<Channel>, run_id: &str) -> Option<pb::Run> {
    runs.get_run(pb::GetRunRequest {
        run_id: run_id.to_owned(),
    })
    .await
    .ok()?
    .into_inner()
    .run
}

/// Follows a run from its first event, recording each event as it arrives;
/// ends when the run finishes or the stream breaks.
async fn watch(mut runs: RunServiceClient<Channel>, run_id: String, log: Log) {
    let Ok(response) = runs
        .watch_run(pb::WatchRunRequest {
            run_id: run_id.clone(),
            after_seq: 0,
        })
        .await
    else {
        return;
    };
    let mut stream = response.into_inner();
    let completed = pb::RunStatus::Completed as i32;
    let mut saw_completed = false;
    loop {
        match stream.message().await {
            Ok(Some(message)) => {
                let Some(event) = message.event else { continue };
                if let Some(pb::run_event::Body::RunStatusChanged(change)) = &event.body {
                    saw_completed = change.to == completed;
                }
                let mut log = log.lock().expect("log");
                log.get_mut(&run_id).expect("run").events.push(event);
            }
            Ok(None) => {
                let mut log = log.lock().expect("log");
                let seen = log.get_mut(&run_id).expect("run");
                if saw_completed {
                    seen.completed = seen.events.last().map(|e| e.seq);
                }
                return;
            }
            // The process was killed.
            Err(_) => return,
        }
    }
}

/// The whole log of a finished run, read through WatchRun.
async fn events(runs: &mut RunServiceClient<Channel>, run_id: &str) -> Vec<pb::RunEvent> {
    let mut stream = runs
        .watch_run(pb::WatchRunRequest {
            run_id: run_id.to_owned(),
            after_seq: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut events = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("the log streams and ends")
            .expect("stream");
        match next {
            Some(message) => events.extend(message.event),
            None => return events,
        }
    }
}

/// Keeps `IN_FLIGHT` diamonds running, each followed by a watcher, until
/// `COMPLETED_BEFORE_KILL` have completed; then kills `up` with SIGKILL.
/// Returns what the client was told.
async fn load_then_kill(channel: &Channel, up: &mut Up) -> BTreeMap<String, Seen> {
    let log: Log = Arc::default();
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let runs = RunServiceClient::new(channel.clone());
    let mut watchers = Vec::new();
    let started = Instant::now();
    loop {
        let done = {
            let log = log.lock().expect("log");
            log.values().filter(|s| s.completed.is_some()).count()
        };
        if done >= COMPLETED_BEFORE_KILL {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{done} runs completed in a minute"
        );
        let Ok(Ok(slot)) =
            tokio::time::timeout(Duration::from_millis(50), slots.clone().acquire_owned()).await
        else {
            continue;
        };
        // Started in a task of its own, so the slots fill at once: runs
        // finish about as fast as one client could start them in turn.
        let mut runs = runs.clone();
        let log = log.clone();
        watchers.push(tokio::spawn(async move {
            let started = runs
                .start_run(pb::StartRunRequest {
                    template_name: "diamond".into(),
                    ..Default::default()
                })
                .await;
            // A start the kill cut off was never accepted.
            let Some(run) = started.ok().and_then(|r| r.into_inner().run) else {
                return;
            };
            log.lock()
                .expect("log")
                .insert(run.id.clone(), Seen::default());
            watch(runs, run.id, log).await;
            drop(slot);
        }));
    }
    up.kill();
    for watcher in watchers {
        watcher.await.expect("watcher");
    }
    Arc::try_unwrap(log)
        .expect("every watcher ended")
        .into_inner()
        .expect("log")
}

/// The scenario on the given backend: load, kill, restart, compare.
async fn nothing_acknowledged_is_lost_to_kill_9(backend: Backend) {
    // Declared first, dropped last: after both processes are gone.
    let db = match backend {
        Backend::Postgres => Some(TestDb::postgres().await),
        Backend::Sqlite => None,
    };
    let database_url = db.as_ref().map(|db| db.url().to_owned());
    let data = tempfile::tempdir().expect("data dir");
    let addr = free_addr();
    let mut first = Up::start(addr, data.path(), database_url.as_deref());
    let channel = connect(addr).await;
    TemplateServiceClient::new(channel.clone())
        .create_template(pb::CreateTemplateRequest {
            source: Some(pb::TemplateSource {
                source: TEMPLATE.into(),
                format: pb::TemplateFormat::Unspecified as i32,
                files: Default::default(),
            }),
        })
        .await
        .expect("template");
    let seen = load_then_kill(&channel, &mut first).await;
    let unfinished = seen.values().filter(|s| s.completed.is_none()).count();
    assert!(
        unfinished >= COMPLETED_BEFORE_KILL,
        "the kill should find runs in flight; {unfinished} were"
    );

    let _second = Up::start(addr, data.path(), database_url.as_deref());
    let mut runs = RunServiceClient::new(connect(addr).await);
    let restarted = Instant::now();
    for (run_id, seen) in &seen {
        let run = loop {
            match status(&mut runs, run_id).await {
                Some(run) if run.status == pb::RunStatus::Completed as i32 => break run,
                Some(run) => assert!(
                    run.status == pb::RunStatus::Running as i32
                        || run.status == pb::RunStatus::Pending as i32,
                    "run {run_id} ended {:?} after the restart",
                    pb::RunStatus::try_from(run.status)
                ),
                None => {}
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(30),
                "run {run_id}, accepted before the kill, did not complete after the restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if let Some(last_seq) = seen.completed {
            assert_eq!(
                run.last_seq, last_seq,
                "run {run_id} was seen complete at another seq"
            );
        }
        let log = events(&mut runs, run_id).await;
        let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
        let gapless: Vec<i64> = (1..=run.last_seq).collect();
        assert_eq!(seqs, gapless, "run {run_id}'s log has a gap");
        for event in &seen.events {
            let index = usize::try_from(event.seq - 1).expect("seq from 1");
            assert_eq!(
                log.get(index),
                Some(event),
                "run {run_id}: event {} changed or vanished",
                event.seq
            );
        }
    }
}

// One at a time: each loads the machine on its own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_to_kill_9_on_sqlite() {
    let _turn = ONE_AT_A_TIME.lock().await;
    nothing_acknowledged_is_lost_to_kill_9(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_to_kill_9_on_postgres() {
    let _turn = ONE_AT_A_TIME.lock().await;
    nothing_acknowledged_is_lost_to_kill_9(Backend::Postgres).await;
}
