//! A database outage is a pause, not an error: while the test's own
//! Postgres database refuses connections and has every open one cut, callers
//! get UNAVAILABLE (never INTERNAL) and so does an executor's lease stream;
//! the attempt that was running is not counted against the phase's retries,
//! and once the database is back the run completes.

use std::path::Path;
use std::time::Duration;

use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions};
use tonic::Code;

/// Retries `call` until it gives an error, which it returns (the first
/// call after the cut may still succeed on a connection not yet touched).
async fn first_error<T, F, Fut>(what: &str, mut call: F) -> tonic::Status
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    for _ in 0..100 {
        if let Err(status) = call().await {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} kept succeeding with the database cut off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_is_a_pause() {
    let ttl = Duration::from_secs(1);
    let mesh = Mesh::start(
        Backend::Postgres,
        MeshOptions {
            executor: false,
            lease_ttl: ttl,
            ..MeshOptions::default()
        },
    )
    .await;
    mesh.apply_template(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/single.yaml"))
        .await;
    let run_id = mesh
        .runs()
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
        .id;

    // An executor leases attempt 1 and heartbeats as a real one does,
    // retrying whatever fails.
    let mut stream = mesh
        .tasks()
        .await
        .lease(pb::LeaseRequest {
            executor_id: "steady".into(),
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
    let key = task.key.clone().expect("key");
    let heartbeat = pb::HeartbeatRequest {
        key: Some(key.clone()),
        lease_id: task.lease_id.clone(),
    };
    let tasks = mesh.tasks().await;
    let beating = tokio::spawn({
        let heartbeat = heartbeat.clone();
        let mut tasks = tasks.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = tasks.heartbeat(heartbeat.clone()).await;
            }
        }
    });

    // The database goes away mid-attempt, for longer than the lease lasts.
    mesh.cut_database().await;
    let runs = mesh.runs().await;
    let get_run = first_error("GetRun", || {
        let mut runs = runs.clone();
        let run_id = run_id.clone();
        async move { runs.get_run(pb::GetRunRequest { run_id }).await }
    })
    .await;
    assert_eq!(get_run.code(), Code::Unavailable, "{get_run:?}");
    let beat = first_error("Heartbeat", || {
        let mut tasks = tasks.clone();
        let heartbeat = heartbeat.clone();
        async move { tasks.heartbeat(heartbeat).await }
    })
    .await;
    assert_eq!(beat.code(), Code::Unavailable, "{beat:?}");
    let output = pb::PutArtifactRequest {
        key: Some(key.clone()),
        name: "out".into(),
        media_type: "application/json".into(),
        content: br#"{"steady":true}"#.to_vec(),
        schema_json: String::new(),
        created_by: Some(pb::Actor {
            kind: pb::ActorKind::Phase as i32,
            id: "steady".into(),
        }),
    };
    let artifacts = mesh.artifacts().await;
    let stage = first_error("StageArtifact", || {
        let mut artifacts = artifacts.clone();
        let output = output.clone();
        async move {
            artifacts
                .stage_artifact(pb::StageArtifactRequest {
                    artifact: Some(output),
                })
                .await
        }
    })
    .await;
    assert_eq!(stage.code(), Code::Unavailable, "{stage:?}");
    // The lease stream says so too.
    let mut during = mesh
        .tasks()
        .await
        .lease(pb::LeaseRequest {
            executor_id: "newcomer".into(),
            slots: 1,
            kinds: Vec::new(),
        })
        .await
        .expect("the stream opens")
        .into_inner();
    let said = tokio::time::timeout(Duration::from_secs(10), during.message())
        .await
        .expect("the stream answers")
        .expect_err("the stream reports the outage");
    assert_eq!(said.code(), Code::Unavailable, "{said:?}");
    drop(during);
    tokio::time::sleep(ttl * 2).await;

    // The database comes back; the executor reconnects, as a real one does.
    mesh.restore_database().await;
    let _reconnected = mesh
        .tasks()
        .await
        .lease(pb::LeaseRequest {
            executor_id: "steady".into(),
            slots: 1,
            kinds: Vec::new(),
        })
        .await
        .expect("lease again")
        .into_inner();
    drop(stream);
    let staged = mesh
        .eventually("the output is staged", Duration::from_secs(10), || {
            let mut artifacts = artifacts.clone();
            let output = output.clone();
            async move {
                artifacts
                    .stage_artifact(pb::StageArtifactRequest {
                        artifact: Some(output),
                    })
                    .await
                    .ok()
            }
        })
        .await
        .into_inner()
        .artifact
        .and_then(|a| a.r#ref);
    let complete = pb::CompleteTaskRequest {
        key: Some(key.clone()),
        lease_id: task.lease_id.clone(),
        output: staged,
        usage: None,
        accept_tasks: 0,
        output_content: None,
    };
    mesh.eventually(
        "the completion is accepted",
        Duration::from_secs(10),
        || {
            let mut tasks = tasks.clone();
            let complete = complete.clone();
            async move {
                match tasks.complete_task(complete).await {
                    Ok(_) => Some(()),
                    Err(status) => {
                        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                        None
                    }
                }
            }
        },
    )
    .await;
    beating.abort();

    let done = mesh
        .run_reaches(&run_id, &[pb::RunStatus::Completed, pb::RunStatus::Failed])
        .await;
    assert_eq!(
        done.run.as_ref().map(|r| r.status),
        Some(pb::RunStatus::Completed as i32),
        "{:?}",
        done.phases
    );
    assert_eq!(
        done.phases[0].attempt, 1,
        "the attempt the outage paused is the one accepted"
    );
    mesh.stop().await;
}
