//! `orchestra inbox`: the human tasks waiting for someone, oldest first;
//! with `--watch`, every change to the inbox as it happens.

use std::time::Duration;

use orchestra_proto::v1 as pb;

use crate::cli::{InboxArgs, OutputFormat, RunSelector};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::{ids, outln, output};

/// The first pause before a dropped watch reconnects; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Lists open tasks (every task with `--all`), optionally of one run, or
/// follows the inbox with `--watch`.
pub async fn inbox(connection: &Connection, format: OutputFormat, args: &InboxArgs) -> Result<()> {
    let run_id = match (&args.run, args.latest) {
        (None, false) => String::new(),
        (run, latest) => {
            let selector = RunSelector {
                run: run.clone(),
                latest,
            };
            ids::run(connection, &selector).await?
        }
    };
    if args.watch {
        return watch(connection, format, &run_id).await;
    }
    let response = connection
        .review()
        .list_inbox(pb::ListInboxRequest {
            include_closed: args.all,
            run_id,
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    if response.tasks.is_empty() {
        return outln!("nothing waits for anyone");
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
    outln!("{table}")
}

/// Prints the open tasks, then each change as it happens (of one run when
/// `run_id` is not empty), until interrupted. A dropped stream reconnects;
/// the open tasks it sends again are printed again, since a task may have
/// changed meanwhile. A server unreachable from the start is an error.
async fn watch(connection: &Connection, format: OutputFormat, run_id: &str) -> Result<()> {
    let mut backoff = FIRST_BACKOFF;
    let mut connected = false;
    loop {
        let dropped = match watch_once(connection, format, run_id, &mut backoff, &mut connected)
            .await
        {
            Ok(()) => tonic::Status::unavailable("the inbox stream ended"),
            Err(Error::Grpc(status)) if connected && status.code() == tonic::Code::Unavailable => {
                status
            }
            Err(other) => return Err(other),
        };
        eprintln!("reconnecting… ({})", dropped.message());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One WatchInbox call, printing each task it sends.
async fn watch_once(
    connection: &Connection,
    format: OutputFormat,
    run_id: &str,
    backoff: &mut Duration,
    connected: &mut bool,
) -> Result<()> {
    let mut stream = connection
        .review()
        .watch_inbox(pb::WatchInboxRequest {})
        .await?
        .into_inner();
    *connected = true;
    while let Some(message) = stream.message().await? {
        *backoff = FIRST_BACKOFF;
        let Some(task) = message.task else { continue };
        let key = task.key.clone().unwrap_or_default();
        if !run_id.is_empty() && key.run_id != run_id {
            continue;
        }
        match format {
            OutputFormat::Json => output::print_json_line(&task)?,
            OutputFormat::Table => output::write_out(&change_line(&task))?,
        }
    }
    Ok(())
}

/// One inbox change for a person: when, the task's state and what to do.
fn change_line(task: &pb::HumanTask) -> String {
    let key = task.key.clone().unwrap_or_default();
    let state = output::task_state(task.state);
    let open = task.state == pb::HumanTaskState::Open as i32
        || task.state == pb::HumanTaskState::Claimed as i32;
    let next = match (open, task.kind == pb::HumanTaskKind::Review as i32) {
        (true, true) => format!("  orchestra review show {}", task.id),
        (true, false) => format!("  orchestra input submit {} FILE", task.id),
        (false, _) => String::new(),
    };
    let by = if task.claimed_by.is_empty() {
        String::new()
    } else {
        format!(" (claimed by {})", task.claimed_by)
    };
    format!(
        "{}  {state:<9} {} {} of run {}: {}{by}{next}\n",
        output::clock(task.updated_at.as_ref().or(task.created_at.as_ref())),
        output::task_kind(task.kind),
        key.phase_id,
        key.run_id,
        task.title,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_names_the_next_command() {
        let task = pb::HumanTask {
            id: "t1".into(),
            kind: pb::HumanTaskKind::Input as i32,
            state: pb::HumanTaskState::Open as i32,
            title: "The brief".into(),
            key: Some(pb::AttemptKey {
                run_id: "r1".into(),
                phase_id: "context".into(),
                attempt: 1,
            }),
            ..Default::default()
        };
        assert_eq!(
            change_line(&task),
            "00:00:00  OPEN      input context of run r1: The brief  orchestra input submit t1 FILE\n"
        );
    }
}
