//! The one message limit across the mesh, on both backends: a run input or
//! form above it is refused naming the input (or request) and the limit,
//! never with tonic's raw "decoded message length too large"; an input too
//! large for one message is uploaded with WriteArtifactContent and given to
//! StartRun by reference, checked as an inline input is.

use std::path::Path;

use orchestra_db::Backend;
use orchestra_proto::v1 as pb;
use orchestra_testkit::{Mesh, MeshOptions, mesh_tests};
use tonic::Code;

const MIB: usize = 1024 * 1024;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A `brief` input of about `size` bytes; `goal` is a string when `valid`.
fn brief(size: usize, valid: bool) -> String {
    let goal = if valid { r#""ship""# } else { "3" };
    format!(r#"{{"goal":{goal},"pad":"{}"}}"#, "x".repeat(size))
}

fn start_request(inputs: &[(&str, String)]) -> pb::StartRunRequest {
    pb::StartRunRequest {
        template_name: "with-input".into(),
        inputs: inputs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        ..Default::default()
    }
}

/// Uploads `content` as WriteArtifactContent does for the CLI.
async fn upload(mesh: &Mesh, name: &str, content: &[u8]) -> pb::ArtifactRef {
    let mut messages = vec![pb::WriteArtifactContentRequest {
        artifact: Some(pb::PutArtifactRequest {
            key: Some(pb::AttemptKey {
                run_id: format!("upload-{name}"),
                phase_id: "input".into(),
                attempt: 1,
            }),
            name: name.into(),
            media_type: "application/json".into(),
            ..Default::default()
        }),
        chunk: Vec::new(),
    }];
    messages.extend(
        content
            .chunks(256 * 1024)
            .map(|chunk| pb::WriteArtifactContentRequest {
                artifact: None,
                chunk: chunk.to_vec(),
            }),
    );
    mesh.artifacts()
        .await
        .write_artifact_content(futures::stream::iter(messages))
        .await
        .expect("uploaded")
        .into_inner()
        .artifact
        .and_then(|a| a.r#ref)
        .expect("ref")
}

fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    orchestra_kit::status::field_violations(status)
}

async fn inputs_above_the_limit_are_refused_by_name(backend: Backend) {
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            max_message_bytes: MIB,
            ..MeshOptions::default()
        },
    )
    .await;
    mesh.apply_template(&fixture("with_input.yaml")).await;
    let limit = "above the limit of 1048576 bytes (1 MiB, set by \
                 ORCHESTRA_SCHEDULER_MAX_MESSAGE_BYTES)";

    // Within what the server reads, the input itself is named.
    let refused = mesh
        .runs()
        .await
        .start_run(start_request(&[("brief", brief(MIB + MIB / 4, true))]))
        .await
        .expect_err("above the limit");
    let found = violations(&refused);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "inputs.brief");
    assert!(found[0].1.contains("input `brief` is 13"), "{found:?}");
    assert!(found[0].1.contains(limit), "{found:?}");
    assert!(found[0].1.contains("WriteArtifactContent"), "{found:?}");

    // Beyond it, the request is named, with its size and the limit.
    let refused = mesh
        .runs()
        .await
        .start_run(start_request(&[("brief", brief(3 * MIB, true))]))
        .await
        .expect_err("a message above the limit");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().starts_with("the StartRun request is 31"),
        "{refused:?}"
    );
    assert!(refused.message().contains(limit), "{refused:?}");

    // A form is held to the same limit by the review service.
    let form = mesh
        .review()
        .await
        .submit_input(pb::SubmitInputRequest {
            task_id: "any".into(),
            content_json: brief(3 * MIB, true),
            person: "tester".into(),
        })
        .await
        .expect_err("a form above the limit");
    assert_eq!(form.code(), Code::ResourceExhausted, "{form:?}");
    assert!(
        form.message().contains("the SubmitInput request is"),
        "{form:?}"
    );
    assert!(
        form.message()
            .contains("(1 MiB, set by ORCHESTRA_REVIEW_MAX_MESSAGE_BYTES)"),
        "{form:?}"
    );
    mesh.stop().await;
}

async fn an_uploaded_input_is_checked_and_stored_under_the_run(backend: Backend) {
    let mesh = Mesh::start(
        backend,
        MeshOptions {
            executor: false,
            ..MeshOptions::default()
        },
    )
    .await;
    mesh.apply_template(&fixture("with_input.yaml")).await;
    // Above tonic's default 4 MiB: one inline message would not carry it.
    let content = brief(5 * MIB, true);
    let uploaded = upload(&mesh, "brief", content.as_bytes()).await;
    let by_reference = |reference: &pb::ArtifactRef| pb::StartRunRequest {
        template_name: "with-input".into(),
        input_refs: [("brief".to_owned(), reference.clone())].into(),
        ..Default::default()
    };

    let run = mesh
        .runs()
        .await
        .start_run(by_reference(&uploaded))
        .await
        .expect("started")
        .into_inner()
        .run
        .expect("run");
    let input = run.inputs.get("brief").expect("the input is the run's");
    assert_eq!(
        input.run_id, run.id,
        "stored under the run, as inline inputs are"
    );
    assert_eq!(input.phase_id, "input");
    assert_eq!(input.size_bytes, content.len() as i64);
    assert_eq!(input.sha256, uploaded.sha256, "the same content");

    // The template's schema is checked, as for an inline input.
    let broken = upload(&mesh, "broken", brief(5 * MIB, false).as_bytes()).await;
    let refused = mesh
        .runs()
        .await
        .start_run(by_reference(&broken))
        .await
        .expect_err("goal must be a string");
    assert_eq!(violations(&refused)[0].0, "input_refs.brief/goal");

    // Content that is not JSON, a missing artifact, a name given twice.
    let not_json = upload(&mesh, "text", b"not json").await;
    let refused = mesh
        .runs()
        .await
        .start_run(by_reference(&not_json))
        .await
        .expect_err("not JSON");
    assert_eq!(
        violations(&refused),
        [(
            "input_refs.brief".to_owned(),
            "is not valid JSON".to_owned()
        )]
    );
    let missing = pb::ArtifactRef {
        artifact_id: "00000000-0000-0000-0000-000000000000".into(),
        ..Default::default()
    };
    let refused = mesh
        .runs()
        .await
        .start_run(by_reference(&missing))
        .await
        .expect_err("no such artifact");
    assert_eq!(violations(&refused)[0].0, "input_refs.brief");
    let mut twice = by_reference(&uploaded);
    twice.inputs.insert("brief".into(), brief(10, true));
    let refused = mesh
        .runs()
        .await
        .start_run(twice)
        .await
        .expect_err("given twice");
    assert_eq!(violations(&refused)[0].0, "input_refs.brief");
    mesh.stop().await;
}

mesh_tests!(
    inputs_above_the_limit_are_refused_by_name,
    an_uploaded_input_is_checked_and_stored_under_the_run,
);
