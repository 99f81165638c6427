//! `orchestra review show|approve|reject|retry`.

use orchestra_proto::v1 as pb;

use crate::cli::{Cli, DecideArgs, OutputFormat, ReviewCommand};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::{ids, outln, output};

/// Lines of each item's content shown before it is cut short.
const ITEM_LINES: usize = 40;
/// Lines of each diff shown before it is cut short.
const DIFF_LINES: usize = 80;
/// Characters of any one line shown (long HTML previews are one line).
const LINE_CHARS: usize = 200;

/// Runs one `review` subcommand.
pub async fn review(
    connection: &Connection,
    format: OutputFormat,
    command: &ReviewCommand,
    cli: &Cli,
) -> Result<()> {
    let (kind, args) = match command {
        ReviewCommand::Show { task } => return show(connection, format, task).await,
        ReviewCommand::Approve(args) => (pb::DecisionKind::Approve, args),
        ReviewCommand::Reject(args) => (pb::DecisionKind::Reject, args),
        ReviewCommand::Retry(args) => (pb::DecisionKind::Retry, args),
    };
    decide(connection, format, kind, args, cli).await
}

/// Shows a task with everything needed to act on it.
async fn show(connection: &Connection, format: OutputFormat, task: &str) -> Result<()> {
    let task = ids::task(connection, task).await?;
    let response = connection
        .review()
        .get_task(pb::GetTaskRequest { task_id: task.id })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let task = response.task.ok_or(Error::Incomplete("task"))?;
    output::write_out(&describe(&task))
}

/// The text `review show` prints for a task.
fn describe(task: &pb::HumanTask) -> String {
    let key = task.key.clone().unwrap_or_default();
    let mut text = format!(
        "{} task {}  {}\n{}\nrun {}  phase {} (attempt {})  template {}  opened {} ago\n",
        output::task_kind(task.kind),
        task.id,
        output::task_state(task.state),
        task.title,
        key.run_id,
        key.phase_id,
        key.attempt,
        task.template_name,
        output::age(task.created_at.as_ref()),
    );
    if !task.claimed_by.is_empty() {
        text.push_str(&format!("claimed by {}\n", task.claimed_by));
    }
    if !task.show.is_empty() {
        text.push_str(&format!("views: {}\n", task.show.join(", ")));
    }
    if !task.form_schema_json.is_empty() {
        text.push_str("\n── the form (JSON Schema) ──\n");
        push_limited(
            &mut text,
            &output::readable(task.form_schema_json.as_bytes()),
            ITEM_LINES,
            "",
        );
    }
    for item in &task.items {
        let artifact = item.artifact.as_ref();
        text.push_str(&format!(
            "\n── {}: {} ──\n",
            item.name,
            output::artifact_ref(artifact)
        ));
        let more = artifact.map_or(String::new(), |a| {
            format!(
                "; all of it: orchestra artifact get {} --version {}",
                a.artifact_id, a.version
            )
        });
        push_limited(
            &mut text,
            &output::readable(item.content.as_bytes()),
            ITEM_LINES,
            &more,
        );
    }
    for diff in &task.diffs {
        text.push_str(&format!("\n── diff {} → {} ──\n", diff.left, diff.right));
        push_limited(&mut text, &diff.unified, DIFF_LINES, "");
    }
    if let Some(decision) = &task.decision {
        text.push_str(&format!(
            "\ndecided: {} by {}{}\n",
            decision_name(decision.kind),
            decision.decided_by,
            if decision.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", decision.comment)
            }
        ));
    }
    let open = task.state == pb::HumanTaskState::Open as i32
        || task.state == pb::HumanTaskState::Claimed as i32;
    if !task.closed_reason.is_empty() {
        text.push_str(&format!("\nclosed: {}\n", task.closed_reason));
    }
    if open && task.kind == pb::HumanTaskKind::Review as i32 {
        text.push_str(&format!(
            "\ndecide with one of:\n  {}\n  orchestra review reject {id} --comment TEXT\n  orchestra review retry {id} --comment TEXT [--phase PHASE]...\n",
            approve_hint(task),
            id = task.id,
        ));
    } else if open {
        text.push_str(&format!(
            "\nfill it in with: orchestra input submit {} FILE\n",
            task.id
        ));
    }
    text
}

/// How to approve: which candidates to pick, and how many.
fn approve_hint(task: &pb::HumanTask) -> String {
    let id = &task.id;
    let names = task.candidates.join(", ");
    match pb::Selection::try_from(task.selection) {
        _ if task.candidates.is_empty() => {
            format!("orchestra review approve {id} --comment TEXT")
        }
        Ok(pb::Selection::AtLeastOne) => format!(
            "orchestra review approve {id} [--select NAME]... --comment TEXT   (NAME any of: {names}; all when none is given)"
        ),
        Ok(pb::Selection::Any) => format!(
            "orchestra review approve {id} [--select NAME]... --comment TEXT   (NAME any of: {names}, or none)"
        ),
        _ if task.candidates.len() == 1 => {
            format!("orchestra review approve {id} --comment TEXT   (approves {names})")
        }
        _ => format!(
            "orchestra review approve {id} --select NAME --comment TEXT   (NAME one of: {names})"
        ),
    }
}

