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
    // A setting to change: status 2, as every Orchestra binary exits.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn up_with_a_flag_it_cannot_use_exits_2_and_never_says_it_is_up() {
    let data = tempfile::tempdir().expect("dir");
    // A file where the data folder should be.
    let file = data.path().join("not-a-folder");
    std::fs::write(&file, "x").expect("file");
    let unreachable = "postgres://orchestra:secret@127.0.0.1:1/orchestra";
    for (flag, value) in [
        ("--data-dir", file.display().to_string()),
        ("--database-url", unreachable.to_owned()),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orchestra"));
        command.args(["up", "--listen", "127.0.0.1:0", flag, &value]);
        if flag != "--data-dir" {
            command.arg("--data-dir").arg(data.path());
        }
        let output = command.output().expect("run");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains(flag), "{flag}: {stderr}");
        assert!(!stderr.contains("secret"), "{flag}: {stderr}");
        assert!(!stdout.contains("is up"), "{flag}: {stdout}");
    }
}
