//! `orchestra artifact list|get|history|diff`: a run's artifacts, one
//! version's metadata and content, every version, and what changed.

use std::path::Path;

use orchestra_proto::v1 as pb;
use tonic::Code;

use crate::cli::{ArtifactCommand, OutputFormat};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::{ids, outln, output};

/// Runs one `artifact` subcommand.
pub async fn artifact(
    connection: &Connection,
    format: OutputFormat,
    command: &ArtifactCommand,
) -> Result<()> {
    match command {
        ArtifactCommand::List { run, phase } => {
            let run = ids::run(connection, run).await?;
            list(
                connection,
                format,
                &run,
                phase.as_deref().unwrap_or_default(),
            )
            .await
        }
        ArtifactCommand::Get { id, version, out } => {
            let id = ids::artifact_id(connection, id).await?;
            get(
                connection,
                format,
                &id,
                version.unwrap_or(0),
                out.as_deref(),
            )
            .await
        }
        ArtifactCommand::History { id } => {
            let id = ids::artifact_id(connection, id).await?;
            history(connection, format, &id).await
        }
        ArtifactCommand::Diff { id, from, to } => {
            let id = ids::artifact_id(connection, id).await?;
            diff(connection, format, &id, *from, to.unwrap_or(0)).await
        }
    }
}

/// The latest version of each artifact of a run (of one phase when
/// `phase` is not empty), as a table.
async fn list(
    connection: &Connection,
    format: OutputFormat,
    run_id: &str,
    phase: &str,
) -> Result<()> {
    let response = connection
        .artifacts()
        .list_artifacts(pb::ListArtifactsRequest {
            run_id: run_id.to_owned(),
            phase_id: phase.to_owned(),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    if response.artifacts.is_empty() {
        return outln!("run {run_id} has no artifacts yet");
    }
    outln!("{}", versions_table(&response.artifacts, true))
}

/// Versions as a table; `with_id` adds the artifact id (a list of one
/// artifact's history has one id, said above the table).
fn versions_table(versions: &[pb::ArtifactVersion], with_id: bool) -> comfy_table::Table {
    let mut header = vec![
        "name", "version", "phase", "attempt", "type", "bytes", "created", "",
    ];
    if with_id {
        header.insert(0, "id");
    }
    let mut table = output::table([""; 0]);
    table.set_header(header);
    for v in versions {
        let r = v.r#ref.clone().unwrap_or_default();
        let mut marks = Vec::new();
        if v.is_latest {
            marks.push("latest");
        }
        if !v.valid {
            marks.push("INVALID");
        }
        let mut row = vec![
            r.name,
            r.version.to_string(),
            r.phase_id,
            r.attempt.to_string(),
            r.media_type,
            r.size_bytes.to_string(),
            output::when(v.created_at.as_ref()),
            marks.join(" "),
        ];
        if with_id {
            row.insert(0, r.artifact_id);
        }
        table.add_row(row);
    }
    table
}

/// A NOT_FOUND about an artifact, said plainly: an id the store has never
/// seen "does not exist"; other faults (no such version) stay as they are.
async fn not_found(connection: &Connection, id: &str, status: tonic::Status) -> Error {
    if status.code() != Code::NotFound {
        return status.into();
    }
    let history = connection
        .artifacts()
        .get_artifact_history(pb::GetArtifactHistoryRequest {
            artifact_id: id.to_owned(),
        })
        .await;
    match history {
        Err(s) if s.code() == Code::NotFound => Error::NoSuchId {
            what: "artifact",
            given: id.to_owned(),
        },
        Ok(h) if h.get_ref().versions.is_empty() => Error::NoSuchId {
            what: "artifact",
            given: id.to_owned(),
        },
        _ => status.into(),
    }
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
    let got = connection
        .artifacts()
        .get_artifact(pb::GetArtifactRequest {
            artifact_id: id.to_owned(),
            version,
            include_content: true,
        })
        .await;
    let mut response = match got {
        Ok(response) => response.into_inner(),
        Err(status) => return Err(not_found(connection, id, status).await),
    };
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
        (OutputFormat::Json, _) => output::print_json(&serde_json::json!({
            "artifact": output::artifact_json(artifact)?
        })),
        (OutputFormat::Table, Some(path)) => {
            outln!("{}", metadata(artifact))?;
            outln!("written to {}", path.display())
        }
        (OutputFormat::Table, None) => {
            outln!("{}", metadata(artifact))?;
            outln!("{}", output::readable(&artifact.content))
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

/// Every version of an artifact, oldest first.
async fn history(connection: &Connection, format: OutputFormat, id: &str) -> Result<()> {
    let got = connection
        .artifacts()
        .get_artifact_history(pb::GetArtifactHistoryRequest {
            artifact_id: id.to_owned(),
        })
        .await;
    let response = match got {
        Ok(response) => response.into_inner(),
        Err(status) => return Err(not_found(connection, id, status).await),
    };
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    outln!("artifact {id}")?;
    outln!("{}", versions_table(&response.versions, false))?;
    if response.versions.len() > 1 {
        outln!("compare two with: orchestra artifact diff {id} --from VERSION --to VERSION")?;
    }
    Ok(())
}

/// What changed from version `from` to version `to` (0: the latest).
async fn diff(
    connection: &Connection,
    format: OutputFormat,
    id: &str,
    from: i32,
    to: i32,
) -> Result<()> {
    let side = |version: i32| pb::ArtifactRef {
        artifact_id: id.to_owned(),
        version,
        ..Default::default()
    };
    let got = connection
        .artifacts()
        .diff_artifacts(pb::DiffArtifactsRequest {
            left: Some(side(from)),
            right: Some(side(to)),
        })
        .await;
    let response = match got {
        Ok(response) => response.into_inner(),
        Err(status) => return Err(not_found(connection, id, status).await),
    };
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let to_name = if to == 0 {
        "the latest version".to_owned()
    } else {
        format!("version {to}")
    };
    if response.identical {
        return outln!("version {from} and {to_name} of {id} are identical");
    }
    output::write_out(&response.unified)?;
    if !response.unified.ends_with('\n') {
        outln!("")?;
    }
    Ok(())
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
