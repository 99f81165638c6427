//! The Backtrack workflow end to end over real gRPC: a person writes the
//! context, two variants are generated in parallel, a person reviews them
//! with their diff, rubric scores and preview, and the approved one is merged.

use std::time::Duration;

use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests, repo_root};
use tonic::Code;

fn context_json() -> String {
    std::fs::read_to_string(repo_root().join("examples/backtrack/inputs/context.json"))
        .expect("example context")
}

async fn backtrack_runs_end_to_end(backend: Backend) {
    let mesh = Mesh::start(backend, MeshOptions::default()).await;
    let template = mesh
        .apply_template(&repo_root().join("examples/backtrack/template.yaml"))
        .await;
    assert_eq!(template.version, 1);
    let run = mesh
        .runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: "backtrack-ui-patch".into(),
            seed: Some(7),
            ..Default::default()
        })
        .await
        .expect("run starts")
        .into_inner()
        .run
        .expect("run");

    // A: the context form refuses what breaks its schema, with field paths.
    let form = mesh.human_task(&run.id, "context").await;
    assert_eq!(form.kind, pb::HumanTaskKind::Input as i32);
    let refused = mesh
        .review()
        .await
        .submit_input(pb::SubmitInputRequest {
            task_id: form.id.clone(),
            content_json: r#"{"intent": 5}"#.into(),
            person: "ana".into(),
        })
        .await
        .expect_err("an invalid form is refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(!orchestra_kit::status::field_violations(&refused).is_empty());
    mesh.review()
        .await
        .submit_input(pb::SubmitInputRequest {
            task_id: form.id.clone(),
            content_json: context_json(),
            person: "ana".into(),
        })
        .await
        .expect("a valid form is accepted");

    // B, C in parallel, then scores and preview; D waits for a decision.
    let review_task = mesh.human_task(&run.id, "review").await;
    let snapshot = mesh
        .run_reaches(&run.id, &[pb::RunStatus::WaitingForHuman])
        .await;
    let state_of = |snapshot: &pb::GetRunResponse, id: &str| {
        snapshot
            .phases
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.state)
            .expect("phase")
    };
    assert_eq!(
        state_of(&snapshot, "variant_a"),
        pb::PhaseState::Completed as i32
    );
    assert_eq!(
        state_of(&snapshot, "variant_b"),
        pb::PhaseState::Completed as i32
    );
    let shown = mesh
        .review()
        .await
        .get_task(pb::GetTaskRequest {
            task_id: review_task.id.clone(),
        })
        .await
        .expect("review task")
        .into_inner()
        .task
        .expect("task");
    let names: Vec<&str> = shown.items.iter().map(|i| i.name.as_str()).collect();
    for name in ["a", "b", "scores", "preview"] {
        assert!(names.contains(&name), "review shows {name}: {names:?}");
    }
    assert!(shown.items.iter().all(|i| !i.content.is_empty()));
    assert!(
        shown.diffs.iter().any(|d| d.left == "a" && d.right == "b"),
        "the two variants are diffed: {:?}",
        shown.diffs
    );

    mesh.review()
        .await
        .decide(pb::DecideRequest {
            task_id: review_task.id.clone(),
            kind: pb::DecisionKind::Approve as i32,
            comment: "a reads better".into(),
            selected: vec!["a".into()],
            retry_phases: Vec::new(),
            person: "ben".into(),
        })
        .await
        .expect("decision");

    // E merges the approved variant into the next parent version.
    let done = mesh
        .run_reaches(&run.id, &[pb::RunStatus::Completed, pb::RunStatus::Failed])
        .await;
    assert_eq!(
        done.run.as_ref().map(|r| r.status),
        Some(pb::RunStatus::Completed as i32),
        "phases: {:?}",
        done.phases
    );
    assert_eq!(state_of(&done, "review"), pb::PhaseState::Approved as i32);
    let merge = done.phases.iter().find(|p| p.id == "merge").expect("merge");
    let parent = merge.output.clone().expect("merge output");
    let content = mesh
        .artifacts()
        .await
        .get_artifact(pb::GetArtifactRequest {
            artifact_id: parent.artifact_id,
            version: parent.version,
            include_content: true,
        })
        .await
        .expect("parent")
        .into_inner()
        .artifact
        .expect("artifact")
        .content;
    let parent: serde_json::Value = serde_json::from_slice(&content).expect("JSON");
    let baseline: serde_json::Value = serde_json::from_str(&context_json()).expect("JSON");
    assert_eq!(
        parent["version"].as_i64(),
        baseline["baseline"]["version"].as_i64().map(|v| v + 1),
        "the merge makes the next parent version"
    );
    assert_eq!(parent["applied"], serde_json::json!(["a"]));

    // The log replays gaplessly from the start and ends with the run.
    let mut stream = mesh
        .runs()
        .await
        .watch_run(pb::WatchRunRequest {
            run_id: run.id.clone(),
            after_seq: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    let mut seqs = Vec::new();
    while let Some(message) = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream ends by itself")
        .expect("stream")
    {
        seqs.push(message.event.expect("event").seq);
    }
    let last = done.seq;
    assert_eq!(seqs, (1..=last).collect::<Vec<_>>());
    mesh.stop().await;
}

mesh_tests!(backtrack_runs_end_to_end);
