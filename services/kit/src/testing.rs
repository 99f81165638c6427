//! Starting a service binary with bad settings, for each service's
//! `tests/startup.rs`: the real binary, one bad variable, and the checks
//! every refusal must pass (exit status 2, one line, no Rust `Debug` text).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a binary ended: its exit status and what it wrote on stderr.
#[derive(Debug)]
pub struct Ended {
    /// The exit status, if it exited.
    pub code: Option<i32>,
    /// Everything it wrote on stderr.
    pub stderr: String,
}

/// Starts `binary` in an empty folder with only `vars` set, and waits at
/// most 20 s for it to stop; panics if it keeps running.
pub fn start_with(binary: &str, vars: &[(&str, &str)]) -> Ended {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(binary)
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

/// Asserts `binary` stopped for a bad configuration with exit status 2 and
/// one line that says each of `says`, with no `Debug` output; returns it.
pub fn refused(binary: &str, vars: &[(&str, &str)], says: &[&str]) -> String {
    let ended = start_with(binary, vars);
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
