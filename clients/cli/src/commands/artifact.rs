//! `orchestra artifact get`: one artifact version's metadata and content.

use std::path::Path;

use orchestra_proto::v1 as pb;

use crate::cli::{ArtifactCommand, OutputFormat};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::output;

/// Runs one `artifact` subcommand.
pub async fn artifact(
    connection: &Connection,
    format: OutputFormat,
    command: ArtifactCommand,
) -> Result<()> {
    let ArtifactCommand::Get { id, version, out } = command;
    get(
        connection,
        format,
        &id,
        version.unwrap_or(0),
        out.as_deref(),
    )
    .await
}

/// Prints the metadata line, then the content (pretty JSON when JSON), or
/// writes the content to `out`. Content too large to inline is streamed.
async fn get(
    connection: &Connection,
    format: OutputFormat,
    id: &str,
    version: i32,
    out: Option<&Path>,
) -> Result<()> {
    let mut response = connection
        .artifacts()
        .get_artifact(pb::GetArtifactRequest {
            artifact_id: id.to_owned(),
            version,
            include_content: true,
        })
        .await?
        .into_inner();
    let artifact = response
        .artifact
        .as_mut()
        .ok_or(Error::Incomplete("artifact"))?;
    let reference = artifact.r#ref.clone().unwrap_or_default();
    if !artifact.content_inlined {
        // Read the version the metadata names, even if a newer one lands meanwhile.
        artifact.content = read_content(connection, id, reference.version).await?;
        artifact.content_inlined = true;
    }
    if let Some(path) = out {
        std::fs::write(path, &artifact.content).map_err(|source| Error::Write {
            path: path.to_owned(),
            source,
        })?;
    }
    match (format, out) {
        (OutputFormat::Json, _) => output::print_json(&response),
        (OutputFormat::Table, Some(path)) => {
            println!("{}", metadata(artifact));
            println!("written to {}", path.display());
            Ok(())
        }
        (OutputFormat::Table, None) => {
            println!("{}", metadata(artifact));
            println!("{}", output::readable(&artifact.content));
            Ok(())
        }
    }
}

/// Streams a version's content in chunks.
async fn read_content(connection: &Connection, id: &str, version: i32) -> Result<Vec<u8>> {
    let mut stream = connection
        .artifacts()
        .read_artifact_content(pb::ReadArtifactContentRequest {
            artifact_id: id.to_owned(),
            version,
        })
        .await?
        .into_inner();
    let mut content = Vec::new();
    while let Some(chunk) = stream.message().await? {
        content.extend_from_slice(&chunk.chunk);
    }
    Ok(content)
}

/// One line: name@version, media type, size, provenance, validity.
fn metadata(artifact: &pb::ArtifactVersion) -> String {
    let r = artifact.r#ref.clone().unwrap_or_default();
    let mut line = format!(
        "{}@{}  {}  {} bytes  sha256 {}  run {} phase {} attempt {}",
        r.name,
        r.version,
        r.media_type,
        r.size_bytes,
        r.sha256.get(..12).unwrap_or(&r.sha256),
        r.run_id,
        r.phase_id,
        r.attempt,
    );
    if let Some(actor) = artifact.created_by.as_ref().filter(|a| !a.id.is_empty()) {
        line.push_str(&format!("  by {}", actor.id));
    }
    line.push_str(&format!("  {}", output::when(artifact.created_at.as_ref())));
    if artifact.is_latest {
        line.push_str("  latest");
    }
    if !artifact.valid {
        line.push_str("  INVALID");
        for v in &artifact.violations {
            line.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    line
}
