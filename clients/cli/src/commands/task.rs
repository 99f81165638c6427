//! `orchestra task claim`: marks a human task of either kind as yours.

use orchestra_proto::v1 as pb;

use crate::cli::OutputFormat;
use crate::connect::Connection;
use crate::error::Result;
use crate::{ids, outln, output};

/// Claims the task for `person`, so the inbox shows who works on it.
pub async fn claim(
    connection: &Connection,
    format: OutputFormat,
    task: &str,
    person: &str,
) -> Result<()> {
    let task = ids::task(connection, task).await?;
    let response = connection
        .review()
        .claim_task(pb::ClaimTaskRequest {
            task_id: task.id.clone(),
            person: person.to_owned(),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let task = response.task.unwrap_or_default();
    let key = task.key.clone().unwrap_or_default();
    let next = if task.kind == pb::HumanTaskKind::Review as i32 {
        format!("orchestra review show {}", task.id)
    } else {
        format!("orchestra input submit {} FILE", task.id)
    };
    outln!(
        "claimed {} ({} {} of run {}) as {person}; next: {next}",
        task.id,
        output::task_kind(task.kind),
        key.phase_id,
        key.run_id
    )
}
