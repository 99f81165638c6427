//! Two parents completing at the same instant ready their child exactly
//! once: the test acts as an executor over real gRPC and completes `b` and
//! `c` of a diamond concurrently, many times over.

use std::time::Duration;

use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests};

async fn next_task(stream: &mut tonic::Streaming<pb::LeaseResponse>) -> pb::Task {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("a task arrives")
        .expect("stream")
        .expect("open")
        .task
        .expect("task")
}

async fn complete(mesh: &Mesh, task: &pb::Task) {
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
}

async fn parents_finishing_together_ready_the_child_once(backend: Backend) {
    let rounds = match backend {
        Backend::Postgres => 200,
        Backend::Sqlite => 25,
    };
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            ..MeshOptions::default()
        },
    )
    .await;
    mesh.apply_template(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diamond.yaml"),
    )
    .await;
    let mut stream = mesh
        .tasks()
        .await
        .lease(pb::LeaseRequest {
            executor_id: "race-test".into(),
            slots: 8,
            kinds: Vec::new(),
        })
        .await
        .expect("lease")
        .into_inner();
    for round in 0..rounds {
        let run = mesh
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
            .expect("run");
        let a = next_task(&mut stream).await;
        complete(&mesh, &a).await;
        let first = next_task(&mut stream).await;
        let second = next_task(&mut stream).await;
        let mut parents: Vec<&str> = [&first, &second]
            .iter()
            .map(|t| t.key.as_ref().map_or("", |k| k.phase_id.as_str()))
            .collect();
        parents.sort_unstable();
        assert_eq!(parents, ["b", "c"], "round {round}");
        tokio::join!(complete(&mesh, &first), complete(&mesh, &second));
        let d = next_task(&mut stream).await;
        assert_eq!(d.key.as_ref().map(|k| k.phase_id.as_str()), Some("d"));
        assert_eq!(d.key.as_ref().map(|k| k.attempt), Some(1));
        complete(&mesh, &d).await;

        mesh.run_reaches(&run.id, &[pb::RunStatus::Completed]).await;
        let d_moves: Vec<i32> = mesh
            .events(&run.id)
            .await
            .into_iter()
            .filter_map(|event| match event.body {
                Some(pb::run_event::Body::PhaseStateChanged(change)) if change.phase_id == "d" => {
                    Some(change.to)
                }
                _ => None,
            })
            .collect();
        let count =
            |state: pb::PhaseState| d_moves.iter().filter(|to| **to == state as i32).count();
        let (readied, queued) = (count(pb::PhaseState::Ready), count(pb::PhaseState::Queued));
        assert_eq!(
            (readied, queued),
            (1, 1),
            "round {round}: d readied and queued once"
        );
    }
    // No stray task was queued for d: nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), stream.message())
            .await
            .is_err(),
        "no further task is leased"
    );
    mesh.stop().await;
}

mesh_tests!(parents_finishing_together_ready_the_child_once);
