//! Runs over gRPC: inputs checked and stored, listing with filters and
//! pages, manual advance, cancel, a schema-breaking output failing its
//! attempt with the raw output kept, a reviewer sending a variant back with
//! a comment, model output streaming to watchers, health and reflection.

use std::path::Path;
use std::time::Duration;

use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests, repo_root};
use tonic::Code;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn start(mesh: &Mesh, request: pb::StartRunRequest) -> Result<pb::Run, tonic::Status> {
    Ok(mesh
        .runs()
        .await
        .start_run(request)
        .await?
        .into_inner()
        .run
        .expect("run"))
}

async fn run_inputs_are_checked_and_stored(backend: Backend) {
    let mesh = Mesh::start(backend, MeshOptions::default()).await;
    mesh.apply_template(&fixture("with_input.yaml")).await;
    let request = |inputs: &[(&str, &str)]| pb::StartRunRequest {
        template_name: "with-input".into(),
        inputs: inputs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ..Default::default()
    };
    let fields = |status: tonic::Status| {
        assert_eq!(status.code(), Code::InvalidArgument);
        orchestra_kit::status::field_violations(&status)
            .into_iter()
            .map(|(f, _)| f)
            .collect::<Vec<_>>()
    };
    let missing = start(&mesh, request(&[]))
        .await
        .expect_err("brief is required");
    assert_eq!(fields(missing), ["inputs.brief"]);
    let unknown = start(
        &mesh,
        request(&[("brief", r#"{"goal":"x"}"#), ("extra", "1")]),
    )
    .await
    .expect_err("extra is not declared");
    assert_eq!(fields(unknown), ["inputs.extra"]);
    let broken = start(&mesh, request(&[("brief", r#"{"goal": 3}"#)]))
        .await
        .expect_err("goal must be a string");
    assert_eq!(fields(broken), ["inputs.brief/goal"]);
    let no_template = start(
        &mesh,
        pb::StartRunRequest {
            template_name: "nope".into(),
            ..Default::default()
        },
    )
    .await
    .expect_err("no such template");
    assert_eq!(no_template.code(), Code::NotFound);

    let run = start(&mesh, request(&[("brief", r#"{"goal":"ship"}"#)]))
        .await
        .expect("valid inputs");
    assert!(run.inputs.contains_key("brief"));
    let done = mesh.run_reaches(&run.id, &[pb::RunStatus::Completed]).await;
    let goal = done.phases[0].output.clone().expect("output");
    let content = mesh
        .artifacts()
        .await
        .get_artifact(pb::GetArtifactRequest {
            artifact_id: goal.artifact_id,
            version: 0,
            include_content: true,
        })
        .await
        .expect("artifact")
        .into_inner()
        .artifact
        .expect("artifact")
        .content;
    assert_eq!(content, br#""ship""#);
    mesh.stop().await;
}

async fn runs_are_listed_by_status_and_template_in_pages(backend: Backend) {
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            ..MeshOptions::default()
        },
    )
    .await;
    mesh.apply_template(&fixture("single.yaml")).await;
    mesh.apply_template(&fixture("diamond.yaml")).await;
    let mut ids = Vec::new();
    for template in ["single", "diamond", "single", "single"] {
        let run = start(
            &mesh,
            pb::StartRunRequest {
                template_name: template.into(),
                ..Default::default()
            },
        )
        .await
        .expect("start");
        ids.push(run.id);
    }
    mesh.runs()
        .await
        .cancel_run(pb::CancelRunRequest {
            run_id: ids[3].clone(),
            reason: "changed my mind".into(),
        })
        .await
        .expect("cancel");

    let owned = mesh;
    let mesh = &owned;
    let list = |statuses: Vec<pb::RunStatus>, template: &str, size: i32, token: String| {
        let request = pb::ListRunsRequest {
            statuses: statuses.into_iter().map(|s| s as i32).collect(),
            template_name: template.into(),
            page_size: size,
            page_token: token,
        };
        async move {
            mesh.runs()
                .await
                .list_runs(request)
                .await
                .expect("list")
                .into_inner()
        }
    };
    let first = list(vec![], "single", 2, String::new()).await;
    let ids_of = |runs: &[pb::Run]| runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids_of(&first.runs),
        [ids[3].clone(), ids[2].clone()],
        "newest first"
    );
    let second = list(vec![], "single", 2, first.next_page_token).await;
    assert_eq!(ids_of(&second.runs), [ids[0].clone()]);
    assert!(second.next_page_token.is_empty());
    let cancelled = list(vec![pb::RunStatus::Cancelled], "", 50, String::new()).await;
    assert_eq!(ids_of(&cancelled.runs), [ids[3].clone()]);
    let cancelled_run = mesh.run(&ids[3]).await;
    assert!(
        cancelled_run
            .phases
            .iter()
            .all(|p| p.state == pb::PhaseState::Cancelled as i32)
    );
    let bad = mesh
        .runs()
        .await
        .list_runs(pb::ListRunsRequest {
            page_token: "garbage".into(),
            ..Default::default()
        })
        .await
        .expect_err("a token we never gave");
    assert_eq!(bad.code(), Code::InvalidArgument);
    owned.stop().await;
}

async fn a_manual_run_waits_for_continue(backend: Backend) {
    let mesh = Mesh::start(backend, MeshOptions::default()).await;
    mesh.apply_template(&fixture("single.yaml")).await;
    let run = start(
        &mesh,
        pb::StartRunRequest {
            template_name: "single".into(),
            manual_advance: true,
            ..Default::default()
        },
    )
    .await
    .expect("start");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = mesh.run(&run.id).await;
    assert_eq!(waiting.phases[0].state, pb::PhaseState::Ready as i32);
    mesh.runs()
        .await
        .continue_phase(pb::ContinuePhaseRequest {
            run_id: run.id.clone(),
            phase_id: "only".into(),
        })
        .await
        .expect("continue");
    let done = mesh.run_reaches(&run.id, &[pb::RunStatus::Completed]).await;
    // Watching a finished run from its last event ends at once.
    let mut tail = mesh
        .runs()
        .await
        .watch_run(pb::WatchRunRequest {
            run_id: run.id.clone(),
            after_seq: done.seq,
        })
        .await
        .expect("watch")
        .into_inner();
    let end = tokio::time::timeout(Duration::from_secs(5), tail.message())
        .await
        .expect("the stream ends")
        .expect("cleanly");
    assert!(end.is_none());
    let again = mesh
        .runs()
        .await
        .continue_phase(pb::ContinuePhaseRequest {
            run_id: run.id.clone(),
            phase_id: "only".into(),
        })
        .await
        .expect_err("it is no longer READY");
    assert_eq!(again.code(), Code::FailedPrecondition);
    mesh.stop().await;
}

async fn an_output_that_breaks_its_schema_fails_the_attempt(backend: Backend) {
    let mesh = Mesh::start(backend, MeshOptions::default()).await;
    mesh.apply_template(&fixture("broken_output.yaml")).await;
    let run = start(
        &mesh,
        pb::StartRunRequest {
            template_name: "broken-output".into(),
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let done = mesh.run_reaches(&run.id, &[pb::RunStatus::Failed]).await;
    let phase = &done.phases[0];
    assert_eq!(phase.state, pb::PhaseState::Error as i32);
    assert!(phase.error.contains("breaks its schema"), "{}", phase.error);
    assert!(
        phase.error.contains("title"),
        "the violation is in the error: {}",
        phase.error
    );
    let kept = mesh
        .artifacts()
        .await
        .list_artifacts(pb::ListArtifactsRequest {
            run_id: run.id.clone(),
            phase_id: "make".into(),
        })
        .await
        .expect("list")
        .into_inner()
        .artifacts;
    assert_eq!(kept.len(), 1, "the raw output is kept");
    assert!(!kept[0].valid);
    assert!(!kept[0].is_latest);
    mesh.stop().await;
}

async fn a_reviewer_sends_a_variant_back_with_a_comment(backend: Backend) {
    let mesh = Mesh::start(backend, MeshOptions::default()).await;
    mesh.apply_template(&repo_root().join("examples/backtrack/template.yaml"))
        .await;
    let run = start(
        &mesh,
        pb::StartRunRequest {
            template_name: "backtrack-ui-patch".into(),
            seed: Some(3),
            ..Default::default()
        },
    )
    .await
    .expect("start");
    let form = mesh.human_task(&run.id, "context").await;
    mesh.review()
        .await
        .submit_input(pb::SubmitInputRequest {
            task_id: form.id,
            content_json: std::fs::read_to_string(
                repo_root().join("examples/backtrack/inputs/context.json"),
            )
            .expect("context"),
            person: "ana".into(),
        })
        .await
        .expect("submit");
    let first_review = mesh.human_task(&run.id, "review").await;
    let before = mesh.run(&run.id).await;
    let variant_a_v1 = before
        .phases
        .iter()
        .find(|p| p.id == "variant_a")
        .and_then(|p| p.output.clone())
        .expect("a");
    mesh.review()
        .await
        .decide(pb::DecideRequest {
            task_id: first_review.id.clone(),
            kind: pb::DecisionKind::Retry as i32,
            comment: "make the button say Start now".into(),
            selected: Vec::new(),
            retry_phases: vec!["variant_a".into()],
            person: "ben".into(),
        })
        .await
        .expect("retry");

    // variant_a runs again (attempt 2); the review opens again (attempt 2).
    let second_review = mesh
        .eventually("a second review", Duration::from_secs(30), || async {
            let task = mesh.human_task(&run.id, "review").await;
            (task.id != first_review.id).then_some(task)
        })
        .await;
    assert_eq!(second_review.key.as_ref().map(|k| k.attempt), Some(2));
    let after = mesh.run(&run.id).await;
    let phase = |id: &str| {
        after
            .phases
            .iter()
            .find(|p| p.id == id)
            .expect("phase")
            .clone()
    };
    assert_eq!(phase("variant_a").attempt, 2);
    assert_eq!(
        phase("variant_b").attempt,
        1,
        "only the named phase is sent back"
    );
    let variant_a_v2 = phase("variant_a").output.expect("a v2");
    assert_eq!(
        variant_a_v2.artifact_id, variant_a_v1.artifact_id,
        "same artifact…"
    );
    assert_eq!(
        variant_a_v2.version,
        variant_a_v1.version + 1,
        "…a new version"
    );

    mesh.review()
        .await
        .decide(pb::DecideRequest {
            task_id: second_review.id,
            kind: pb::DecisionKind::Approve as i32,
            comment: "better".into(),
            selected: vec!["a".into()],
            retry_phases: Vec::new(),
            person: "ben".into(),
        })
        .await
        .expect("approve");
    mesh.run_reaches(&run.id, &[pb::RunStatus::Completed]).await;

    // The model's output streamed to watchers as it was generated.
    let log = mesh.events(&run.id).await;
    let deltas: String = log
        .iter()
        .filter_map(|e| match &e.body {
            Some(pb::run_event::Body::PhaseOutputDelta(d)) if d.phase_id == "variant_b" => {
                Some(d.text.clone())
            }
            _ => None,
        })
        .collect();
    assert!(
        deltas.contains("\"ops\""),
        "variant_b's tokens streamed: {deltas}"
    );
    let sent_back = log.iter().any(|e| {
        matches!(&e.body, Some(pb::run_event::Body::PhaseStateChanged(c))
            if c.phase_id == "review" && c.to == pb::PhaseState::Rejected as i32
                && c.reason == "make the button say Start now")
    });
    assert!(sent_back, "the comment is recorded with the rejection");
    mesh.stop().await;
}

async fn every_service_answers_health_and_reflection(backend: Backend) {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            ..MeshOptions::default()
        },
    )
    .await;
    let channel = tonic::transport::Channel::from_shared(mesh.scheduler_url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "orchestra.v1.RunService", "orchestra.v1.TaskService"] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }
    let unknown = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "orchestra.v1.Nope".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound);

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = responses
        .message()
        .await
        .expect("answer")
        .and_then(|r| r.message_response)
    else {
        panic!("reflection lists services");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "orchestra.v1.TemplateService",
        "orchestra.v1.RunService",
        "orchestra.v1.TaskService",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    mesh.stop().await;
}

mesh_tests!(
    run_inputs_are_checked_and_stored,
    runs_are_listed_by_status_and_template_in_pages,
    a_manual_run_waits_for_continue,
    an_output_that_breaks_its_schema_fails_the_attempt,
    a_reviewer_sends_a_variant_back_with_a_comment,
    every_service_answers_health_and_reflection,
);
