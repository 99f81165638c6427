//! Human tasks across the mesh: a decision that could not be applied is
//! refused when it is made (never accepted and then failing the run), and a
//! run that no longer needs a task closes it in the review service.

use std::time::Duration;

use orchestra_db::Backend;
use orchestra_kit::status::field_violations;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests, repo_root};
use tokio_stream::StreamExt;
use tonic::Code;

fn context_json() -> String {
    std::fs::read_to_string(repo_root().join("examples/backtrack/inputs/context.json"))
        .expect("example context")
}

async fn apply_backtrack(mesh: &Mesh) {
    mesh.apply_template(&repo_root().join("examples/backtrack/template.yaml"))
        .await;
}

async fn start_backtrack(mesh: &Mesh) -> String {
    mesh.runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: "backtrack-ui-patch".into(),
            seed: Some(11),
            ..Default::default()
        })
        .await
        .expect("run starts")
        .into_inner()
        .run
        .expect("run")
        .id
}

async fn submit_context(mesh: &Mesh, run_id: &str) {
    let form = mesh.human_task(run_id, "context").await;
    mesh.review()
        .await
        .submit_input(pb::SubmitInputRequest {
            task_id: form.id,
            content_json: context_json(),
            person: "ana".into(),
        })
        .await
        .expect("the context is accepted");
}

fn approve(task_id: &str, selected: &[&str]) -> pb::DecideRequest {
    pb::DecideRequest {
        task_id: task_id.to_owned(),
        kind: pb::DecisionKind::Approve as i32,
        comment: String::new(),
        selected: selected.iter().map(|s| (*s).to_owned()).collect(),
        retry_phases: Vec::new(),
        person: "ben".into(),
    }
}

fn phase_state(snapshot: &pb::GetRunResponse, id: &str) -> i32 {
    snapshot
        .phases
        .iter()
        .find(|p| p.id == id)
        .map(|p| p.state)
        .expect("phase")
}

/// Newcomer review B1 and B2: an approval without a pick, or picking
/// evidence, used to be accepted and then fail the run at the merge.
async fn an_unusable_selection_is_refused_and_the_run_goes_on(backend: Backend) {
    let mesh = Mesh::start(backend, MeshOptions::default()).await;
    apply_backtrack(&mesh).await;
    let run_id = start_backtrack(&mesh).await;
    submit_context(&mesh, &run_id).await;
    let task = mesh.human_task(&run_id, "review").await;
    assert_eq!(
        task.candidates,
        ["a", "b"],
        "scores and preview are evidence"
    );
    assert_eq!(task.selection, pb::Selection::One as i32);
    let mut review = mesh.review().await;

    let none = review
        .decide(approve(&task.id, &[]))
        .await
        .expect_err("one of two must be picked");
    assert_eq!(none.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&none),
        [(
            "selected".to_owned(),
            "this review needs exactly one candidate: pick one of a, b".to_owned()
        )]
    );
    let scores = review
        .decide(approve(&task.id, &["scores"]))
        .await
        .expect_err("scores are not a candidate");
    assert_eq!(
        field_violations(&scores),
        [(
            "selected[0]".to_owned(),
            "`scores` is shown as evidence, not a candidate; choose from: a, b".to_owned()
        )]
    );
    let both = review
        .decide(approve(&task.id, &["a", "b"]))
        .await
        .expect_err("exactly one");
    assert_eq!(both.code(), Code::InvalidArgument);

    let snapshot = mesh.run(&run_id).await;
    assert_eq!(
        phase_state(&snapshot, "review"),
        pb::PhaseState::ReadyForReview as i32,
        "the refusals changed nothing"
    );
    review
        .decide(approve(&task.id, &["b"]))
        .await
        .expect("a usable approval");
    review
        .decide(approve(&task.id, &["b"]))
        .await
        .expect("the same approval again is idempotent");
    let done = mesh
        .run_reaches(&run_id, &[pb::RunStatus::Completed, pb::RunStatus::Failed])
        .await;
    assert_eq!(
        done.run.as_ref().map(|r| r.status),
        Some(pb::RunStatus::Completed as i32),
        "phases: {:?}",
        done.phases
    );
    let approvals = mesh
        .events(&run_id)
        .await
        .into_iter()
        .filter(|e| {
            matches!(&e.body, Some(pb::run_event::Body::PhaseStateChanged(c))
                if c.phase_id == "review" && c.to == pb::PhaseState::Approved as i32)
        })
        .count();
    assert_eq!(approvals, 1, "approved once");
    mesh.stop().await;
}

