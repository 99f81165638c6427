//! Many `WatchRun` streams on one run while commits race: each watcher gets
//! every event after the sequence it asked from exactly once, in order,
//! whether it joined before the run moved or in the middle, on the replica
//! that commits or on another one.

use std::time::Duration;

use futures::future::join_all;
use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests};
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// Watchers joining before the run moves, and as many again in the middle.
const WATCHERS: usize = 20;
/// Progress reports sent at once on each leased attempt.
const REPORTS: usize = 20;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn runs_at(url: &str) -> RunServiceClient<Channel> {
    RunServiceClient::connect(url.to_owned())
        .await
        .expect("connect")
}

/// Opens a watcher from `after_seq`; its task returns every event it got
/// once the stream ends (with the run).
async fn watcher(url: &str, run_id: &str, after_seq: i64) -> (i64, JoinHandle<Vec<pb::RunEvent>>) {
    let mut stream = runs_at(url)
        .await
        .watch_run(pb::WatchRunRequest {
            run_id: run_id.to_owned(),
            after_seq,
        })
        .await
        .expect("watch")
        .into_inner();
    let task = tokio::spawn(async move {
        let mut events = Vec::new();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), stream.message())
                .await
                .expect("the stream goes on, then ends with the run")
                .expect("no error");
            match message {
                Some(message) => events.extend(message.event),
                None => return events,
            }
        }
    });
    (after_seq, task)
}

async fn next_task(stream: &mut tonic::Streaming<pb::LeaseResponse>) -> pb::Task {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a task arrives")
        .expect("stream")
        .expect("open")
        .task
        .expect("task")
}

/// Reports progress on each task many times at once, then completes them
/// at once: commits on one run that race for its lock.
async fn race_commits(mesh: &Mesh, tasks: &[pb::Task]) {
    let reports = tasks.iter().flat_map(|task| {
        (0..REPORTS).map(move |i| async move {
            mesh.tasks()
                .await
                .report_progress(pb::ReportProgressRequest {
                    key: task.key.clone(),
                    lease_id: task.lease_id.clone(),
                    delta: format!("delta {i}"),
                })
                .await
                .expect("progress");
        })
    });
    join_all(reports).await;
    join_all(tasks.iter().map(|task| async move {
        mesh.tasks()
            .await
            .complete_task(pb::CompleteTaskRequest {
                key: task.key.clone(),
                lease_id: task.lease_id.clone(),
                output: None,
                usage: None,
                accept_tasks: 0,
                output_content: None,
            })
            .await
            .expect("complete");
    }))
    .await;
}

/// Drives a diamond started on the mesh's scheduler through racing
/// commits while watchers join at `watch_url`; checks what each got.
async fn watch_a_racing_run(mesh: &Mesh, watch_url: &str) {
    mesh.apply_template(&fixture("diamond.yaml")).await;
    let run_id = mesh
        .runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: "diamond".into(),
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner()
        .run
        .expect("run")
        .id;
    let mut watchers = join_all((0..WATCHERS).map(|_| watcher(watch_url, &run_id, 0))).await;
    let mut lease = mesh
        .tasks()
        .await
        .lease(pb::LeaseRequest {
            executor_id: "racing".into(),
            slots: 8,
            kinds: Vec::new(),
        })
        .await
        .expect("lease")
        .into_inner();

    let a = next_task(&mut lease).await;
    let racing = race_commits(mesh, std::slice::from_ref(&a));
    let joining = async {
        let mut late = Vec::new();
        for _ in 0..WATCHERS {
            let seq = mesh.run(&run_id).await.seq;
            late.push(watcher(watch_url, &run_id, seq).await);
        }
        late
    };
    let ((), late) = tokio::join!(racing, joining);
    watchers.extend(late);
    let b = next_task(&mut lease).await;
    let c = next_task(&mut lease).await;
    race_commits(mesh, &[b, c]).await;
    let d = next_task(&mut lease).await;
    race_commits(mesh, &[d]).await;

    let log = mesh.events(&run_id).await;
    let last = mesh.run(&run_id).await.seq;
    assert_eq!(
        log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>()
    );
    assert!(last > 4 * REPORTS as i64, "only {last} events");
    for (after, task) in watchers {
        let got = task.await.expect("watcher");
        let seqs: Vec<i64> = got.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (after + 1..=last).collect::<Vec<_>>(),
            "a watcher from {after}: every event once, in order"
        );
        assert_eq!(got, log[after as usize..], "as the log has them");
    }
}

async fn many_watchers_get_every_event_once_while_commits_race(backend: Backend) {
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            ..MeshOptions::default()
        },
    )
    .await;
    watch_a_racing_run(&mesh, &mesh.scheduler_url()).await;
    mesh.stop().await;
}

mesh_tests!(many_watchers_get_every_event_once_while_commits_race);

/// The run changes through one replica and is watched through another,
/// which hears of each commit by notification (the safety sweep is set far
/// too slow to matter).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watchers_on_another_replica_get_every_event_once() {
    let mut mesh = Mesh::start(
        Backend::Postgres,
        MeshOptions {
            executor: false,
            poll_interval: Duration::from_secs(60),
            ..MeshOptions::default()
        },
    )
    .await;
    let replica = mesh.start_scheduler_replica().await;
    watch_a_racing_run(&mesh, &replica).await;
    mesh.stop().await;
}
