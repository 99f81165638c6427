//! The verbs beyond the Backtrack happy path: cancel, continue, the event
//! log, template validate and clone, artifact list/history/diff, inbox
//! --watch, task claim, ids by prefix and --latest, and the wording of the
//! errors a person meets on the way.

mod common;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use common::{
    Mesh, backtrack, backtrack_to_review, eventually, json, open_task, run_status, start_backtrack,
    wait_for_status,
};
use serde_json::Value;

/// The ids of the phases of `run` in `state` (`PHASE_STATE_…`).
fn phases_in(mesh: &Mesh, run: &str, state: &str) -> Vec<String> {
    let shown = mesh.run(&["--output", "json", "run", "show", run]).ok();
    json(&shown)["phases"]
        .as_array()
        .map(|phases| {
            phases
                .iter()
                .filter(|p| p["state"] == state)
                .filter_map(|p| p["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_manual_run_is_moved_on_phase_by_phase_to_completion() {
    let mesh = Mesh::start();
    mesh.run(&["template", "apply", &backtrack("template.yaml")])
        .ok();
    let started = mesh
        .run(&["run", "start", "backtrack-ui-patch", "--manual"])
        .ok();
    let run = started.stdout.trim().to_owned();
    assert!(
        started.stderr.contains(&format!(
            "context is READY: orchestra run continue {run} context"
        )),
        "start --manual says how to continue: {started:#?}"
    );
    let shown = mesh.run(&["run", "show", &run]).ok();
    assert!(
        shown
            .stdout
            .contains(&format!("orchestra run continue {run} context")),
        "{shown:#?}"
    );

    // A BLOCKED phase cannot be moved on; the server says why.
    let blocked = mesh.run(&["run", "continue", &run, "merge"]);
    assert_eq!(blocked.code, Some(1), "{blocked:#?}");
    assert!(blocked.stderr.contains("BLOCKED"), "{blocked:#?}");

    // By a prefix of the run's id, then by --latest.
    mesh.run(&["run", "continue", &run[..20], "context"]).ok();
    let context = eventually("the context task", || open_task(&mesh, &run, "context"));
    mesh.run(&[
        "input",
        "submit",
        &context,
        &backtrack("inputs/context.json"),
    ])
    .ok();
    let mut reviewed = false;
    eventually("the run to complete", || {
        for phase in phases_in(&mesh, &run, "PHASE_STATE_READY") {
            let moved = mesh.run(&["run", "continue", "--latest", &phase]).ok();
            assert!(
                moved
                    .stdout
                    .starts_with(&format!("{phase} of run {run} is "))
            );
        }
        if !reviewed && let Some(review) = open_task(&mesh, &run, "review") {
            mesh.run(&["review", "approve", &review, "--select", "a"])
                .ok();
            reviewed = true;
        }
        (run_status(&mesh, &run) == "RUN_STATUS_COMPLETED").then_some(())
    });
}

#[test]
fn a_cancelled_run_says_so() {
    let mesh = Mesh::start();
    let run = start_backtrack(&mesh, &[]);
    let cancelled = mesh
        .run(&["run", "cancel", &run, "--reason", "changed my mind"])
        .ok();
    assert_eq!(
        cancelled.stdout.trim(),
        format!("run {run} is CANCELLED"),
        "{cancelled:#?}"
    );
    wait_for_status(&mesh, &run, "RUN_STATUS_CANCELLED");
    let events = mesh.run(&["run", "events", &run]).ok();
    assert!(events.stdout.contains("changed my mind"), "{events:#?}");
}

#[test]
fn the_event_log_has_times_and_durations_and_stops_at_the_present() {
    let mesh = Mesh::start();
    let (run, review) = backtrack_to_review(&mesh);

    // An unfinished run: the log up to now, then the command ends.
    let so_far = mesh.run(&["run", "events", &run]).ok();
    assert!(so_far.stdout.contains("   1  "), "numbered: {so_far:#?}");
    assert!(
        so_far.stdout.contains("review waits for a decision"),
        "{so_far:#?}"
    );

    mesh.run(&["review", "approve", &review, "--select", "b"])
        .ok();
    wait_for_status(&mesh, &run, "RUN_STATUS_COMPLETED");
    let log = mesh.run(&["run", "events", &run[..13]]).ok();
    for needle in [
        "run started: backtrack-ui-patch",
        "last attempt",
        "all attempts",
        &format!("run {run} COMPLETED in "),
    ] {
        assert!(log.stdout.contains(needle), "{needle}: {}", log.stdout);
    }
    let table_row = |phase: &str| {
        log.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(phase) && l.contains("COMPLETED"))
            .map(str::to_owned)
    };
    for phase in ["context", "variant_a", "merge"] {
        let row = table_row(phase).unwrap_or_else(|| panic!("{phase}: {}", log.stdout));
        assert!(row.contains("ms") || row.contains('s'), "{row}");
    }
    let shown = mesh.run(&["run", "show", &run]).ok();
    assert!(shown.stdout.contains("took"), "{shown:#?}");

    // --follow on a finished run replays it all and ends.
    let followed = mesh.run(&["run", "events", "--latest", "--follow"]).ok();
    assert!(
        followed
            .stdout
            .contains(&format!("run {run} COMPLETED in ")),
        "{followed:#?}"
    );
}

#[test]
fn templates_validate_without_storing_and_clone_under_a_new_name() {
    let mesh = Mesh::start();
    let valid = mesh
        .run(&["template", "validate", &backtrack("template.yaml")])
        .ok();
    assert!(valid.stdout.contains("is valid"), "{valid:#?}");
    let listed = mesh.run(&["template", "list"]).ok();
    assert!(
        !listed.stdout.contains("backtrack-ui-patch"),
        "validate stores nothing: {listed:#?}"
    );

    let dir = tempfile::tempdir().expect("dir");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "name: broken\nphases:\n  - id: a\n    kind: function\n    function: patch.merge\n    needs: [nowhere]\n",
    )
    .expect("write");
    let refused = mesh.run(&["template", "validate", broken.to_str().expect("utf-8")]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert!(
        refused
            .stderr
            .lines()
            .any(|l| l.starts_with("  phases[0].needs[0]: ")),
        "{refused:#?}"
    );

    let empty = dir.path().join("empty.yaml");
    std::fs::write(&empty, "\n").expect("write");
    let refused = mesh.run(&["template", "apply", empty.to_str().expect("utf-8")]);
    assert_eq!(refused.code, Some(1), "{refused:#?}");
    assert_eq!(refused.stderr.lines().count(), 1, "said once: {refused:#?}");
    assert!(refused.stderr.contains("is empty"), "{refused:#?}");
    assert!(!refused.stderr.contains("source.source"), "{refused:#?}");

    mesh.run(&["template", "apply", &backtrack("template.yaml")])
        .ok();
    let cloned = mesh
        .run(&["template", "clone", "backtrack-ui-patch", "my-backtrack"])
        .ok();
    assert_eq!(
        cloned.stdout.trim(),
        "cloned backtrack-ui-patch as my-backtrack version 1"
    );
    mesh.run(&["template", "show", "my-backtrack"]).ok();
}

#[test]
fn artifacts_are_listed_with_their_history_and_diffs() {
    let mesh = Mesh::start();
    let (run, review) = backtrack_to_review(&mesh);
    // A rejection runs both variants again: each gets a second version.
    mesh.run(&["review", "reject", &review, "--comment", "bolder"])
        .ok();
    eventually("a second review", || {
        open_task(&mesh, &run, "review").filter(|task| *task != review)
    });

    let listed = mesh
        .run(&[
            "--output",
            "json",
            "artifact",
            "list",
            &run,
            "--phase",
            "variant_a",
        ])
        .ok();
    let artifacts = json(&listed)["artifacts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(artifacts.len(), 1, "{}", listed.stdout);
    let variant = artifacts[0]["ref"]["artifactId"]
        .as_str()
        .expect("id")
        .to_owned();
    let table = mesh.run(&["artifact", "list", "--latest"]).ok();
    for needle in ["context", "variant", "latest"] {
        assert!(table.stdout.contains(needle), "{needle}: {table:#?}");
    }

    let history = mesh.run(&["artifact", "history", &variant[..18]]).ok();
    assert!(
        history.stdout.contains(&format!("artifact {variant}")),
        "{history:#?}"
    );
    let versions = mesh
        .run(&["--output", "json", "artifact", "history", &variant])
        .ok();
    assert_eq!(
        json(&versions)["versions"].as_array().map(Vec::len),
        Some(2),
        "{versions:#?}"
    );

    let diff = mesh
        .run(&["artifact", "diff", &variant, "--from", "1", "--to", "2"])
        .ok();
    assert!(
        diff.stdout.contains("\n-") || diff.stdout.contains("identical"),
        "{diff:#?}"
    );
    let ops = mesh
        .run(&[
            "--output", "json", "artifact", "diff", &variant, "--from", "1",
        ])
        .ok();
    json(&ops);

    let missing = mesh.run(&["artifact", "get", "garbage"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .stderr
            .starts_with("error: artifact garbage does not exist"),
        "{missing:#?}"
    );
    let unknown = "01a23b84-0000-74f1-aab5-c4eb82f899a2";
    let missing = mesh.run(&["artifact", "get", unknown]);
    assert!(
        missing
            .stderr
            .starts_with(&format!("error: artifact {unknown} does not exist")),
        "{missing:#?}"
    );
}

#[test]
fn the_inbox_is_watched_one_json_object_per_line() {
    let mesh = Mesh::start();
    mesh.run(&["template", "apply", &backtrack("template.yaml")])
        .ok();
    let mut watcher = mesh
        .command(&["--output", "json", "inbox", "--watch"])
        .spawn()
        .expect("inbox --watch");
    let stdout = watcher.stdout.take().expect("stdout");
    let (lines, received) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let run = start_backtrack(&mesh, &[]);
    let context = eventually("the context task", || open_task(&mesh, &run, "context"));
    mesh.run(&["task", "claim", &context[..20]]).ok();
    let mut seen = Vec::new();
    let claimed = loop {
        let line = received
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the watch reports the claim; saw {seen:#?}"));
        let task: Value = serde_json::from_str(&line).expect("one JSON object per line");
        seen.push(line);
        if task["id"] == context.as_str() && task["claimedBy"] == "tester" {
            break task;
        }
    };
    assert_eq!(claimed["key"]["phaseId"], "context");
    // Only the watcher this test started, by its id.
    let _ = std::process::Command::new("kill")
        .arg(watcher.id().to_string())
        .status();
    let _ = watcher.wait();

    let inbox = mesh.run(&["inbox"]).ok();
    assert!(inbox.stdout.contains("tester"), "claimed by: {inbox:#?}");
}

#[test]
fn ids_are_taken_by_unique_prefix_and_the_wrong_kind_of_task_names_the_right_command() {
    let mesh = Mesh::start();
    let (run, review) = backtrack_to_review(&mesh);
    let second = start_backtrack(&mesh, &[]);

    let latest = mesh
        .run(&["--output", "json", "run", "show", "--latest"])
        .ok();
    assert_eq!(json(&latest)["run"]["id"], second.as_str());
    let by_prefix = mesh
        .run(&["--output", "json", "run", "show", &run[..24]])
        .ok();
    assert_eq!(json(&by_prefix)["run"]["id"], run.as_str());

    // Both ids start alike (UUIDv7 begins with the time): an ambiguous
    // prefix lists the runs it could mean.
    let common_len = run
        .chars()
        .zip(second.chars())
        .take_while(|(a, b)| a == b)
        .count();
    assert!(common_len >= 4, "{run} {second}");
    let ambiguous = mesh.run(&["run", "show", &run[..4]]);
    assert_eq!(ambiguous.code, Some(1), "{ambiguous:#?}");
    assert!(
        ambiguous.stderr.contains("give more of the id"),
        "{ambiguous:#?}"
    );
    assert!(ambiguous.stderr.contains(&run), "{ambiguous:#?}");
    assert!(ambiguous.stderr.contains(&second), "{ambiguous:#?}");
    let none = mesh.run(&["run", "show", "zzz"]);
    assert!(
        none.stderr.starts_with("error: run zzz does not exist"),
        "{none:#?}"
    );

    // A review given to `input submit`, and a form given to `review approve`.
    let wrong = mesh.run(&[
        "input",
        "submit",
        &review[..30],
        &backtrack("inputs/context.json"),
    ]);
    assert_eq!(wrong.code, Some(1), "{wrong:#?}");
    assert!(
        wrong.stderr.contains(&format!(
            "task {review} is a review: decide it with `orchestra review approve|reject|retry {review}`"
        )),
        "{wrong:#?}"
    );
    let context = eventually("the second context task", || {
        open_task(&mesh, &second, "context")
    });
    let wrong = mesh.run(&["review", "approve", &context, "--select", "a"]);
    assert_eq!(wrong.code, Some(1), "{wrong:#?}");
    assert!(
        wrong.stderr.contains(&format!(
            "fill it in with `orchestra input submit {context} FILE`"
        )),
        "{wrong:#?}"
    );

    // A task prefix reaches the right task.
    let shown = mesh.run(&["review", "show", &review[..30]]).ok();
    assert!(shown.stdout.contains(&review), "{shown:#?}");
}
