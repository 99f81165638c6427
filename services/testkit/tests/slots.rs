//! Executor slots per phase kind: `function` phases lease on a pool of
//! their own (64 by default), so a wide fan-out of functions runs at once
//! instead of queueing behind the `llm` bound (4), which still holds.

use std::collections::BTreeMap;
use std::time::Duration;

use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests};

const FUNCTIONS: usize = 20;
const MODEL_CALLS: usize = 20;
/// The executor's default bound on `llm` phases.
const LLM_SLOTS: usize = 4;

/// `FUNCTIONS` function phases (ids `f…`) and `MODEL_CALLS` llm phases
/// (ids `m…`), all ready at once, each storing an output.
fn wide_template() -> String {
    let mut phases = Vec::new();
    for i in 1..=FUNCTIONS {
        phases.push(serde_json::json!({
            "id": format!("f{i}"), "kind": "function", "function": "json.merge",
            "output": { "name": "out" },
        }));
    }
    for i in 1..=MODEL_CALLS {
        phases.push(serde_json::json!({
            "id": format!("m{i}"), "kind": "llm",
            "model": { "provider": "offline", "name": "offline-1" },
            "prompt": format!("Say hello to number {i}."),
            "output": { "name": "out" },
        }));
    }
    serde_json::json!({ "name": "wide", "phases": phases }).to_string()
}

/// The most phases of each kind (`f` or `m`, by id) that were RUNNING at
/// once, walking the event log in order.
fn most_running_at_once(events: &[pb::RunEvent]) -> BTreeMap<char, usize> {
    let running = pb::PhaseState::Running as i32;
    let mut now: BTreeMap<char, usize> = BTreeMap::new();
    let mut most: BTreeMap<char, usize> = BTreeMap::new();
    for event in events {
        let Some(pb::run_event::Body::PhaseStateChanged(change)) = &event.body else {
            continue;
        };
        let kind = change.phase_id.chars().next().expect("phase id");
        let count = now.entry(kind).or_default();
        if change.to == running {
            *count += 1;
        } else if change.from == running {
            *count -= 1;
        }
        let count = *count;
        let top = most.entry(kind).or_default();
        *top = (*top).max(count);
    }
    most
}

/// How many phases of each kind are RUNNING now.
async fn running_now(mesh: &Mesh, run_id: &str) -> BTreeMap<char, usize> {
    let mut counts = BTreeMap::new();
    for phase in mesh.run(run_id).await.phases {
        if phase.state == pb::PhaseState::Running as i32 {
            *counts
                .entry(phase.id.chars().next().expect("phase id"))
                .or_default() += 1;
        }
    }
    counts
}

async fn functions_run_wide_while_model_calls_stay_bounded(backend: Backend) {
    let mut mesh = Mesh::start(backend, MeshOptions::default()).await;
    mesh.templates()
        .await
        .create_template(pb::CreateTemplateRequest {
            source: Some(pb::TemplateSource {
                source: wide_template(),
                format: pb::TemplateFormat::Unspecified as i32,
                files: Default::default(),
            }),
        })
        .await
        .expect("template stored");
    // With the artifact store away, every attempt holds its lease (and
    // heartbeats) while it waits to store its output: what runs at once is
    // then exactly what the slots allow, not what timing happens to give.
    mesh.stop_artifact_store().await;
    let run = mesh
        .runs()
        .await
        .start_run(pb::StartRunRequest {
            template_name: "wide".into(),
            ..Default::default()
        })
        .await
        .expect("run started")
        .into_inner()
        .run
        .expect("run");
    let expected = BTreeMap::from([('f', FUNCTIONS), ('m', LLM_SLOTS)]);
    mesh.eventually(
        "every function and the llm slots running",
        Duration::from_secs(30),
        || async { (running_now(&mesh, &run.id).await == expected).then_some(()) },
    )
    .await;
    // Several lease-stream wake-ups later, still no fifth model call.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(running_now(&mesh, &run.id).await, expected);

    mesh.start_artifact_store().await;
    mesh.run_reaches(&run.id, &[pb::RunStatus::Completed]).await;
    let most = most_running_at_once(&mesh.events(&run.id).await);
    assert_eq!(
        most, expected,
        "the most phases of each kind running at once, by the event log"
    );
    mesh.stop().await;
}

mesh_tests!(functions_run_wide_while_model_calls_stay_bounded);
