//! `orchestra inbox`: the human tasks waiting for someone, oldest first.

use orchestra_proto::v1 as pb;

use crate::cli::{InboxArgs, OutputFormat};
use crate::connect::Connection;
use crate::error::Result;
use crate::output;

/// Lists open tasks (every task with `--all`), optionally of one run.
pub async fn inbox(connection: &Connection, format: OutputFormat, args: InboxArgs) -> Result<()> {
    let response = connection
        .review()
        .list_inbox(pb::ListInboxRequest {
            include_closed: args.all,
            run_id: args.run.unwrap_or_default(),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    if response.tasks.is_empty() {
        println!("nothing waits for anyone");
        return Ok(());
    }
    let mut table = output::table([
        "id",
        "kind",
        "run",
        "phase",
        "title",
        "state",
        "claimed by",
        "age",
    ]);
    for task in &response.tasks {
        let key = task.key.clone().unwrap_or_default();
        table.add_row([
            task.id.clone(),
            output::task_kind(task.kind),
            key.run_id,
            format!("{} #{}", key.phase_id, key.attempt),
            task.title.clone(),
            output::task_state(task.state).to_owned(),
            if task.claimed_by.is_empty() {
                "-".to_owned()
            } else {
                task.claimed_by.clone()
            },
            output::age(task.created_at.as_ref()),
        ]);
    }
    println!("{table}");
    Ok(())
}