/// Appends at most `max_lines` of `body`, saying how much was left out.
fn push_limited(text: &mut String, body: &str, max_lines: usize, more: &str) {
    let (head, left_out) = output::head(body, max_lines);
    for line in head.lines() {
        text.push_str(&output::clip(line, LINE_CHARS));
        text.push('\n');
    }
    text.pop();
    text.push('\n');
    if left_out > 0 {
        text.push_str(&format!("… {left_out} more lines{more}\n"));
    }
}

/// A decision kind as a person says it.
fn decision_name(kind: i32) -> &'static str {
    match pb::DecisionKind::try_from(kind) {
        Ok(pb::DecisionKind::Approve) => "approved",
        Ok(pb::DecisionKind::Reject) => "rejected",
        Ok(pb::DecisionKind::Retry) => "sent back",
        _ => "decided",
    }
}

/// Records a decision as `person`.
async fn decide(
    connection: &Connection,
    format: OutputFormat,
    kind: pb::DecisionKind,
    args: &DecideArgs,
    cli: &Cli,
) -> Result<()> {
    let task = ids::task(connection, &args.task).await?;
    if task.kind == pb::HumanTaskKind::Input as i32 {
        return Err(Error::WrongTaskKind {
            is: "an input form",
            what_to_do: format!("fill it in with `orchestra input submit {} FILE`", task.id),
            task: task.id,
        });
    }
    let person = cli.person();
    let response = connection
        .review()
        .decide(pb::DecideRequest {
            task_id: task.id.clone(),
            kind: kind as i32,
            comment: args.comment.clone(),
            selected: args.selected.clone(),
            retry_phases: args.phases.clone(),
            person: person.clone(),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let mut line = format!("{} {} as {person}", decision_name(kind as i32), task.id);
    let selected = response
        .task
        .and_then(|task| task.decision)
        .map(|decision| decision.selected)
        .unwrap_or_default();
    if !selected.is_empty() {
        line.push_str(&format!(" (selected {})", selected.join(", ")));
    }
    if !args.phases.is_empty() {
        line.push_str(&format!(" (again: {})", args.phases.join(", ")));
    }
    outln!("{line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_shows_items_diffs_and_the_commands_to_decide() {
        let task = pb::HumanTask {
            id: "t9".into(),
            kind: pb::HumanTaskKind::Review as i32,
            state: pb::HumanTaskState::Open as i32,
            title: "Review the variants".into(),
            items: vec![pb::ReviewItem {
                name: "a".into(),
                artifact: Some(pb::ArtifactRef {
                    artifact_id: "art1".into(),
                    version: 1,
                    name: "variant".into(),
                    ..Default::default()
                }),
                content: (0..100).map(|i| format!("{i}\n")).collect(),
            }],
            diffs: vec![pb::ReviewDiff {
                left: "a".into(),
                right: "b".into(),
                unified: "-x\n+y\n".into(),
                operations: Vec::new(),
            }],
            candidates: vec!["a".into(), "b".into()],
            selection: pb::Selection::One as i32,
            ..Default::default()
        };
        let text = describe(&task);
        assert!(text.contains("── a: variant@1 (art1) ──"), "{text}");
        assert!(
            text.contains("… 60 more lines; all of it: orchestra artifact get art1 --version 1")
        );
        assert!(text.contains("── diff a → b ──\n-x\n+y\n"));
        assert!(
            text.contains(
                "orchestra review approve t9 --select NAME --comment TEXT   (NAME one of: a, b)"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_approve_hint_follows_the_selection_rule() {
        let task = |candidates: &[&str], selection: pb::Selection| pb::HumanTask {
            id: "t".into(),
            candidates: candidates.iter().map(|c| (*c).to_owned()).collect(),
            selection: selection as i32,
            ..Default::default()
        };
        assert_eq!(
            approve_hint(&task(&[], pb::Selection::Unspecified)),
            "orchestra review approve t --comment TEXT"
        );
        assert!(approve_hint(&task(&["a"], pb::Selection::One)).contains("(approves a)"));
        assert!(
            approve_hint(&task(&["a", "b"], pb::Selection::AtLeastOne))
                .contains("all when none is given")
        );
        assert!(approve_hint(&task(&["a", "b"], pb::Selection::Any)).contains("or none"));
    }
}
