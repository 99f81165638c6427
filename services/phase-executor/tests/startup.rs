//! Start-up of the executor binary with bad settings (the newcomer review's B8 table).
//!
//! The real binary is started with one bad variable: it must stop at once
//! with exit status 2 and one line naming the variable and what to do, with
//! no Rust `Debug` output.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How the binary ended: its exit status and what it wrote on stderr.
struct Ended {
    code: Option<i32>,
    stderr: String,
}

/// Starts `orchestra-phase-executor` in an empty folder with only `vars` set, and waits at
/// most 20 s for it to stop.
fn start_with(vars: &[(&str, &str)]) -> Ended {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestra-phase-executor"))
        .env_clear()
        .current_dir(dir.path())
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the service started despite {vars:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    Ended {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Asserts the binary stopped for a bad configuration that `says` each text.
fn refused(vars: &[(&str, &str)], says: &[&str]) -> String {
    let ended = start_with(vars);
    assert_eq!(ended.code, Some(2), "{vars:?}: {}", ended.stderr);
    for text in says {
        assert!(
            ended.stderr.contains(text),
            "{vars:?}: expected {text:?} in {}",
            ended.stderr
        );
    }
    for debug in ["Os {", "Error: ", "kind: ", "panicked"] {
        assert!(
            !ended.stderr.contains(debug),
            "{vars:?}: Debug output in {}",
            ended.stderr
        );
    }
    assert_eq!(
        ended.stderr.trim().lines().count(),
        1,
        "one line: {}",
        ended.stderr
    );
    ended.stderr
}

#[test]
fn zero_slots_are_refused() {
    refused(
        &[("ORCHESTRA_EXECUTOR_SLOTS", "0")],
        &["ORCHESTRA_EXECUTOR_SLOTS", "at least 1"],
    );
    refused(
        &[("ORCHESTRA_EXECUTOR_SLOTS", "many")],
        &["ORCHESTRA_EXECUTOR_SLOTS", "many"],
    );
}

#[test]
fn a_scheduler_url_that_is_not_http_is_refused() {
    refused(
        &[("ORCHESTRA_EXECUTOR_SCHEDULER_URL", "ftp://x")],
        &["ORCHESTRA_EXECUTOR_SCHEDULER_URL", "http://", "`ftp://x`"],
    );
}

#[test]
fn a_typo_in_a_variable_names_the_one_meant() {
    refused(
        &[("ORCHESTRA_EXECUTOR_SLOT", "2")],
        &[
            "ORCHESTRA_EXECUTOR_SLOT:",
            "did you mean ORCHESTRA_EXECUTOR_SLOTS?",
        ],
    );
}
