//! Nothing accepted is lost across a dropped stream or a restart: a watcher
//! resumes from its last sequence with no gap and no duplicate; a scheduler
//! restarted mid-run finishes the run; a review decision made while the
//! scheduler is down is applied once it is back.

use std::time::Duration;

use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests, repo_root};

async fn start_backtrack(mesh: &Mesh) -> String {
    mesh.apply_template(&repo_root().join("examples/backtrack/template.yaml"))
        .await;
    mesh.runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: "backtrack-ui-patch".into(),
            seed: Some(11),
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner()
        .run
        .expect("run")
        .id
}

async fn submit_context(mesh: &Mesh, run_id: &str) {
    let form = mesh.human_task(run_id, "context").await;
    let content_json =
        std::fs::read_to_string(repo_root().join("examples/backtrack/inputs/context.json"))
            .expect("context");
    mesh.review()
        .await
        .submit_input(pb::SubmitInputRequest {
            task_id: form.id,
            content_json,
            person: "ana".into(),
        })
        .await
        .expect("submit");
}

async fn approve(mesh: &Mesh, task_id: &str) {
    mesh.review()
        .await
        .decide(pb::DecideRequest {
            task_id: task_id.to_owned(),
            kind: pb::DecisionKind::Approve as i32,
            comment: "ship it".into(),
            selected: vec!["b".into()],
            retry_phases: Vec::new(),
            person: "ben".into(),
        })
        .await
        .expect("decide");
}

/// Reads events from a stream until `stop` says so or the stream ends.
async fn read_until(
    stream: &mut tonic::Streaming<pb::WatchRunResponse>,
    seqs: &mut Vec<i64>,
    stop: impl Fn(&pb::RunEvent) -> bool,
) {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("events keep coming")
            .expect("stream");
        let Some(message) = message else { return };
        let event = message.event.expect("event");
        seqs.push(event.seq);
        if stop(&event) {
            return;
        }
    }
}

async fn watch(
    mesh: &Mesh,
    run_id: &str,
    after_seq: i64,
) -> tonic::Streaming<pb::WatchRunResponse> {
    mesh.runs()
        .await
        .watch_run(pb::WatchRunRequest {
            run_id: run_id.to_owned(),
            after_seq,
        })
        .await
        .expect("watch")
        .into_inner()
}

fn opens_task_for(phase: &'static str) -> impl Fn(&pb::RunEvent) -> bool {
    move |event| matches!(&event.body, Some(pb::run_event::Body::HumanTaskOpened(t)) if t.phase_id == phase)
}

