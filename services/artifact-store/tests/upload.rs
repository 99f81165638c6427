//! The one message limit and the streaming upload, over real gRPC on each
//! backend: WriteArtifactContent stores content in chunks as one version;
//! content above the limit, sent whole or streamed, is refused as
//! RESOURCE_EXHAUSTED naming the artifact and the limit, never with tonic's
//! raw "decoded message length too large".

use orchestra_artifact_store::{Config, serve};
use orchestra_db::backend_tests;
use orchestra_db::testing::TestDb;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::{
    Actor, ActorKind, AttemptKey, PutArtifactRequest, ReadArtifactContentRequest,
    WriteArtifactContentRequest,
};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tonic::Code;
use tonic::transport::Channel;

const MIB: usize = 1024 * 1024;

/// A running server and a client of it; the server stops when dropped.
struct Server {
    client: ArtifactServiceClient<Channel>,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start(db: &TestDb, max_message_bytes: usize) -> Server {
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
        max_message_bytes,
    };
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(error) = serve(config, listener, shutdown).await {
            panic!("server failed: {error}");
        }
    });
    // The client sends and accepts anything: the server's limit is under test.
    let client = ArtifactServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect")
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    Server {
        client,
        _stop: stop,
        _dir: dir,
    }
}

fn header(name: &str) -> PutArtifactRequest {
    PutArtifactRequest {
        key: Some(AttemptKey {
            run_id: "upload-1".to_owned(),
            phase_id: "input".to_owned(),
            attempt: 1,
        }),
        name: name.to_owned(),
        media_type: "application/json".to_owned(),
        content: Vec::new(),
        schema_json: String::new(),
        created_by: Some(Actor {
            kind: ActorKind::Person as i32,
            id: "tester".to_owned(),
        }),
    }
}

/// A JSON document of about `size` bytes.
fn json_of(size: usize) -> Vec<u8> {
    format!(r#"{{"pad":"{}"}}"#, "x".repeat(size)).into_bytes()
}

/// The upload's messages: the header, then the content in 64 KiB chunks.
fn messages(header: PutArtifactRequest, content: &[u8]) -> Vec<WriteArtifactContentRequest> {
    let mut messages = vec![WriteArtifactContentRequest {
        artifact: Some(header),
        chunk: Vec::new(),
    }];
    messages.extend(
        content
            .chunks(64 * 1024)
            .map(|chunk| WriteArtifactContentRequest {
                artifact: None,
                chunk: chunk.to_vec(),
            }),
    );
    messages
}

async fn read_back(client: &mut ArtifactServiceClient<Channel>, artifact_id: &str) -> Vec<u8> {
    let mut stream = client
        .read_artifact_content(ReadArtifactContentRequest {
            artifact_id: artifact_id.to_owned(),
            version: 0,
        })
        .await
        .expect("read")
        .into_inner();
    let mut content = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        content.extend(chunk.chunk);
    }
    content
}

