//! How the CLI fails: an unreachable server and a taken port.

use std::process::Command;

#[test]
fn an_unreachable_server_says_how_to_start_one() {
    // Port 1: nothing listens there, and unlike a released ephemeral port it
    // cannot be a client socket's own port (a TCP self-connect hangs).
    let server = "http://127.0.0.1:1".to_owned();
    let output = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["--server", &server, "template", "list"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!("cannot reach Orchestra at {server}: is it running? start it with: orchestra up")
    );
}

#[test]
fn up_on_a_taken_port_suggests_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let data = tempfile::tempdir().expect("dir");
    let output = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["up", "--listen", &addr, "--data-dir"])
        .arg(data.path())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}