async fn a_watcher_resumes_without_gap_or_duplicate(backend: Backend) {
    let mesh = Mesh::start(backend, MeshOptions::default()).await;
    let run_id = start_backtrack(&mesh).await;
    let mut seqs = Vec::new();

    let mut first = watch(&mesh, &run_id, 0).await;
    read_until(&mut first, &mut seqs, opens_task_for("context")).await;
    drop(first); // the watcher goes away mid-run…

    submit_context(&mesh, &run_id).await;
    let review = mesh.human_task(&run_id, "review").await;

    // …and comes back from its last sequence while the run moves on.
    let last = *seqs.last().expect("some events");
    let mut second = watch(&mesh, &run_id, last).await;
    read_until(&mut second, &mut seqs, opens_task_for("review")).await;
    drop(second);
    approve(&mesh, &review.id).await;
    let mut third = watch(&mesh, &run_id, *seqs.last().expect("events")).await;
    read_until(&mut third, &mut seqs, |_| false).await;

    let done = mesh.run_reaches(&run_id, &[pb::RunStatus::Completed]).await;
    assert_eq!(
        seqs,
        (1..=done.seq).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    mesh.stop().await;
}

async fn a_restarted_scheduler_finishes_the_run(backend: Backend) {
    let mut mesh = Mesh::start(backend, MeshOptions::default()).await;
    let run_id = start_backtrack(&mesh).await;
    submit_context(&mesh, &run_id).await;
    // Restart while the variants are being generated.
    mesh.stop_scheduler().await;
    let down = mesh
        .runs()
        .await
        .get_run(pb::GetRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .expect_err("the scheduler is down");
    assert_eq!(down.code(), tonic::Code::Unavailable);
    tokio::time::sleep(Duration::from_millis(300)).await;
    mesh.start_scheduler().await;

    let review = mesh.human_task(&run_id, "review").await;
    approve(&mesh, &review.id).await;
    let done = mesh
        .run_reaches(&run_id, &[pb::RunStatus::Completed, pb::RunStatus::Failed])
        .await;
    assert_eq!(
        done.run.as_ref().map(|r| r.status),
        Some(pb::RunStatus::Completed as i32),
        "{:?}",
        done.phases
    );
    mesh.stop().await;
}

async fn a_decision_made_while_the_scheduler_is_down_is_applied(backend: Backend) {
    let mut mesh = Mesh::start(backend, MeshOptions::default()).await;
    let run_id = start_backtrack(&mesh).await;
    submit_context(&mesh, &run_id).await;
    let review = mesh.human_task(&run_id, "review").await;
    mesh.eventually("the review is ready", Duration::from_secs(30), || async {
        let snapshot = mesh.run(&run_id).await;
        snapshot
            .phases
            .iter()
            .any(|p| p.id == "review" && p.state == pb::PhaseState::ReadyForReview as i32)
            .then_some(())
    })
    .await;

    mesh.stop_scheduler().await;
    approve(&mesh, &review.id).await; // accepted by the review service alone
    tokio::time::sleep(Duration::from_millis(500)).await;
    mesh.start_scheduler().await;

    let done = mesh
        .run_reaches(&run_id, &[pb::RunStatus::Completed, pb::RunStatus::Failed])
        .await;
    assert_eq!(
        done.run.as_ref().map(|r| r.status),
        Some(pb::RunStatus::Completed as i32)
    );
    let mut stream = watch(&mesh, &run_id, 0).await;
    let mut approvals = 0;
    while let Some(message) = stream.message().await.expect("events") {
        if let Some(pb::run_event::Body::PhaseStateChanged(change)) =
            message.event.and_then(|e| e.body)
            && change.phase_id == "review"
            && change.to == pb::PhaseState::Approved as i32
        {
            approvals += 1;
            assert_eq!(change.actor.map(|a| a.id), Some("ben".to_owned()));
        }
    }
    assert_eq!(approvals, 1, "the decision is applied exactly once");
    mesh.stop().await;
}

mesh_tests!(
    a_watcher_resumes_without_gap_or_duplicate,
    a_restarted_scheduler_finishes_the_run,
    a_decision_made_while_the_scheduler_is_down_is_applied,
);

/// Two scheduler replicas on one Postgres database: a run started on one is
/// leased and watched through the other, woken by LISTEN/NOTIFY (polling is
/// set far too slow to pass this test).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_wake_each_other() {
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
    mesh.start_executor_at(&replica);
    mesh.apply_template(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/diamond.yaml"),
    )
    .await;
    let mut runs_on_replica = pb::run_service_client::RunServiceClient::connect(replica)
        .await
        .expect("replica");
    let run = mesh
        .runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: "diamond".into(),
            ..Default::default()
        })
        .await
        .expect("start on the first replica")
        .into_inner()
        .run
        .expect("run");
    let mut stream = runs_on_replica
        .watch_run(pb::WatchRunRequest {
            run_id: run.id.clone(),
            after_seq: 0,
        })
        .await
        .expect("watch on the second replica")
        .into_inner();
    let mut seqs = Vec::new();
    read_until(&mut stream, &mut seqs, |_| false).await;
    let done = mesh.run(&run.id).await;
    assert_eq!(
        done.run.map(|r| r.status),
        Some(pb::RunStatus::Completed as i32)
    );
    assert_eq!(seqs, (1..=done.seq).collect::<Vec<_>>());
    mesh.stop().await;
}
