//! The whole Backtrack flow from the command line, as a person runs it:
//! apply, start, fill in the context, review, approve, watch it finish,
//! and read the merged page.

mod common;

use std::time::Duration;

use common::{Mesh, backtrack, eventually, finish};
use serde_json::Value;

/// The open task of `phase` in `run`, from `inbox --output json`.
fn open_task(mesh: &Mesh, run: &str, phase: &str) -> Option<String> {
    let inbox = mesh.run(&["--output", "json", "inbox", "--run", run]).ok();
    let value: Value = serde_json::from_str(&inbox.stdout).expect("inbox JSON");
    value["tasks"].as_array()?.iter().find_map(|task| {
        (task["key"]["phaseId"] == phase && task["key"]["runId"] == run)
            .then(|| task["id"].as_str().map(str::to_owned))
            .flatten()
    })
}

#[test]
fn backtrack_runs_end_to_end_from_the_cli() {
    let mesh = Mesh::start();
    mesh.run(&["template", "apply", &backtrack("template.yaml")])
        .ok();

    let started = mesh
        .run(&["run", "start", "backtrack-ui-patch", "--seed", "7"])
        .ok();
    let run = started.stdout.trim().to_owned();
    assert!(
        !run.is_empty() && !run.contains(char::is_whitespace),
        "{started:#?}"
    );
    assert!(
        started
            .stderr
            .contains(&format!("orchestra run watch {run}"))
    );

    // A watcher follows the run live from the start.
    let live = mesh
        .command(&["run", "watch", &run])
        .spawn()
        .expect("watch");

    // A: the brief. An invalid form is refused with its path; the example is accepted.
    let context = eventually("the context task", || open_task(&mesh, &run, "context"));
    let dir = tempfile::tempdir().expect("dir");
    let invalid = dir.path().join("invalid.json");
    std::fs::write(&invalid, r#"{"intent": 5}"#).expect("write");
    let refused = mesh.run(&[
        "input",
        "submit",
        &context,
        invalid.to_str().expect("utf-8"),
    ]);
    assert_ne!(refused.code, Some(0), "{refused:#?}");
    assert!(refused.stderr.starts_with("error: "), "{refused:#?}");
    assert!(
        refused
            .stderr
            .lines()
            .skip(1)
            .any(|l| l.starts_with("  ") && l.contains(": ")),
        "a violation line with its path: {refused:#?}"
    );
    let submitted = mesh
        .run(&[
            "input",
            "submit",
            &context,
            &backtrack("inputs/context.json"),
        ])
        .ok();
    assert!(submitted.stdout.contains("as tester"), "{submitted:#?}");

    // D: the review waits with both variants, their diff and the commands.
    let review = eventually("the review task", || open_task(&mesh, &run, "review"));
    let shown = mesh.run(&["review", "show", &review]).ok();
    for needle in [
        "── a: ",
        "── b: ",
        "── diff a → b ──",
        "orchestra review approve",
    ] {
        assert!(shown.stdout.contains(needle), "{needle}: {}", shown.stdout);
    }
    let decided = mesh
        .run(&[
            "review",
            "approve",
            &review,
            "--select",
            "a",
            "--comment",
            "ok",
        ])
        .ok();
    assert!(decided.stdout.contains("approved"), "{decided:#?}");

    // The live watcher and a late one both see the run complete.
    let live = finish(live, Duration::from_secs(60));
    assert_eq!(live.code, Some(0), "{live:#?}");
    for needle in [
        format!("context waits for input: orchestra input submit {context} FILE"),
        format!("review waits for a decision: orchestra review show {review}"),
        "variant_a".to_owned(),
        "RUNNING".to_owned(),
        format!("run {run} COMPLETED in "),
    ] {
        assert!(live.stdout.contains(&needle), "{needle}: {}", live.stdout);
    }
    let late = mesh.run(&["run", "watch", &run]);
    assert_eq!(late.code, Some(0), "{late:#?}");

    // Every phase completed or was approved; the merge made the next page.
    let shown = mesh.run(&["--output", "json", "run", "show", &run]).ok();
    let snapshot: Value = serde_json::from_str(&shown.stdout).expect("run JSON");
    assert_eq!(snapshot["run"]["status"], "RUN_STATUS_COMPLETED");
    let phases = snapshot["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 7);
    for phase in phases {
        let state = phase["state"].as_str().unwrap_or_default();
        assert!(
            state == "PHASE_STATE_COMPLETED" || state == "PHASE_STATE_APPROVED",
            "{phase}"
        );
    }
    let table = mesh.run(&["run", "show", &run]).ok();
    assert!(table.stdout.contains("APPROVED"), "{}", table.stdout);
    assert!(
        table
            .stdout
            .contains("llm · offline (deterministic, no network)"),
        "the offline provider is labelled: {}",
        table.stdout
    );
    let merge = phases.iter().find(|p| p["id"] == "merge").expect("merge");
    let parent = merge["output"]["artifactId"]
        .as_str()
        .expect("merge output");
    let artifact = mesh.run(&["artifact", "get", parent]).ok();
    assert!(
        artifact.stdout.starts_with("parent@1"),
        "{}",
        artifact.stdout
    );
    assert!(
        artifact.stdout.contains("\"version\": 4"),
        "{}",
        artifact.stdout
    );

    let listed = mesh.run(&["run", "list", "--status", "completed"]).ok();
    assert!(listed.stdout.contains(&run), "{}", listed.stdout);
    let inbox = mesh.run(&["inbox", "--all", "--run", &run]).ok();
    assert!(inbox.stdout.contains("DONE"), "{}", inbox.stdout);
}