async fn an_upload_in_chunks_stores_one_version(db: &TestDb) {
    let mut server = start(db, orchestra_kit::limits::DEFAULT_MAX_MESSAGE_BYTES).await;
    // Above tonic's default 4 MiB, which one PutArtifact could not carry.
    let content = json_of(5 * MIB);
    let response = server
        .client
        .write_artifact_content(futures::stream::iter(messages(header("big"), &content)))
        .await
        .expect("uploaded")
        .into_inner();
    assert!(response.created);
    let artifact = response.artifact.expect("artifact");
    assert!(artifact.valid && artifact.is_latest);
    let reference = artifact.r#ref.expect("ref");
    assert_eq!(reference.version, 1);
    assert_eq!(reference.size_bytes, content.len() as i64);
    assert_eq!(reference.sha256, hex::encode(Sha256::digest(&content)));
    assert_eq!(
        read_back(&mut server.client, &reference.artifact_id).await,
        content
    );

    // The same attempt uploading the same content again stores nothing.
    let again = server
        .client
        .write_artifact_content(futures::stream::iter(messages(header("big"), &content)))
        .await
        .expect("uploaded again")
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.artifact.and_then(|a| a.r#ref), Some(reference));

    // A schema given in the header is checked as PutArtifact checks it.
    let mut checked = header("checked");
    checked.schema_json = r#"{"type":"object","required":["goal"]}"#.to_owned();
    let broken = server
        .client
        .write_artifact_content(futures::stream::iter(messages(checked, &content)))
        .await
        .expect("stored, but not valid")
        .into_inner()
        .artifact
        .expect("artifact");
    assert!(!broken.valid);
    assert_eq!(broken.violations[0].field, "/");
}

async fn a_malformed_upload_names_its_field(db: &TestDb) {
    let mut server = start(db, orchestra_kit::limits::DEFAULT_MAX_MESSAGE_BYTES).await;
    let no_header = server
        .client
        .write_artifact_content(futures::stream::iter(vec![WriteArtifactContentRequest {
            artifact: None,
            chunk: b"{}".to_vec(),
        }]))
        .await
        .expect_err("the first message names the artifact");
    assert_eq!(no_header.code(), Code::InvalidArgument);
    assert!(
        no_header.message().starts_with("artifact:"),
        "{no_header:?}"
    );

    let mut with_content = header("x");
    with_content.content = b"{}".to_vec();
    let inline = server
        .client
        .write_artifact_content(futures::stream::iter(messages(with_content, b"{}")))
        .await
        .expect_err("content goes in chunks");
    assert_eq!(inline.code(), Code::InvalidArgument);
    assert!(
        inline.message().starts_with("artifact.content:"),
        "{inline:?}"
    );

    let mut twice = messages(header("x"), b"{}");
    twice.push(WriteArtifactContentRequest {
        artifact: Some(header("x")),
        chunk: Vec::new(),
    });
    let repeated = server
        .client
        .write_artifact_content(futures::stream::iter(twice))
        .await
        .expect_err("one header");
    assert_eq!(repeated.code(), Code::InvalidArgument);
}

async fn content_above_the_limit_is_refused_naming_it_and_the_limit(db: &TestDb) {
    let mut server = start(db, MIB).await;
    let limit = "above the limit of 1048576 bytes (1 MiB, set by \
                 ORCHESTRA_ARTIFACT_STORE_MAX_MESSAGE_BYTES)";
    let refused = |status: tonic::Status, what: &str| {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains(what), "{status:?}");
        assert!(status.message().contains(limit), "{status:?}");
        assert!(
            !status.message().contains("message length too large"),
            "{status:?}"
        );
    };

    // Streamed: refused as soon as the chunks pass the limit.
    let streamed = server
        .client
        .write_artifact_content(futures::stream::iter(messages(
            header("huge"),
            &json_of(3 * MIB / 2),
        )))
        .await
        .expect_err("above the limit");
    refused(streamed, "artifact `huge` is at least");

    // Whole, in a message the server can still read.
    let mut put = header("whole");
    put.content = json_of(3 * MIB / 2);
    let whole = server
        .client
        .put_artifact(put)
        .await
        .expect_err("above the limit");
    refused(whole, "artifact `whole` is 1572");

    // Whole, in a message larger than the server reads at all.
    let mut put = header("whole");
    put.content = json_of(3 * MIB);
    let message = server
        .client
        .put_artifact(put)
        .await
        .expect_err("above the limit");
    refused(message, "the PutArtifact request is");

    // Content at the limit still fits, with its fields beside it.
    let mut put = header("fits");
    put.content = json_of(MIB - 16);
    server
        .client
        .put_artifact(put)
        .await
        .expect("content of the limit fits in one message");
}

backend_tests!(
    an_upload_in_chunks_stores_one_version,
    a_malformed_upload_names_its_field,
    content_above_the_limit_is_refused_naming_it_and_the_limit,
);
