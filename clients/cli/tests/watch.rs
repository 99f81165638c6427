//! `orchestra run watch` across a server restart: it reconnects from the
//! last event it received, with no event missed or printed twice.

mod common;

use std::time::Duration;

use common::{Mesh, backtrack, eventually, finish};
use serde_json::Value;

fn open_task(mesh: &Mesh, run: &str, phase: &str) -> Option<String> {
    let inbox = mesh.run(&["--output", "json", "inbox", "--run", run]);
    if inbox.code != Some(0) {
        return None;
    }
    let value: Value = serde_json::from_str(&inbox.stdout).ok()?;
    value["tasks"].as_array()?.iter().find_map(|task| {
        (task["key"]["phaseId"] == phase)
            .then(|| task["id"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// An int64 in the proto3 JSON mapping (a string).
fn int64(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value.as_i64())
        .unwrap_or(0)
}

#[test]
fn a_watch_resumes_after_a_restart_without_gap_or_duplicate() {
    let mut mesh = Mesh::start();
    mesh.run(&["template", "apply", &backtrack("template.yaml")])
        .ok();
    let run = mesh
        .run(&["run", "start", "backtrack-ui-patch", "--seed", "3"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let watcher = mesh
        .command(&["--output", "json", "run", "watch", &run])
        .spawn()
        .expect("watch");

    let context = eventually("the context task", || open_task(&mesh, &run, "context"));
    mesh.restart();
    mesh.run(&[
        "input",
        "submit",
        &context,
        &backtrack("inputs/context.json"),
    ])
    .ok();
    let review = eventually("the review task", || open_task(&mesh, &run, "review"));
    mesh.run(&["review", "approve", &review, "--select", "b"])
        .ok();

    let watched = finish(watcher, Duration::from_secs(90));
    assert_eq!(watched.code, Some(0), "{watched:#?}");
    assert!(watched.stderr.contains("reconnecting…"), "{watched:#?}");
    let mut lines = watched.stdout.lines();
    let snapshot: Value = serde_json::from_str(lines.next().expect("snapshot")).expect("JSON");
    let first = int64(&snapshot["seq"]) + 1;
    let mut last = Value::Null;
    for (expected, line) in (first..).zip(lines) {
        let event: Value = serde_json::from_str(line).expect("one event per line");
        assert_eq!(int64(&event["seq"]), expected, "{line}");
        last = event;
    }
    assert_eq!(
        last["runStatusChanged"]["to"], "RUN_STATUS_COMPLETED",
        "the last event ends the run: {last}"
    );
}

#[test]
fn a_watch_started_while_the_server_is_down_waits_for_it() {
    let mut mesh = Mesh::start();
    mesh.run(&["template", "apply", &backtrack("template.yaml")])
        .ok();
    let run = mesh
        .run(&["run", "start", "backtrack-ui-patch"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let context = eventually("the context task", || open_task(&mesh, &run, "context"));
    mesh.stop();
    let watcher = mesh
        .command(&["run", "watch", &run])
        .spawn()
        .expect("watch");
    std::thread::sleep(Duration::from_millis(500));
    mesh.start_again();
    mesh.run(&[
        "input",
        "submit",
        &context,
        &backtrack("inputs/context.json"),
    ])
    .ok();
    let review = eventually("the review task", || open_task(&mesh, &run, "review"));
    mesh.run(&["review", "approve", &review, "--select", "a"])
        .ok();
    let watched = finish(watcher, Duration::from_secs(90));
    assert_eq!(watched.code, Some(0), "{watched:#?}");
    assert!(watched.stderr.contains("reconnecting"), "{watched:#?}");
    assert!(watched.stdout.contains("COMPLETED in"), "{watched:#?}");
}
