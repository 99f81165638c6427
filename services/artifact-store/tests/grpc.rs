//! The artifact store over real gRPC: the server runs on 127.0.0.1:0 on each
//! backend and is called through the generated client.

use std::path::PathBuf;

use futures::StreamExt;
use orchestra_artifact_store::{Config, serve};
use orchestra_db::backend_tests;
use orchestra_db::testing::TestDb;
use orchestra_kit::status::field_violations;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::{
    Actor, ActorKind, ArtifactRef, ArtifactVersion, AttemptKey, DiffArtifactsRequest,
    GetArtifactHistoryRequest, GetArtifactRequest, JsonPatchOperation, ListArtifactsRequest,
    PublishArtifactRequest, PutArtifactRequest, PutArtifactResponse, ReadArtifactContentRequest,
    StageArtifactRequest,
};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::Channel;

/// A running server and a client of it; the server stops when dropped.
struct Server {
    client: ArtifactServiceClient<Channel>,
    blob_dir: PathBuf,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start(db: &TestDb) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let config = Config {
        database_url: db.url_for("artifact_store"),
        blob_dir: dir.path().join("blobs"),
        listen_addr: addr,
        inline_limit_bytes: 64 * 1024,
        max_message_bytes: orchestra_kit::limits::DEFAULT_MAX_MESSAGE_BYTES,
    };
    let blob_dir = config.blob_dir.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(error) = serve(config, listener, shutdown).await {
            panic!("server failed: {error}");
        }
    });
    let client = ArtifactServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect");
    Server {
        client,
        blob_dir,
        _stop: stop,
        _dir: dir,
    }
}

fn put_request(
    run: &str,
    name: &str,
    attempt: i32,
    media_type: &str,
    content: &[u8],
) -> PutArtifactRequest {
    PutArtifactRequest {
        key: Some(AttemptKey {
            run_id: run.to_owned(),
            phase_id: "draft".to_owned(),
            attempt,
        }),
        name: name.to_owned(),
        media_type: media_type.to_owned(),
        content: content.to_vec(),
        schema_json: String::new(),
        created_by: Some(Actor {
            kind: ActorKind::Phase as i32,
            id: format!("{run}/draft/{attempt}"),
        }),
    }
}

async fn put(server: &mut Server, request: PutArtifactRequest) -> PutArtifactResponse {
    server
        .client
        .put_artifact(request)
        .await
        .expect("put")
        .into_inner()
}

