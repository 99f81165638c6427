//! `orchestra template …` against a real mesh.

mod common;

use common::{Mesh, backtrack};

#[test]
fn an_invalid_template_prints_its_field_paths_and_exits_1() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "name: broken\nphases:\n  - id: a\n    kind: human_input\n    output: { name: x }\n  - id: b\n    kind: function\n    function: patch.merge\n    needs: [nowhere]\n",
    )
    .expect("write");
    let ran = mesh.run(&["template", "apply", path.to_str().expect("utf-8")]);
    assert_eq!(ran.code, Some(1), "{ran:#?}");
    assert!(ran.stderr.starts_with("error: "), "{ran:#?}");
    assert!(
        ran.stderr
            .lines()
            .any(|l| l.starts_with("  phases[1].needs[0]: ")),
        "{ran:#?}"
    );
}

#[test]
fn a_missing_referenced_file_is_reported_with_its_field_path() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("t.yaml");
    std::fs::write(
        &path,
        "name: t\nphases:\n  - id: a\n    kind: human_input\n    output: { name: x, schema: schemas/gone.json }\n",
    )
    .expect("write");
    let ran = mesh.run(&["template", "apply", path.to_str().expect("utf-8")]);
    assert_eq!(ran.code, Some(1), "{ran:#?}");
    assert!(
        ran.stderr
            .contains("  phases[0].output.schema: cannot read the schema file schemas/gone.json"),
        "{ran:#?}"
    );
}

#[test]
fn applying_twice_stores_one_version() {
    let mesh = Mesh::start();
    let template = backtrack("template.yaml");
    let first = mesh.run(&["template", "apply", &template]).ok();
    assert_eq!(first.stdout.trim(), "applied backtrack-ui-patch version 1");
    let second = mesh.run(&["template", "apply", &template]).ok();
    assert_eq!(
        second.stdout.trim(),
        "backtrack-ui-patch unchanged (version 1)"
    );

    let list = mesh.run(&["template", "list"]).ok();
    assert!(list.stdout.contains("backtrack-ui-patch"), "{list:#?}");
    let show = mesh.run(&["template", "show", "backtrack-ui-patch"]).ok();
    for needle in ["variant_a", "human_review", "score, preview", "parent"] {
        assert!(show.stdout.contains(needle), "{needle}: {show:#?}");
    }
    let json = mesh
        .run(&[
            "--output",
            "json",
            "template",
            "show",
            "backtrack-ui-patch",
            "--version",
            "1",
        ])
        .ok();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(value["template"]["version"], 1);
}

/// With the services apart, each command reaches the service it needs:
/// here the scheduler's address is dead and only the review service's is
/// live, so the inbox works and a template listing does not.
#[test]
fn the_review_service_can_live_apart_from_the_scheduler() {
    let mesh = Mesh::start();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let apart = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .args([
                "--server",
                &format!("http://{dead}"),
                "--review-server",
                &mesh.url,
            ])
            .args(args)
            .output()
            .expect("run")
    };
    let inbox = apart(&["inbox"]);
    assert!(
        inbox.status.success(),
        "{}",
        String::from_utf8_lossy(&inbox.stderr)
    );
    let templates = apart(&["template", "list"]);
    assert_eq!(templates.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&templates.stderr).contains("cannot reach Orchestra"));
}
