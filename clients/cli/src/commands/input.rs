//! `orchestra input submit`: fills in a human_input form from a JSON file.

use std::path::Path;

use orchestra_proto::v1 as pb;

use crate::cli::OutputFormat;
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::{ids, outln, output};

/// Submits the file's JSON as `person`. A form that breaks its schema comes
/// back as INVALID_ARGUMENT, reported with one line per field path. A
/// review task is refused here, naming the commands that decide it.
pub async fn submit(
    connection: &Connection,
    format: OutputFormat,
    task: &str,
    path: &Path,
    person: &str,
) -> Result<()> {
    let content = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str::<serde_json::Value>(&content).map_err(|source| Error::Json {
        path: path.to_owned(),
        source,
    })?;
    let task = ids::task(connection, task).await?;
    if task.kind == pb::HumanTaskKind::Review as i32 {
        return Err(Error::WrongTaskKind {
            is: "a review",
            what_to_do: format!(
                "decide it with `orchestra review approve|reject|retry {}` (see it with `orchestra review show {}`)",
                task.id, task.id
            ),
            task: task.id,
        });
    }
    let response = connection
        .review()
        .submit_input(pb::SubmitInputRequest {
            task_id: task.id,
            content_json: content,
            person: person.to_owned(),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let task = response.task.unwrap_or_default();
    let key = task.key.unwrap_or_default();
    outln!(
        "submitted {} for {} of run {} as {person}",
        task.output_name,
        key.phase_id,
        key.run_id
    )
}