fn reference(version: &ArtifactVersion) -> &ArtifactRef {
    version.r#ref.as_ref().expect("ref")
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn put_get_list_and_history(db: &TestDb) {
    let mut server = start(db).await;
    let first = put(
        &mut server,
        put_request("run1", "plan", 1, "application/json", br#"{"n":1}"#),
    )
    .await;
    assert!(first.created);
    let v1 = first.artifact.expect("artifact");
    let r1 = reference(&v1).clone();
    assert_eq!(
        (
            r1.version,
            r1.name.as_str(),
            r1.run_id.as_str(),
            r1.phase_id.as_str(),
            r1.attempt
        ),
        (1, "plan", "run1", "draft", 1)
    );
    assert_eq!(r1.sha256, sha256(br#"{"n":1}"#));
    assert_eq!(r1.size_bytes, 7);
    assert_eq!(r1.media_type, "application/json");
    assert!(v1.is_latest && v1.valid && v1.violations.is_empty());
    assert_eq!(v1.schema_sha256, "");
    assert_eq!(
        v1.created_by.as_ref().map(|a| a.id.as_str()),
        Some("run1/draft/1")
    );
    assert!(v1.created_at.is_some());
    assert!(!v1.content_inlined && v1.content.is_empty());

    let second = put(
        &mut server,
        put_request("run1", "plan", 2, "application/json", br#"{"n":2}"#),
    )
    .await;
    let r2 = reference(second.artifact.as_ref().expect("artifact")).clone();
    assert_eq!(
        (r2.artifact_id.as_str(), r2.version),
        (r1.artifact_id.as_str(), 2)
    );

    let repeat = put(
        &mut server,
        put_request("run1", "plan", 1, "application/json", br#"{"n":1}"#),
    )
    .await;
    assert!(!repeat.created);
    assert_eq!(reference(repeat.artifact.as_ref().expect("artifact")), &r1);

    let conflict = server
        .client
        .put_artifact(put_request(
            "run1",
            "plan",
            1,
            "application/json",
            br#"{"n":9}"#,
        ))
        .await
        .expect_err("other content for attempt 1");
    assert_eq!(conflict.code(), Code::AlreadyExists);
    assert!(
        conflict.message().contains("already stored other content"),
        "{}",
        conflict.message()
    );

    put(
        &mut server,
        put_request("run1", "notes", 1, "text/plain", b"hello"),
    )
    .await;
    put(
        &mut server,
        put_request("run2", "plan", 1, "application/json", b"{}"),
    )
    .await;

    let latest = server
        .client
        .get_artifact(GetArtifactRequest {
            artifact_id: r1.artifact_id.clone(),
            version: 0,
            include_content: true,
        })
        .await
        .expect("get")
        .into_inner()
        .artifact
        .expect("artifact");
    assert_eq!(reference(&latest), &r2);
    assert!(latest.is_latest && latest.content_inlined);
    assert_eq!(latest.content, br#"{"n":2}"#);

    let old = server
        .client
        .get_artifact(GetArtifactRequest {
            artifact_id: r1.artifact_id.clone(),
            version: 1,
            include_content: false,
        })
        .await
        .expect("get v1")
        .into_inner()
        .artifact
        .expect("artifact");
    assert_eq!(reference(&old), &r1);
    assert!(!old.is_latest, "version 2 took over");
    assert!(!old.content_inlined && old.content.is_empty());

    let listed = server
        .client
        .list_artifacts(ListArtifactsRequest {
            run_id: "run1".into(),
            phase_id: String::new(),
        })
        .await
        .expect("list")
        .into_inner()
        .artifacts;
    let summary: Vec<(String, i32)> = listed
        .iter()
        .map(|a| (reference(a).name.clone(), reference(a).version))
        .collect();
    assert_eq!(
        summary,
        vec![("notes".to_owned(), 1), ("plan".to_owned(), 2)]
    );

    let history = server
        .client
        .get_artifact_history(GetArtifactHistoryRequest {
            artifact_id: r1.artifact_id.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .versions;
    let attempts: Vec<(i32, i32)> = history
        .iter()
        .map(|v| (reference(v).version, reference(v).attempt))
        .collect();
    assert_eq!(attempts, vec![(1, 1), (2, 2)]);

    for (artifact_id, version) in [("nope", 0), (r1.artifact_id.as_str(), 3)] {
        let missing = server
            .client
            .get_artifact(GetArtifactRequest {
                artifact_id: artifact_id.to_owned(),
                version,
                include_content: false,
            })
            .await
            .expect_err("no such version");
        assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    }
    let missing = server
        .client
        .get_artifact_history(GetArtifactHistoryRequest {
            artifact_id: "nope".into(),
        })
        .await
        .expect_err("no such artifact");
    assert_eq!(missing.code(), Code::NotFound);
}

const UI_SCHEMA: &str = r#"{"type":"object","required":["ops"],"properties":{"ops":{"type":"array",
    "items":{"type":"object","required":["path"],"properties":{"path":{"type":"string"}}}}}}"#;

async fn schema_violations_are_kept_but_never_latest(db: &TestDb) {
    let mut server = start(db).await;
    let mut good = put_request(
        "run1",
        "patch",
        1,
        "application/json",
        br#"{"ops":[{"path":"/a"}]}"#,
    );
    good.schema_json = UI_SCHEMA.to_owned();
    let good = put(&mut server, good).await.artifact.expect("artifact");
    assert!(good.valid && good.is_latest);
    assert_eq!(good.schema_sha256, sha256(UI_SCHEMA.as_bytes()));

    let mut bad = put_request(
        "run1",
        "patch",
        2,
        "application/json",
        br#"{"ops":[{"path":3}]}"#,
    );
    bad.schema_json = UI_SCHEMA.to_owned();
    let response = put(&mut server, bad).await;
    assert!(response.created, "an invalid version is stored");
    let bad = response.artifact.expect("artifact");
    assert_eq!(reference(&bad).version, 2);
    assert!(!bad.valid && !bad.is_latest);
    assert_eq!(bad.schema_sha256, sha256(UI_SCHEMA.as_bytes()));
    assert_eq!(bad.violations.len(), 1);
    assert_eq!(bad.violations[0].field, "/ops/0/path");
    assert!(
        bad.violations[0].description.contains("string"),
        "{:?}",
        bad.violations
    );

    let mut not_json = put_request("run1", "patch", 3, "application/json", b"ops: none");
    not_json.schema_json = UI_SCHEMA.to_owned();
    let not_json = put(&mut server, not_json).await.artifact.expect("artifact");
    assert!(!not_json.valid);
    assert_eq!(not_json.violations[0].field, "/");
    assert!(
        not_json.violations[0]
            .description
            .starts_with("content is not JSON")
    );

    let artifact_id = reference(&good).artifact_id.clone();
    let latest = server
        .client
        .get_artifact(GetArtifactRequest {
            artifact_id: artifact_id.clone(),
            version: 0,
            include_content: false,
        })
        .await
        .expect("get")
        .into_inner()
        .artifact
        .expect("artifact");
    assert_eq!(
        reference(&latest).version,
        1,
        "the invalid versions are not latest"
    );
    let kept = server
        .client
        .get_artifact(GetArtifactRequest {
            artifact_id,
            version: 2,
            include_content: true,
        })
        .await
        .expect("the invalid version is kept")
        .into_inner()
        .artifact
        .expect("artifact");
    assert_eq!(kept.violations, bad.violations);
    assert_eq!(kept.content, br#"{"ops":[{"path":3}]}"#);

    let mut broken_schema = put_request("run1", "patch", 4, "application/json", b"{}");
    broken_schema.schema_json = r#"{"type": 12}"#.to_owned();
    let status = server
        .client
        .put_artifact(broken_schema)
        .await
        .expect_err("not a schema");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, vec!["schema_json"]);
}

async fn large_content_streams_back_from_the_blob_store(db: &TestDb) {
    let mut server = start(db).await;
    let content: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let stored = put(
        &mut server,
        put_request("run1", "bundle", 1, "application/octet-stream", &content),
    )
    .await
    .artifact
    .expect("artifact");
    let r = reference(&stored).clone();
    assert_eq!(r.size_bytes, 1024 * 1024);
    assert_eq!(r.sha256, sha256(&content));
    let blob = server.blob_dir.join(&r.sha256[..2]).join(&r.sha256);
    assert_eq!(std::fs::read(&blob).expect("blob file"), content);

    let got = server
        .client
        .get_artifact(GetArtifactRequest {
            artifact_id: r.artifact_id.clone(),
            version: 1,
            include_content: true,
        })
        .await
        .expect("get")
        .into_inner()
        .artifact
        .expect("artifact");
    assert!(
        !got.content_inlined && got.content.is_empty(),
        "too large to inline"
    );

    let mut stream = server
        .client
        .read_artifact_content(ReadArtifactContentRequest {
            artifact_id: r.artifact_id.clone(),
            version: 0,
        })
        .await
        .expect("read")
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.expect("chunk").chunk);
    }
    assert_eq!(chunks.len(), 16, "64 KiB chunks");
    assert_eq!(chunks.concat(), content);

    // Above tonic's default 4 MiB limit: the server accepts up to 64 MiB.
    let big = vec![7_u8; 5 * 1024 * 1024];
    let big = put(
        &mut server,
        put_request("run1", "big", 1, "application/octet-stream", &big),
    )
    .await;
    assert!(big.created);
    assert_eq!(
        reference(big.artifact.as_ref().expect("artifact")).size_bytes,
        5 * 1024 * 1024
    );

    let small = put(
        &mut server,
        put_request("run1", "note", 1, "text/plain", b"short"),
    )
    .await
    .artifact
    .expect("artifact");
    let mut stream = server
        .client
        .read_artifact_content(ReadArtifactContentRequest {
            artifact_id: reference(&small).artifact_id.clone(),
            version: 1,
        })
        .await
        .expect("read")
        .into_inner();
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.expect("chunk").chunk);
    }
    assert_eq!(chunks, vec![b"short".to_vec()]);
}

async fn diffs_of_json_and_text(db: &TestDb) {
    let mut server = start(db).await;
    let v1 = put(
        &mut server,
        put_request(
            "run1",
            "ui",
            1,
            "application/json",
            br#"{"title":"Old","items":[1]}"#,
        ),
    )
    .await
    .artifact
    .expect("artifact");
    let v2 = put(
        &mut server,
        put_request(
            "run1",
            "ui",
            2,
            "application/json",
            br#"{"title":"New","items":[1]}"#,
        ),
    )
    .await
    .artifact
    .expect("artifact");
    let diff = server
        .client
        .diff_artifacts(DiffArtifactsRequest {
            left: Some(reference(&v1).clone()),
            right: Some(reference(&v2).clone()),
        })
        .await
        .expect("diff")
        .into_inner();
    assert!(!diff.identical);
    assert_eq!(
        diff.operations,
        vec![JsonPatchOperation {
            op: "replace".into(),
            path: "/title".into(),
            from: String::new(),
            value_json: "\"New\"".into(),
        }]
    );
    assert!(
        diff.unified.contains("--- ui@v1\n+++ ui@v2\n"),
        "{}",
        diff.unified
    );
    assert!(
        diff.unified
            .contains("-  \"title\": \"Old\"\n+  \"title\": \"New\""),
        "{}",
        diff.unified
    );

    let same = server
        .client
        .diff_artifacts(DiffArtifactsRequest {
            left: Some(reference(&v1).clone()),
            right: Some(reference(&v1).clone()),
        })
        .await
        .expect("diff")
        .into_inner();
    assert!(same.identical && same.operations.is_empty() && same.unified.is_empty());

    let t1 = put(
        &mut server,
        put_request("run1", "doc", 1, "text/plain", b"one\ntwo\n"),
    )
    .await
    .artifact
    .expect("a");
    let t2 = put(
        &mut server,
        put_request("run1", "doc", 2, "text/plain", b"one\nthree\n"),
    )
    .await
    .artifact
    .expect("a");
    let text = server
        .client
        .diff_artifacts(DiffArtifactsRequest {
            left: Some(reference(&t1).clone()),
            right: Some(reference(&t2).clone()),
        })
        .await
        .expect("diff")
        .into_inner();
    assert!(text.operations.is_empty());
    assert!(
        text.unified.contains(" one\n-two\n+three\n"),
        "{}",
        text.unified
    );
}

async fn bad_requests_name_their_fields(db: &TestDb) {
    let mut server = start(db).await;
    let status = server
        .client
        .put_artifact(PutArtifactRequest::default())
        .await
        .expect_err("empty put");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(
        fields,
        vec![
            "key.run_id",
            "key.phase_id",
            "name",
            "media_type",
            "key.attempt"
        ]
    );

    let mut no_media_type = put_request("run1", "plan", 1, "", b"{}");
    no_media_type.key.as_mut().expect("key").attempt = 0;
    let status = server
        .client
        .put_artifact(no_media_type)
        .await
        .expect_err("bad put");
    assert_eq!(
        field_violations(&status),
        vec![
            ("media_type".to_owned(), "is required".to_owned()),
            ("key.attempt".to_owned(), "must be at least 1".to_owned())
        ]
    );

    let status = server
        .client
        .get_artifact(GetArtifactRequest {
            artifact_id: String::new(),
            version: -1,
            include_content: false,
        })
        .await
        .expect_err("bad get");
    let fields: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, vec!["artifact_id", "version"]);

    let status = server
        .client
        .list_artifacts(ListArtifactsRequest::default())
        .await
        .expect_err("bad list");
    let fields: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, vec!["run_id"]);

    let status = server
        .client
        .diff_artifacts(DiffArtifactsRequest::default())
        .await
        .expect_err("bad diff");
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&status)
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(fields, vec!["left.artifact_id", "right.artifact_id"]);
}

