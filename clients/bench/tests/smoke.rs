//! The benchmark's smoke run: every workload in both configurations at
//! small sizes, so the benchmark cannot rot. It asserts that each figure is
//! printed with a value, not what the value is: speed lives in the figures.

use std::path::Path;
use std::process::Command;

/// Every figure the smoke run must print, per configuration.
const FIGURES: &[&str] = &[
    "start to serving",
    "idle: CPU per second",
    "idle: resident memory",
    "W3: per hop",
    "W3: dispatch idle p99",
    "W1s: StartRun to completed",
    "W1 (5 in flight): runs per second",
    "W1 (5 in flight): run latency p99",
    "W1 (5 in flight): dispatch under load p99",
    "W2 (20 children): per phase",
    "fan-out (20 watchers): commit to receipt p99",
];

#[test]
fn smoke_run_prints_every_figure_for_both_configurations() {
    let bench = Path::new(env!("CARGO_BIN_EXE_orchestra-bench"));
    let output = Command::new(bench)
        .arg("--smoke")
        .output()
        .expect("the benchmark starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the benchmark failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for config in ["sqlite-up", "postgres-split"] {
        for figure in FIGURES {
            let line = stdout
                .lines()
                .find(|line| line.starts_with(figure) && line.contains(config))
                .unwrap_or_else(|| panic!("no `{figure}` line for {config}:\n{stdout}"));
            let median: f64 = line[52..]
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no value in `{line}`"));
            assert!(median >= 0.0, "`{line}`");
        }
    }
    assert!(
        stdout.contains("idle: db transactions per second")
            && stdout.contains("fan-out (20 watchers): db transactions per event"),
        "Postgres counters missing:\n{stdout}"
    );
    assert!(!stdout.contains("not measured"), "{stdout}");
}

#[test]
fn missing_binaries_say_how_to_build_them() {
    let bench = Path::new(env!("CARGO_BIN_EXE_orchestra-bench"));
    let empty = tempfile::tempdir().expect("temp dir");
    let output = Command::new(bench)
        .args(["--smoke", "--config", "sqlite-up", "--bin-dir"])
        .arg(empty.path())
        .output()
        .expect("the benchmark starts");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("orchestra not found in")
            && stderr.contains("cargo build --release --bins"),
        "{stderr}"
    );
}
