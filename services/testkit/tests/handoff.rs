//! How tasks reach executors besides one at a time. Claims: a Lease stream
//! takes a run's due tasks together, up to its free slots. Hand-on: a completion that accepts a task gets a phase it readied, or
//! else the queue's next task when that is its own run's, leased in the
//! same transaction with that phase's inputs; a repeat of the completion
//! gets the same task again; the phases it did not take stay queued for
//! the Lease stream.

use std::path::Path;
use std::time::Duration;

use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests};
use tonic::Code;

async fn start(mesh: &Mesh, template: &str) -> String {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{template}.yaml"));
    mesh.apply_template(&fixture).await;
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

/// A mesh with no executor: the test reports as one.
async fn mesh_without_executor(backend: Backend) -> Mesh {
    Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            ..MeshOptions::default()
        },
    )
    .await
}

/// Opens a Lease stream for every kind with `slots` slots.
async fn lease(mesh: &Mesh, executor_id: &str, slots: u32) -> tonic::Streaming<pb::LeaseResponse> {
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

async fn start_joined(mesh: &Mesh) -> String {
    start(mesh, "joined").await
}

/// Completes a task that stores no output, accepting `accept` tasks.
async fn complete_bare(mesh: &Mesh, task: &pb::Task, accept: u32) -> Vec<pb::Task> {
    mesh.tasks()
        .await
        .complete_task(pb::CompleteTaskRequest {
            key: task.key.clone(),
            lease_id: task.lease_id.clone(),
            output: None,
            usage: None,
            accept_tasks: accept,
            output_content: None,
        })
        .await
        .expect("complete")
        .into_inner()
        .tasks
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

/// The completion of `task` with a stored output, accepting `accept` tasks.
fn completion(task: &pb::Task, output: pb::ArtifactRef, accept: u32) -> pb::CompleteTaskRequest {
    pb::CompleteTaskRequest {
        key: task.key.clone(),
        lease_id: task.lease_id.clone(),
        output: Some(output),
        usage: None,
        accept_tasks: accept,
        output_content: None,
    }
}

/// Stores `task`'s output as its executor would, and completes it.
async fn complete(
    mesh: &Mesh,
    task: &pb::Task,
    accept: u32,
) -> (pb::CompleteTaskRequest, Vec<pb::Task>) {
    let staged = mesh
        .artifacts()
        .await
        .stage_artifact(pb::StageArtifactRequest {
            artifact: Some(pb::PutArtifactRequest {
                key: task.key.clone(),
                name: "out".into(),
                media_type: "application/json".into(),
                content: br#"{"ok":true}"#.to_vec(),
                schema_json: String::new(),
                created_by: None,
            }),
        })
        .await
        .expect("stage")
        .into_inner()
        .artifact
        .and_then(|a| a.r#ref)
        .expect("ref");
    let request = completion(task, staged, accept);
    let tasks = mesh
        .tasks()
        .await
        .complete_task(request.clone())
        .await
        .expect("complete")
        .into_inner()
        .tasks;
    (request, tasks)
}

fn phase_id(task: &pb::Task) -> &str {
    task.key.as_ref().map_or("", |k| k.phase_id.as_str())
}

async fn state_of(mesh: &Mesh, run_id: &str, phase_id: &str) -> pb::PhaseState {
    let snapshot = mesh.run(run_id).await;
    let phase = snapshot
        .phases
        .iter()
        .find(|p| p.id == phase_id)
        .expect("phase");
    pb::PhaseState::try_from(phase.state).expect("state")
}

async fn a_completion_hands_on_a_phase_it_readied(backend: Backend) {
    let mesh = mesh_without_executor(backend).await;
    let run_id = start_joined(&mesh).await;
    let mut stream = lease(&mesh, "hand", 1).await;
    let a = next_task(&mut stream).await;
    assert_eq!(phase_id(&a), "a");

    // a readies b and c; the one slot a frees takes one of them at once.
    let (request, handed) = complete(&mesh, &a, 1).await;
    assert_eq!(handed.len(), 1, "one task for the one slot");
    let first = handed[0].clone();
    let other = if phase_id(&first) == "b" { "c" } else { "b" };
    assert!(["b", "c"].contains(&phase_id(&first)));
    assert_eq!(
        state_of(&mesh, &run_id, phase_id(&first)).await,
        pb::PhaseState::Running
    );
    assert_eq!(
        state_of(&mesh, &run_id, other).await,
        pb::PhaseState::Queued
    );
    let inputs: Vec<&String> = first.inputs.keys().collect();
    assert_eq!(inputs, ["x"], "the handed task carries its input");

    // A repeat of the completion (its answer lost) gets the same task.
    let again = mesh
        .tasks()
        .await
        .complete_task(request)
        .await
        .expect("a repeat is accepted")
        .into_inner()
        .tasks;
    assert_eq!(again, handed);

    // Completing without accepting frees the slot: the stream sends the other.
    let (_, none) = complete(&mesh, &first, 0).await;
    assert!(none.is_empty());
    let second = next_task(&mut stream).await;
    assert_eq!(phase_id(&second), other);

    // The last parent hands on the join, with both inputs, though the
    // change loaded only its own reach.
    let (_, handed) = complete(&mesh, &second, 1).await;
    assert_eq!(handed.len(), 1);
    let d = &handed[0];
    assert_eq!(phase_id(d), "d");
    let mut inputs: Vec<(&String, &str)> = d
        .inputs
        .iter()
        .map(|(name, r)| (name, r.artifact_id.as_str()))
        .collect();
    inputs.sort();
    assert_eq!(inputs.len(), 2);
    assert!(inputs.iter().all(|(_, id)| !id.is_empty()), "{inputs:?}");
    assert_eq!(inputs[0].0, "x");
    assert_eq!(inputs[1].0, "y");

    let (_, none) = complete(&mesh, d, 1).await;
    assert!(none.is_empty(), "nothing left to hand on");
    let done = mesh.run_reaches(&run_id, &[pb::RunStatus::Completed]).await;
    assert_eq!(done.phases.iter().map(|p| p.attempt).max(), Some(1));
    mesh.stop().await;
}

async fn a_completion_takes_at_most_the_slot_it_frees(backend: Backend) {
    let mesh = mesh_without_executor(backend).await;
    let run_id = start_joined(&mesh).await;
    let mut stream = lease(&mesh, "greedy", 1).await;
    let a = next_task(&mut stream).await;
    let refused = mesh
        .tasks()
        .await
        .complete_task(pb::CompleteTaskRequest {
            key: a.key.clone(),
            lease_id: a.lease_id.clone(),
            output: None,
            usage: None,
            accept_tasks: 2,
            output_content: None,
        })
        .await
        .expect_err("two tasks for one slot");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields: Vec<String> = orchestra_kit::status::field_violations(&refused)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, ["accept_tasks"]);
    assert_eq!(state_of(&mesh, &run_id, "a").await, pb::PhaseState::Running);
    mesh.stop().await;
}

/// With nothing readied, a completion takes the oldest due task of its
/// kind when that task is its own run's (a fan-out goes sibling to
/// sibling), and leaves another run's to the Lease stream.
async fn a_completion_takes_the_next_in_line_only_from_its_own_run(backend: Backend) {
    let mesh = mesh_without_executor(backend).await;
    let single = start(&mesh, "single").await;
    let fanout = start(&mesh, "fanout").await;
    let mut stream = lease(&mesh, "fifo", 1).await;
    let only = next_task(&mut stream).await;
    assert_eq!(
        only.key.as_ref().map(|k| k.run_id.as_str()),
        Some(single.as_str())
    );

    // Next in line is the fan-out's root: another run's, left to the stream.
    let (_, handed) = complete(&mesh, &only, 1).await;
    assert!(handed.is_empty(), "{handed:?}");
    let root = next_task(&mut stream).await;
    assert_eq!(phase_id(&root), "root");

    assert!(complete_bare(&mesh, &root, 0).await.is_empty());
    let c1 = next_task(&mut stream).await;
    assert_eq!(phase_id(&c1), "c1");

    // c1 readies nothing; its run's c2 is next in line.
    let handed = complete_bare(&mesh, &c1, 1).await;
    assert_eq!(handed.iter().map(phase_id).collect::<Vec<_>>(), ["c2"]);
    assert_eq!(
        complete_bare(&mesh, &c1, 1).await,
        handed,
        "a repeat gets the same task"
    );
    let c3 = complete_bare(&mesh, &handed[0], 1).await;
    assert_eq!(c3.iter().map(phase_id).collect::<Vec<_>>(), ["c3"]);
    let join = complete_bare(&mesh, &c3[0], 1).await;
    assert_eq!(join.iter().map(phase_id).collect::<Vec<_>>(), ["join"]);
    assert!(complete_bare(&mesh, &join[0], 1).await.is_empty());
    let done = mesh.run_reaches(&fanout, &[pb::RunStatus::Completed]).await;
    assert!(done.phases.iter().all(|p| p.attempt == 1));
    mesh.stop().await;
}

/// A Lease stream claims a run's due tasks together, in one transaction
/// (their start events share one time and follow each other), and never
/// more than its free slots.
async fn a_stream_claims_a_run_s_due_tasks_together_up_to_its_free_slots(backend: Backend) {
    let mesh = mesh_without_executor(backend).await;
    let run_id = start(&mesh, "fanout").await;
    let mut stream = lease(&mesh, "claims", 2).await;
    let root = next_task(&mut stream).await;
    assert!(complete_bare(&mesh, &root, 0).await.is_empty());
    let first = next_task(&mut stream).await;
    let second = next_task(&mut stream).await;
    assert_eq!(
        [phase_id(&first), phase_id(&second)],
        ["c1", "c2"],
        "the oldest first"
    );
    // c3 waits for a slot.
    assert_eq!(state_of(&mesh, &run_id, "c3").await, pb::PhaseState::Queued);
    assert!(complete_bare(&mesh, &first, 0).await.is_empty());
    let third = next_task(&mut stream).await;
    assert_eq!(phase_id(&third), "c3");
    assert!(complete_bare(&mesh, &second, 0).await.is_empty());
    assert!(complete_bare(&mesh, &third, 0).await.is_empty());
    let join = next_task(&mut stream).await;
    assert!(complete_bare(&mesh, &join, 0).await.is_empty());

    let running = pb::PhaseState::Running as i32;
    let starts: Vec<(i64, String, Option<orchestra_proto::Timestamp>)> = mesh
        .events(&run_id)
        .await
        .into_iter()
        .filter_map(|e| match e.body {
            Some(pb::run_event::Body::PhaseStateChanged(c)) if c.to == running => {
                Some((e.seq, c.phase_id, e.time))
            }
            _ => None,
        })
        .collect();
    let claimed: Vec<_> = starts
        .iter()
        .filter(|(_, id, _)| id == "c1" || id == "c2")
        .collect();
    assert_eq!(claimed.len(), 2, "{starts:?}");
    assert_eq!(claimed[0].2, claimed[1].2, "one transaction's time");
    assert_eq!(claimed[0].0 + 1, claimed[1].0, "one transaction's events");
    mesh.stop().await;
}

/// Many completions of one run at once (they commit together when they
/// arrive together): each is answered for itself, a stale one is refused
/// without failing the others, and the join runs once.
async fn completions_arriving_together_are_each_answered(backend: Backend) {
    let mesh = mesh_without_executor(backend).await;
    let run_id = start(&mesh, "fanout").await;
    let mut stream = lease(&mesh, "many", 4).await;
    let root = next_task(&mut stream).await;
    assert!(complete_bare(&mesh, &root, 0).await.is_empty());
    let mut children = Vec::new();
    for _ in 0..3 {
        children.push(next_task(&mut stream).await);
    }
    let stale = pb::Task {
        lease_id: "not-the-lease".into(),
        ..children[0].clone()
    };
    let mut requests: Vec<pb::CompleteTaskRequest> = children
        .iter()
        .chain([&stale])
        .map(|task| pb::CompleteTaskRequest {
            key: task.key.clone(),
            lease_id: task.lease_id.clone(),
            output: None,
            usage: None,
            accept_tasks: 0,
            output_content: None,
        })
        .collect();
    // The stale report in the middle, so a batch holds it with good ones.
    requests.swap(1, 3);
    let client = mesh.tasks().await;
    let answers = futures::future::join_all(requests.into_iter().map(|request| {
        let mut client = client.clone();
        async move { client.complete_task(request).await }
    }))
    .await;
    let refused: Vec<_> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert_eq!(refused.len(), 1, "{answers:?}");
    assert_eq!(refused[0].code(), Code::FailedPrecondition);
    assert_eq!(answers.iter().filter(|a| a.is_ok()).count(), 3);

    let join = next_task(&mut stream).await;
    assert_eq!(phase_id(&join), "join");
    assert!(complete_bare(&mesh, &join, 0).await.is_empty());
    let done = mesh.run_reaches(&run_id, &[pb::RunStatus::Completed]).await;
    assert!(done.phases.iter().all(|p| p.attempt == 1));
    let events = mesh.events(&run_id).await;
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "gapless");
    mesh.stop().await;
}

mesh_tests!(
    completions_arriving_together_are_each_answered,
    a_stream_claims_a_run_s_due_tasks_together_up_to_its_free_slots,
    a_completion_takes_the_next_in_line_only_from_its_own_run,
    a_completion_hands_on_a_phase_it_readied,
    a_completion_takes_at_most_the_slot_it_frees
);
