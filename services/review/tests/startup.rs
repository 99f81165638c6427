//! Start-up of the review service binary with bad settings (the newcomer review's B8 table).
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

/// Starts `orchestra-review` in an empty folder with only `vars` set, and waits at
/// most 20 s for it to stop.
fn start_with(vars: &[(&str, &str)]) -> Ended {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestra-review"))
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
fn a_port_already_in_use_names_its_variable_and_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    refused(
        &[("ORCHESTRA_REVIEW_LISTEN_ADDR", &addr)],
        &[
            "ORCHESTRA_REVIEW_LISTEN_ADDR",
            &addr,
            "already in use",
            "set ORCHESTRA_REVIEW_LISTEN_ADDR to a free address",
        ],
    );
}

#[test]
fn an_address_that_does_not_parse_exits_2() {
    refused(
        &[("ORCHESTRA_REVIEW_LISTEN_ADDR", "127.0.0.1:99999")],
        &["ORCHESTRA_REVIEW_LISTEN_ADDR", "127.0.0.1:99999"],
    );
}

#[test]
fn an_empty_peer_url_exits_2() {
    refused(
        &[("ORCHESTRA_REVIEW_SCHEDULER_URL", "")],
        &["ORCHESTRA_REVIEW_SCHEDULER_URL", "http://"],
    );
}
