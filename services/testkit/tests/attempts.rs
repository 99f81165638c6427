//! Attempts that are lost: a hung executor (its stream open, its heartbeats
//! gone, as SIGSTOP leaves it) gets no new lease, and a healthy executor
//! beside it finishes the run; its late output never becomes a version. An
//! executor whose stream closes has its leases released at once, not when
//! their deadline passes.

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

async fn open_lease(
    mesh: &Mesh,
    executor_id: &str,
    slots: u32,
) -> tonic::Streaming<pb::LeaseResponse> {
    mesh.tasks()
        .await
        .lease(pb::LeaseRequest {
            executor_id: executor_id.into(),
            slots,
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

/// A run's artifacts as (attempt, version, latest), in the store's order.
async fn versions(mesh: &Mesh, run_id: &str) -> Vec<(i32, i32, bool)> {
    mesh.artifacts()
        .await
        .list_artifacts(pb::ListArtifactsRequest {
            run_id: run_id.to_owned(),
            phase_id: String::new(),
        })
        .await
        .expect("list")
        .into_inner()
        .artifacts
        .iter()
        .filter_map(|a| {
            let reference = a.r#ref.as_ref()?;
            Some((reference.attempt, reference.version, a.is_latest))
        })
        .collect()
}

async fn attempt_queued(mesh: &Mesh, run_id: &str, attempt: i32) {
    mesh.eventually(
        &format!("attempt {attempt} queued"),
        Duration::from_secs(10),
        || async {
            let snapshot = mesh.run(run_id).await;
            let phase = snapshot.phases.first()?.clone();
            (phase.attempt == attempt && phase.state == pb::PhaseState::Queued as i32).then_some(())
        },
    )
    .await;
}

async fn a_hung_executor_gets_no_new_lease_and_the_run_completes_elsewhere(backend: Backend) {
    let mut mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            lease_ttl: Duration::from_secs(1),
            ..MeshOptions::default()
        },
    )
    .await;
    mesh.apply_template(&fixture("single.yaml")).await;
    let run_id = start_single(&mesh).await;

    // An executor with two slots leases attempt 1 and hangs: its stream
    // stays open, its heartbeats stop.
    let mut hung = open_lease(&mesh, "hung", 2).await;
    let lost = next_task(&mut hung).await;
    let lost_key = lost.key.clone().expect("key");
    assert_eq!(lost_key.attempt, 1);
    attempt_queued(&mesh, &run_id, 2).await;

    // Its lease expired for missed heartbeats: it gets nothing new, though
    // it has free slots and attempt 2 is due.
    let nothing = tokio::time::timeout(Duration::from_secs(3), hung.message()).await;
    assert!(
        nothing.is_err(),
        "the hung executor was given another task: {nothing:?}"
    );

    // A healthy executor beside it takes the retry and finishes the run.
    mesh.start_executor();
    let done = mesh
        .run_reaches(&run_id, &[pb::RunStatus::Completed, pb::RunStatus::Failed])
        .await;
    assert_eq!(
        done.run.as_ref().map(|r| r.status),
        Some(pb::RunStatus::Completed as i32),
        "{:?}",
        done.phases
    );
    let accepted = done.phases[0].output.clone().expect("an accepted output");
    assert_eq!((accepted.attempt, accepted.version), (2, 1));

    // The hung executor thaws and writes its output late: it is kept staged,
    // never a version, and its completion is refused.
    let staged = mesh
        .artifacts()
        .await
        .stage_artifact(pb::StageArtifactRequest {
            artifact: Some(pb::PutArtifactRequest {
                key: Some(lost_key.clone()),
                name: accepted.name.clone(),
                media_type: "application/json".into(),
                content: br#"{"late":true}"#.to_vec(),
                schema_json: String::new(),
                created_by: Some(pb::Actor {
                    kind: pb::ActorKind::Phase as i32,
                    id: "late".into(),
                }),
            }),
        })
        .await
        .expect("stage")
        .into_inner()
        .artifact
        .expect("staged");
    assert!(!staged.is_latest);
    assert_eq!(staged.r#ref.as_ref().map(|r| r.version), Some(0));
    let late = mesh
        .tasks()
        .await
        .complete_task(pb::CompleteTaskRequest {
            key: Some(lost_key.clone()),
            lease_id: lost.lease_id.clone(),
            output: staged.r#ref.clone(),
            usage: None,
            accept_tasks: 0,
            output_content: None,
        })
        .await
        .expect_err("a lost attempt's completion is refused");
    assert_eq!(late.code(), Code::FailedPrecondition);
    let listed = versions(&mesh, &run_id).await;
    assert_eq!(
        listed,
        vec![(2, 1, true)],
        "only the accepted attempt's output"
    );
    let latest = mesh
        .artifacts()
        .await
        .get_artifact(pb::GetArtifactRequest {
            artifact_id: accepted.artifact_id.clone(),
            version: 0,
            include_content: false,
        })
        .await
        .expect("latest")
        .into_inner()
        .artifact
        .and_then(|a| a.r#ref)
        .expect("ref");
    assert_eq!(latest.attempt, 2);

    // Its heartbeat shows it is alive again: it may lease once more.
    let heartbeat = mesh
        .tasks()
        .await
        .heartbeat(pb::HeartbeatRequest {
            key: Some(lost_key),
            lease_id: lost.lease_id.clone(),
        })
        .await
        .expect_err("the lease is gone");
    assert_eq!(heartbeat.code(), Code::FailedPrecondition);
    mesh.stop_executor();
    let second_run = start_single(&mesh).await;
    let task = next_task(&mut hung).await;
    assert_eq!(
        task.key.map(|k| k.run_id),
        Some(second_run),
        "the heard-from executor leases again"
    );
    mesh.stop().await;
}

async fn a_closed_stream_releases_its_leases_at_once(backend: Backend) {
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            lease_ttl: Duration::from_secs(30),
            ..MeshOptions::default()
        },
    )
    .await;
    mesh.apply_template(&fixture("single.yaml")).await;
    let run_id = start_single(&mesh).await;
    let mut stream = open_lease(&mesh, "leaving", 1).await;
    let task = next_task(&mut stream).await;
    assert_eq!(task.key.as_ref().map(|k| k.attempt), Some(1));

    let closed_at = tokio::time::Instant::now();
    drop(stream);
    attempt_queued(&mesh, &run_id, 2).await;
    assert!(
        closed_at.elapsed() < Duration::from_secs(3),
        "released after {:?}, not within a heartbeat interval",
        closed_at.elapsed()
    );
    let reasons: Vec<String> = mesh
        .runs()
        .await
        .watch_run(pb::WatchRunRequest {
            run_id: run_id.clone(),
            after_seq: 0,
        })
        .await
        .expect("watch")
        .into_inner()
        .take_while_ready(&mesh, &run_id)
        .await;
    assert!(
        reasons.iter().any(|r| r == "executor leaving disconnected"),
        "{reasons:?}"
    );
    mesh.stop().await;
}

/// An output sent inline with its completion is checked at the door (the
/// attempt's own, small, no schema, not beside a staged one), becomes
/// version 1 once, and a repeat of the completion changes nothing.
async fn an_inline_output_is_checked_then_published_once(backend: Backend) {
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            lease_ttl: Duration::from_secs(30),
            ..MeshOptions::default()
        },
    )
    .await;
    mesh.apply_template(&fixture("unchecked.yaml")).await;
    mesh.apply_template(&fixture("single.yaml")).await;
    let run_id = mesh
        .runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: "unchecked".into(),
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner()
        .run
        .expect("run")
        .id;
    let mut stream = open_lease(&mesh, "inline", 1).await;
    let task = next_task(&mut stream).await;
    let key = task.key.clone().expect("key");
    let content = |bytes: &[u8]| pb::PutArtifactRequest {
        key: Some(key.clone()),
        name: "out".into(),
        media_type: "application/json".into(),
        content: bytes.to_vec(),
        schema_json: String::new(),
        created_by: None,
    };
    let completion = |output_content: pb::PutArtifactRequest| pb::CompleteTaskRequest {
        key: Some(key.clone()),
        lease_id: task.lease_id.clone(),
        output: None,
        usage: None,
        accept_tasks: 0,
        output_content: Some(output_content),
    };

    let foreign = pb::PutArtifactRequest {
        key: Some(pb::AttemptKey {
            attempt: 9,
            ..key.clone()
        }),
        ..content(b"{}")
    };
    let too_big = content(&vec![b' '; 64 * 1024 + 1]);
    let with_schema = pb::PutArtifactRequest {
        schema_json: r#"{"type":"object"}"#.into(),
        ..content(b"{}")
    };
    let both = pb::CompleteTaskRequest {
        output: Some(pb::ArtifactRef {
            run_id: key.run_id.clone(),
            phase_id: key.phase_id.clone(),
            attempt: key.attempt,
            name: "out".into(),
            ..Default::default()
        }),
        ..completion(content(b"{}"))
    };
    for (request, field) in [
        (completion(foreign), "output_content.key"),
        (completion(too_big), "output_content.content"),
        (completion(with_schema), "output_content.schema_json"),
        (both, "output_content"),
    ] {
        let status = mesh
            .tasks()
            .await
            .complete_task(request)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let fields: Vec<String> = orchestra_kit::status::field_violations(&status)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, vec![field.to_owned()]);
    }

    for _ in 0..2 {
        mesh.tasks()
            .await
            .complete_task(completion(content(br#"{"done":true}"#)))
            .await
            .expect("complete inline, and again");
    }
    let snapshot = mesh.run(&run_id).await;
    let status = snapshot.run.map(|r| r.status);
    assert_eq!(status, Some(pb::RunStatus::Completed as i32));
    assert_eq!(versions(&mesh, &run_id).await, vec![(1, 1, true)]);
    let changed = mesh
        .tasks()
        .await
        .complete_task(completion(content(br#"{"done":false}"#)))
        .await
        .expect_err("a repeat with other content");
    assert_eq!(changed.code(), Code::FailedPrecondition);

    // A phase that declares a schema for its output takes it staged only.
    let checked = start_single(&mesh).await;
    let task = next_task(&mut stream).await;
    let key = task.key.clone().expect("key");
    assert_eq!(key.run_id, checked);
    let status = mesh
        .tasks()
        .await
        .complete_task(pb::CompleteTaskRequest {
            key: Some(key.clone()),
            lease_id: task.lease_id.clone(),
            output: None,
            usage: None,
            accept_tasks: 0,
            output_content: Some(pb::PutArtifactRequest {
                key: Some(key.clone()),
                name: "out".into(),
                media_type: "application/json".into(),
                content: b"{}".to_vec(),
                schema_json: String::new(),
                created_by: None,
            }),
        })
        .await
        .expect_err("a checked output inline");
    assert_eq!(status.code(), Code::InvalidArgument);
    mesh.stop().await;
}

/// Reads a live run's events up to its current sequence, keeping the
/// reasons of state changes.
trait TakeWhileReady {
    async fn take_while_ready(self, mesh: &Mesh, run_id: &str) -> Vec<String>;
}

impl TakeWhileReady for tonic::Streaming<pb::WatchRunResponse> {
    async fn take_while_ready(mut self, mesh: &Mesh, run_id: &str) -> Vec<String> {
        let until = mesh.run(run_id).await.seq;
        let mut reasons = Vec::new();
        while let Some(message) = self.message().await.expect("events") {
            let Some(event) = message.event else { continue };
            if let Some(pb::run_event::Body::PhaseStateChanged(change)) = &event.body {
                reasons.push(change.reason.clone());
            }
            if event.seq >= until {
                break;
            }
        }
        reasons
    }
}

mesh_tests!(
    a_hung_executor_gets_no_new_lease_and_the_run_completes_elsewhere,
    a_closed_stream_releases_its_leases_at_once,
    an_inline_output_is_checked_then_published_once,
);
