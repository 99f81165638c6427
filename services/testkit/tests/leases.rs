//! Leases: an executor that vanishes mid-phase has its lease expire and the
//! attempt retried by another, ending with exactly one accepted artifact
//! version; reports are idempotent on (run, phase, attempt).

use std::path::Path;
use std::time::Duration;

use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests};
use tonic::Code;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn start_single(mesh: &Mesh) -> String {
    mesh.apply_template(&fixture("single.yaml")).await;
    mesh.runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: "single".into(),
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner()
        .run
        .expect("run")
        .id
}

async fn lease_one(
    mesh: &Mesh,
    executor_id: &str,
) -> (tonic::Streaming<pb::LeaseResponse>, pb::Task) {
    let mut stream = mesh
        .tasks()
        .await
        .lease(pb::LeaseRequest {
            executor_id: executor_id.into(),
            slots: 1,
            kinds: Vec::new(),
        })
        .await
        .expect("lease")
        .into_inner();
    let task = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a task arrives")
        .expect("stream")
        .expect("open")
        .task
        .expect("task");
    (stream, task)
}

async fn a_vanished_executor_s_attempt_is_retried(backend: Backend) {
    let mut mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            lease_ttl: Duration::from_secs(1),
            ..MeshOptions::default()
        },
    )
    .await;
    let run_id = start_single(&mesh).await;

    // An executor leases attempt 1 and vanishes: no heartbeat, no report.
    let (stream, lost) = lease_one(&mesh, "doomed").await;
    drop(stream);
    assert_eq!(lost.key.as_ref().map(|k| k.attempt), Some(1));

    // The lease expires and attempt 2 is queued.
    mesh.eventually("attempt 2 queued", Duration::from_secs(10), || async {
        let snapshot = mesh.run(&run_id).await;
        let phase = snapshot.phases.first()?.clone();
        (phase.attempt == 2 && phase.state == pb::PhaseState::Queued as i32).then_some(())
    })
    .await;

    // The vanished executor's late reports are refused.
    let heartbeat = mesh
        .tasks()
        .await
        .heartbeat(pb::HeartbeatRequest {
            key: lost.key.clone(),
            lease_id: lost.lease_id.clone(),
        })
        .await
        .expect_err("the lease is gone");
    assert_eq!(heartbeat.code(), Code::FailedPrecondition);
    let late = mesh
        .tasks()
        .await
        .complete_task(pb::CompleteTaskRequest {
            key: lost.key.clone(),
            lease_id: lost.lease_id.clone(),
            output: None,
            usage: None,
            accept_tasks: 0,
            output_content: None,
        })
        .await
        .expect_err("a late completion is refused");
    assert_eq!(late.code(), Code::FailedPrecondition);

    // A real executor picks attempt 2 up and finishes the run.
    mesh.start_executor();
    let done = mesh
        .run_reaches(&run_id, &[pb::RunStatus::Completed, pb::RunStatus::Failed])
        .await;
    assert_eq!(
        done.run.as_ref().map(|r| r.status),
        Some(pb::RunStatus::Completed as i32)
    );
    let phase = &done.phases[0];
    assert_eq!(phase.attempt, 2);
    let output = phase.output.clone().expect("an accepted output");
    assert_eq!(output.attempt, 2);
    let history = mesh
        .artifacts()
        .await
        .get_artifact_history(pb::GetArtifactHistoryRequest {
            artifact_id: output.artifact_id.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .versions;
    assert_eq!(history.len(), 1, "exactly one version: {history:?}");
    let accepted = mesh
        .events(&run_id)
        .await
        .into_iter()
        .filter(|e| matches!(e.body, Some(pb::run_event::Body::ArtifactAccepted(_))))
        .count();
    assert_eq!(accepted, 1);
    mesh.stop().await;
}

async fn reports_are_idempotent_on_the_attempt(backend: Backend) {
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            ..MeshOptions::default()
        },
    )
    .await;
    let run_id = start_single(&mesh).await;
    let (_stream, task) = lease_one(&mesh, "careful").await;
    let key = task.key.clone().expect("key");
    let stored = mesh
        .artifacts()
        .await
        .put_artifact(pb::PutArtifactRequest {
            key: Some(key.clone()),
            name: "out".into(),
            media_type: "application/json".into(),
            content: br#"{"ok":true}"#.to_vec(),
            schema_json: String::new(),
            created_by: None,
        })
        .await
        .expect("put")
        .into_inner()
        .artifact
        .and_then(|a| a.r#ref)
        .expect("ref");
    let request = pb::CompleteTaskRequest {
        key: Some(key.clone()),
        lease_id: task.lease_id.clone(),
        output: Some(stored.clone()),
        usage: None,
        accept_tasks: 0,
        output_content: None,
    };
    mesh.tasks()
        .await
        .complete_task(request.clone())
        .await
        .expect("first");
    let seq_after_first = mesh.run(&run_id).await.seq;
    mesh.tasks()
        .await
        .complete_task(request)
        .await
        .expect("a repeat is accepted");
    assert_eq!(
        mesh.run(&run_id).await.seq,
        seq_after_first,
        "and changes nothing"
    );

    let wrong_key = mesh
        .tasks()
        .await
        .complete_task(pb::CompleteTaskRequest {
            key: Some(pb::AttemptKey { attempt: 0, ..key }),
            lease_id: task.lease_id.clone(),
            output: None,
            usage: None,
            accept_tasks: 0,
            output_content: None,
        })
        .await
        .expect_err("attempt 0 is not an attempt");
    assert_eq!(wrong_key.code(), Code::InvalidArgument);
    assert_eq!(
        orchestra_kit::status::field_violations(&wrong_key)
            .into_iter()
            .map(|(f, _)| f)
            .collect::<Vec<_>>(),
        ["key.attempt"]
    );
    mesh.stop().await;
}

mesh_tests!(
    a_vanished_executor_s_attempt_is_retried,
    reports_are_idempotent_on_the_attempt
);
