//! Run inputs on their way to `StartRun`: small ones go inline as JSON
//! text; larger ones are streamed from their file to the artifact store
//! (`ArtifactService.WriteArtifactContent`, in chunks well under any message
//! limit) and handed to StartRun by reference, so an input's size is bounded
//! by the server's configured limit rather than by one message.

use std::path::Path;

use orchestra_proto::v1 as pb;
use tokio::io::AsyncReadExt;

use crate::connect::Connection;
use crate::error::{Error, Result};

/// Inputs larger than this are uploaded rather than sent inline: well
/// under tonic's default 4 MiB, so a run never fails on message size.
pub const INLINE_INPUT_BYTES: u64 = 1024 * 1024;

/// The size of each uploaded chunk.
const CHUNK_BYTES: usize = 256 * 1024;

/// One run input, ready for StartRunRequest.
#[derive(Debug, Clone, PartialEq)]
pub enum RunInput {
    /// JSON text for `inputs`.
    Inline(String),
    /// Content already in the artifact store, for `input_refs`.
    Stored(pb::ArtifactRef),
}

/// Reads the input `name` from `path`, checks it is JSON (so a typo names
/// the file, not a server field), and uploads it when it is large.
pub async fn run_input(connection: &Connection, name: &str, path: &Path) -> Result<RunInput> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size <= INLINE_INPUT_BYTES {
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        serde_json::from_str::<serde_json::Value>(&text).map_err(|source| Error::Json {
            path: path.to_owned(),
            source,
        })?;
        return Ok(RunInput::Inline(text));
    }
    check_json(path).await?;
    upload(connection, name, path).await.map(RunInput::Stored)
}

/// Checks a large file is JSON without holding a parsed copy of it.
async fn check_json(path: &Path) -> Result<()> {
    let owned = path.to_owned();
    let checked = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&owned)?;
        let reader = std::io::BufReader::new(file);
        Ok::<_, std::io::Error>(serde_json::from_reader::<_, serde::de::IgnoredAny>(reader))
    })
    .await
    .map_err(|e| Error::Read {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?
    .map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    checked.map(|_| ()).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })
}

/// Streams a file to the artifact store as one artifact; its reference.
async fn upload(connection: &Connection, name: &str, path: &Path) -> Result<pb::ArtifactRef> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
    // The upload belongs to no run yet: StartRun stores it as the run's input.
    let header = pb::PutArtifactRequest {
        key: Some(pb::AttemptKey {
            run_id: format!(
                "upload-{}-{}",
                orchestra_kit::time::now_micros(),
                std::process::id()
            ),
            phase_id: "input".to_owned(),
            attempt: 1,
        }),
        name: name.to_owned(),
        media_type: "application/json".to_owned(),
        content: Vec::new(),
        schema_json: String::new(),
        created_by: Some(pb::Actor {
            kind: pb::ActorKind::Person as i32,
            id: "run input".to_owned(),
        }),
    };
    // Chunks are read as the channel asks for them, so memory stays at a
    // few chunks whatever the file's size. A read error ends the stream
    // early; the server then refuses the incomplete upload, and the error
    // below names the file.
    let (sender, receiver) = tokio::sync::mpsc::channel::<pb::WriteArtifactContentRequest>(4);
    let reader_path = path.to_owned();
    let reader = tokio::spawn(async move {
        let mut first = Some(header);
        loop {
            let mut chunk = vec![0; CHUNK_BYTES];
            let read = file.read(&mut chunk).await?;
            chunk.truncate(read);
            if read == 0 && first.is_none() {
                return Ok::<_, std::io::Error>(());
            }
            let message = pb::WriteArtifactContentRequest {
                artifact: first.take(),
                chunk,
            };
            if sender.send(message).await.is_err() || read == 0 {
                // The server stopped reading (it refused the upload), or
                // the file was empty.
                return Ok(());
            }
        }
    });
    let response = connection
        .artifacts()
        .write_artifact_content(futures::stream::unfold(receiver, |mut receiver| async {
            receiver.recv().await.map(|message| (message, receiver))
        }))
        .await;
    match reader.await {
        Ok(Ok(())) => {}
        Ok(Err(source)) => {
            return Err(Error::Read {
                path: reader_path,
                source,
            });
        }
        Err(join) => {
            return Err(Error::Read {
                path: reader_path,
                source: std::io::Error::other(join),
            });
        }
    }
    let response = response.map_err(|status| match status.code() {
        tonic::Code::ResourceExhausted | tonic::Code::InvalidArgument => Error::Invalid {
            message: format!(
                "cannot upload input {name} from {}: {}",
                path.display(),
                status.message()
            ),
            violations: orchestra_kit::status::violations(&status),
        },
        _ => Error::Grpc(status),
    })?;
    response
        .into_inner()
        .artifact
        .and_then(|artifact| artifact.r#ref)
        .ok_or(Error::Incomplete("artifact"))
}