/// An accepted attempt's small output, sent inline, becomes a version in
/// one call; a repeat (the scheduler retrying a completion) returns the
/// same version; other content, another attempt's key or a schema are
/// refused with the field named.
async fn outputs_publish_inline_once(db: &TestDb) {
    let mut server = start(db).await;
    let content = put_request("run1", "plan", 1, "application/json", br#"{"a":1}"#);
    let publish = |content: PutArtifactRequest| PublishArtifactRequest {
        key: content.key.clone(),
        name: content.name.clone(),
        content: Some(content),
    };
    let first = server
        .client
        .publish_artifact(publish(content.clone()))
        .await
        .expect("publish inline")
        .into_inner()
        .artifact
        .expect("artifact");
    assert_eq!(reference(&first).version, 1);
    assert_eq!(reference(&first).sha256, sha256(br#"{"a":1}"#));
    assert!(first.is_latest);

    let again = server
        .client
        .publish_artifact(publish(content.clone()))
        .await
        .expect("repeat")
        .into_inner()
        .artifact
        .expect("artifact");
    assert_eq!(reference(&again), reference(&first));

    let history = server
        .client
        .get_artifact_history(GetArtifactHistoryRequest {
            artifact_id: reference(&first).artifact_id.clone(),
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(
        history.versions.len(),
        1,
        "a repeat makes no second version"
    );

    let mut other = content.clone();
    other.content = br#"{"a":2}"#.to_vec();
    let status = server
        .client
        .publish_artifact(publish(other))
        .await
        .expect_err("other content");
    assert_eq!(status.code(), Code::AlreadyExists);

    let mut foreign = publish(put_request("run1", "plan", 2, "application/json", b"{}"));
    foreign.key.as_mut().expect("key").attempt = 3;
    let mut with_schema = put_request("run1", "plan", 4, "application/json", b"{}");
    with_schema.schema_json = r#"{"type":"object"}"#.to_owned();
    for (request, field) in [
        (foreign, "content.key"),
        (publish(with_schema), "content.schema_json"),
    ] {
        let status = server
            .client
            .publish_artifact(request)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<String> = field_violations(&status)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, vec![field]);
    }

    // The staged way still works beside it.
    let staged = put_request("run1", "plan", 5, "application/json", b"[]");
    server
        .client
        .stage_artifact(StageArtifactRequest {
            artifact: Some(staged.clone()),
        })
        .await
        .expect("stage");
    let published = server
        .client
        .publish_artifact(PublishArtifactRequest {
            key: staged.key.clone(),
            name: staged.name.clone(),
            content: None,
        })
        .await
        .expect("publish staged")
        .into_inner()
        .artifact
        .expect("artifact");
    assert_eq!(reference(&published).version, 2);
}

backend_tests!(
    put_get_list_and_history,
    outputs_publish_inline_once,
    schema_violations_are_kept_but_never_latest,
    large_content_streams_back_from_the_blob_store,
    diffs_of_json_and_text,
    bad_requests_name_their_fields,
);