/// Newcomer review B3: cancelling a run left its human tasks open, and an
/// answer on them "succeeded" and was dropped.
async fn cancelling_a_run_closes_its_human_tasks(backend: Backend) {
    let mesh = Mesh::start(backend, MeshOptions::default()).await;
    let mut review = mesh.review().await;
    let mut inbox = review
        .watch_inbox(pb::WatchInboxRequest {})
        .await
        .expect("watch the inbox")
        .into_inner();

    apply_backtrack(&mesh).await;
    // A form waiting for its input.
    let waiting = start_backtrack(&mesh).await;
    let form = mesh.human_task(&waiting, "context").await;
    // A review waiting for its decision.
    let reviewing = start_backtrack(&mesh).await;
    submit_context(&mesh, &reviewing).await;
    let decision = mesh.human_task(&reviewing, "review").await;

    for run_id in [&waiting, &reviewing] {
        mesh.runs()
            .await
            .cancel_run(pb::CancelRunRequest {
                run_id: run_id.clone(),
                reason: "not needed".into(),
            })
            .await
            .expect("cancel");
    }
    for task_id in [&form.id, &decision.id] {
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(message) = inbox.next().await {
                let task = message.expect("inbox").task.expect("task");
                if &task.id == task_id && task.state == pb::HumanTaskState::Cancelled as i32 {
                    return task;
                }
            }
            panic!("the inbox stream ended");
        })
        .await
        .expect("the inbox reports the task closed");
        assert_eq!(closed.closed_reason, "the run was cancelled: not needed");
    }
    let open = review
        .list_inbox(pb::ListInboxRequest::default())
        .await
        .expect("inbox")
        .into_inner()
        .tasks;
    assert!(open.is_empty(), "no dead tasks left: {open:?}");

    let late_form = review
        .submit_input(pb::SubmitInputRequest {
            task_id: form.id.clone(),
            content_json: context_json(),
            person: "ana".into(),
        })
        .await
        .expect_err("the run was cancelled");
    assert_eq!(late_form.code(), Code::FailedPrecondition);
    assert!(
        late_form.message().contains("not needed"),
        "{}",
        late_form.message()
    );
    let late_decision = review
        .decide(approve(&decision.id, &["a"]))
        .await
        .expect_err("the run was cancelled");
    assert_eq!(late_decision.code(), Code::FailedPrecondition);
    for run_id in [&waiting, &reviewing] {
        let snapshot = mesh.run(run_id).await;
        assert_eq!(
            snapshot.run.as_ref().map(|r| r.status),
            Some(pb::RunStatus::Cancelled as i32)
        );
    }
    mesh.stop().await;
}

/// An input the template does not declare is refused naming it, and the
/// message says when the template takes none at all.
async fn an_undeclared_input_is_refused_by_name(backend: Backend) {
    let mesh = Mesh::start(backend, MeshOptions::default()).await;
    apply_backtrack(&mesh).await;
    let refused = mesh
        .runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: "backtrack-ui-patch".into(),
            inputs: [("brief".to_owned(), "{}".to_owned())].into(),
            ..Default::default()
        })
        .await
        .expect_err("backtrack takes no inputs");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&refused),
        [(
            "inputs.brief".to_owned(),
            "template backtrack-ui-patch takes no inputs; remove `brief`".to_owned()
        )]
    );
    mesh.stop().await;
}

mesh_tests!(
    an_undeclared_input_is_refused_by_name,
    an_unusable_selection_is_refused_and_the_run_goes_on,
    cancelling_a_run_closes_its_human_tasks,
);
