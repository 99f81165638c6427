//! `orchestra run start` with inputs larger than one gRPC message by
//! default (4 MiB): they are streamed to the artifact store and given to
//! StartRun by reference, so the run starts with the whole input.

mod common;

use clap::CommandFactory;
use common::Mesh;

const TEMPLATE: &str = "\
name: with-input
inputs:
  brief: { schema: { type: object, required: [goal], properties: { goal: { type: string } } } }
phases:
  - id: echo
    kind: function
    function: json.pick
    inputs: { brief: input.brief }
    params: { input: brief, path: /goal }
    output: { name: goal }
";

#[test]
fn an_input_above_4_mib_is_uploaded_and_the_run_uses_it() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().expect("dir");
    let template = dir.path().join("with-input.yaml");
    std::fs::write(&template, TEMPLATE).expect("write");
    mesh.run(&["template", "apply", template.to_str().expect("utf-8")])
        .ok();
    let big = dir.path().join("big.json");
    let content = format!(
        r#"{{"goal":"ship","pad":"{}"}}"#,
        "x".repeat(5 * 1024 * 1024)
    );
    std::fs::write(&big, &content).expect("write");

    let input = format!("brief={}", big.display());
    let started = mesh
        .run(&["run", "start", "with-input", "--input", &input])
        .ok();
    let run_id = started.stdout.trim().to_owned();

    let shown = mesh.run(&["--output", "json", "run", "show", &run_id]).ok();
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).expect("JSON");
    let brief = &shown["run"]["inputs"]["brief"];
    assert_eq!(brief["runId"], run_id.as_str(), "{shown}");
    assert_eq!(
        brief["sizeBytes"].as_str().map(str::to_owned),
        Some(content.len().to_string()),
        "{shown}"
    );
}

#[test]
fn a_large_input_that_is_not_json_names_its_file() {
    let mesh = Mesh::start();
    let dir = tempfile::tempdir().expect("dir");
    let big = dir.path().join("big.json");
    std::fs::write(&big, "x".repeat(2 * 1024 * 1024)).expect("write");
    let input = format!("brief={}", big.display());
    let ran = mesh.run(&["run", "start", "with-input", "--input", &input]);
    assert_eq!(ran.code, Some(1), "{ran:#?}");
    assert!(
        ran.stderr
            .starts_with(&format!("error: {} is not valid JSON", big.display())),
        "{ran:#?}"
    );
}

#[test]
fn the_clis_variables_are_not_taken_for_a_services_typos() {
    // A service refuses unknown variables under its prefix; a CLI variable
    // under one (ORCHESTRA_REVIEW_SERVER) must be listed as another
    // program's, or exporting it would stop that service.
    let prefixes = [
        "ORCHESTRA_SCHEDULER_",
        "ORCHESTRA_EXECUTOR_",
        "ORCHESTRA_ARTIFACT_STORE_",
        "ORCHESTRA_REVIEW_",
    ];
    let mut commands = vec![orchestra_cli::Cli::command()];
    while let Some(command) = commands.pop() {
        for arg in command.get_arguments() {
            let Some(variable) = arg.get_env().and_then(|v| v.to_str()) else {
                continue;
            };
            if prefixes.iter().any(|p| variable.starts_with(p)) {
                assert!(
                    orchestra_kit::config::OTHER_PROGRAMS_VARIABLES.contains(&variable),
                    "{variable} is under a service's prefix: list it in \
                     orchestra_kit::config::OTHER_PROGRAMS_VARIABLES"
                );
            }
        }
        commands.extend(command.get_subcommands().cloned());
    }
}
