//! Work is found by wake-ups and timers, not by polling: the scheduler's
//! safety sweep is set far too slow to matter here, and an idle executor's
//! presence is not written, yet a delayed retry is leased when it comes due
//! and a lease taken after a quiet spell is not mistaken for an absent
//! executor's.

use std::path::Path;
use std::time::Duration;

use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests};
use tokio::time::Instant;

/// Longer than any test here: nothing may wait for the sweep.
const SWEEP: Duration = Duration::from_secs(60);

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn start(mesh: &Mesh, template: &str) -> String {
    mesh.apply_template(&fixture(&format!("{template}.yaml")))
        .await;
    mesh.runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: template.into(),
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner()
        .run
        .expect("run")
        .id
}

async fn open_lease(mesh: &Mesh, executor_id: &str) -> tonic::Streaming<pb::LeaseResponse> {
    mesh.tasks()
        .await
        .lease(pb::LeaseRequest {
            executor_id: executor_id.into(),
            slots: 1,
            kinds: Vec::new(),
        })
        .await
        .expect("lease")
        .into_inner()
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

async fn a_retry_is_leased_when_its_delay_ends(backend: Backend) {
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            poll_interval: SWEEP,
            ..MeshOptions::default()
        },
    )
    .await;
    start(&mesh, "retried").await;
    let mut stream = open_lease(&mesh, "retrying").await;
    let first = next_task(&mut stream).await;
    let failed_at = Instant::now();
    let retry = mesh
        .tasks()
        .await
        .fail_task(pb::FailTaskRequest {
            key: first.key.clone(),
            lease_id: first.lease_id.clone(),
            error: "try again".into(),
            retryable: true,
            ..Default::default()
        })
        .await
        .expect("fail")
        .into_inner();
    assert!(retry.will_retry);
    let second = next_task(&mut stream).await;
    let waited = failed_at.elapsed();
    assert_eq!(second.key.map(|k| k.attempt), Some(2));
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "attempt 2 was due 1 s after the failure and came after {waited:?}"
    );
    mesh.stop().await;
}

async fn an_executor_idle_for_a_while_keeps_the_lease_it_takes(backend: Backend) {
    // Executors count as gone after 1 s unseen.
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            lease_ttl: Duration::from_secs(3),
            poll_interval: SWEEP,
            ..MeshOptions::default()
        },
    )
    .await;
    let mut stream = open_lease(&mesh, "quiet").await;
    // Idle long enough to look absent, had its presence not been written
    // before it leased.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let run_id = start(&mesh, "single").await;
    let task = next_task(&mut stream).await;
    // Held past the absence limit: its presence is kept while it holds it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let snapshot = mesh.run(&run_id).await;
    let phase = &snapshot.phases[0];
    assert_eq!(
        (phase.attempt, phase.state),
        (1, pb::PhaseState::Running as i32),
        "the lease was taken from a present executor: {phase:?}"
    );
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
        .expect("the lease is still held");
    drop(stream);
    mesh.stop().await;
}

mesh_tests!(
    a_retry_is_leased_when_its_delay_ends,
    an_executor_idle_for_a_while_keeps_the_lease_it_takes,
);
