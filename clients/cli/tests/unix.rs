//! The CLI as a Unix tool: a closed pipe, JSON that programs can read,
//! server addresses, TLS, help text and who an action is recorded as.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Mesh, backtrack, backtrack_to_review, eventually, finish, json, open_task};
use serde_json::Value;

/// Runs `orchestra ARGS` with its standard output a pipe whose reader is
/// already closed, as `| head` leaves it once satisfied.
fn into_closed_pipe(mesh: &Mesh, args: &[&str]) -> common::Ran {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let child = mesh
        .command(args)
        .stdout(Stdio::from(writer))
        .spawn()
        .expect("spawn");
    finish(child, Duration::from_secs(60))
}

#[test]
fn a_closed_pipe_ends_the_command_quietly_with_status_0() {
    let mesh = Mesh::start();
    let (run, _review) = backtrack_to_review(&mesh);
    let shown = mesh.run(&["--output", "json", "run", "show", &run]).ok();
    let context = json(&shown)["phases"][0]["output"]["artifactId"]
        .as_str()
        .expect("context output")
        .to_owned();
    for format in ["table", "json"] {
        for args in [
            vec!["template", "show", "backtrack-ui-patch"],
            vec!["artifact", "get", &context],
            vec!["run", "events", &run],
            vec!["run", "show", &run],
        ] {
            let mut full = vec!["--output", format];
            full.extend_from_slice(&args);
            let ran = into_closed_pipe(&mesh, &full);
            assert_eq!(ran.code, Some(0), "{full:?}: {ran:#?}");
            assert_eq!(ran.stderr, "", "{full:?}: nothing on stderr");
        }
    }
}

#[test]
fn json_output_gives_artifact_content_as_json_and_streams_one_object_per_line() {
    let mesh = Mesh::start();
    mesh.run(&["template", "apply", &backtrack("template.yaml")])
        .ok();
    let watcher = mesh
        .command(&[
            "--output",
            "json",
            "run",
            "start",
            "backtrack-ui-patch",
            "--watch",
        ])
        .spawn()
        .expect("start --watch");
    let run = eventually("the run", || {
        let listed = mesh.run(&["--output", "json", "run", "list"]).ok();
        json(&listed)["runs"][0]["id"].as_str().map(str::to_owned)
    });
    let context = eventually("the context task", || open_task(&mesh, &run, "context"));
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
    let lines: Vec<&str> = watched.stdout.lines().collect();
    assert!(lines.len() > 10, "{watched:#?}");
    for line in &lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("each line is one JSON object ({e}): {line}"));
        assert!(value.is_object(), "{line}");
    }
    assert_eq!(
        serde_json::from_str::<Value>(lines[0]).expect("first")["run"]["id"],
        run.as_str(),
        "the first line is the started run"
    );

    // The event log: one event per line, numbered 1, 2, 3… with none missing.
    let events = mesh.run(&["--output", "json", "run", "events", &run]).ok();
    for (expected, line) in (1..).zip(events.stdout.lines()) {
        let event: Value = serde_json::from_str(line).expect("one event per line");
        assert_eq!(event["seq"], expected.to_string(), "{line}");
    }

    // Artifact content that is JSON comes as JSON, not base64.
    let shown = mesh.run(&["--output", "json", "run", "show", &run]).ok();
    let merge = json(&shown)["phases"]
        .as_array()
        .and_then(|phases| phases.iter().find(|p| p["id"] == "merge").cloned())
        .expect("merge");
    let parent = merge["output"]["artifactId"].as_str().expect("parent");
    let got = mesh
        .run(&["--output", "json", "artifact", "get", parent])
        .ok();
    let artifact = &json(&got)["artifact"];
    assert_eq!(artifact["content"]["version"], 4, "{}", got.stdout);
    assert!(artifact["content"]["slots"].is_object(), "{}", got.stdout);
}

#[test]
fn a_server_without_a_scheme_is_reached_over_http() {
    let mesh = Mesh::start();
    let bare = mesh.url.trim_start_matches("http://");
    let ran = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["--server", bare, "template", "list"])
        .output()
        .expect("run");
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
}

#[test]
fn https_uses_tls_and_never_falls_back_to_plaintext() {
    // The mesh speaks plaintext: an https:// URL must fail the handshake.
    let mesh = Mesh::start();
    let https = mesh.url.replace("http://", "https://");
    let ran = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["--server", &https, "template", "list"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot open a TLS connection to {https}")),
        "{stderr}"
    );
    assert!(stderr.contains("use http:// instead"), "{stderr}");

    let ftp = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["--server", "ftp://127.0.0.1:1", "template", "list"])
        .output()
        .expect("run");
    assert_eq!(ftp.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&ftp.stderr).contains("use http:// or https://"));
}

/// The help of `orchestra ARGS --help`, with no ORCHESTRA_* variable set.
fn help(args: &[&str]) -> String {
    let ran = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(args)
        .arg("--help")
        .env_remove("ORCHESTRA_SERVER")
        .env_remove("ORCHESTRA_USER")
        .output()
        .expect("help");
    assert!(ran.status.success());
    String::from_utf8_lossy(&ran.stdout).into_owned()
}

#[test]
fn help_lists_global_flags_apart_and_up_without_client_flags() {
    let top = help(&[]);
    assert!(
        !top.contains("=]"),
        "no variable reads as set to empty: {top}"
    );
    assert!(top.contains("[env: ORCHESTRA_SERVER]"), "{top}");

    let start = help(&["run", "start"]);
    let local = start.find("--watch").expect("--watch");
    let heading = start
        .find("Global options:")
        .expect("a heading for global flags");
    let global = start.find("--as <PERSON>").expect("--as");
    assert!(local < heading && heading < global, "{start}");

    let up = help(&["up"]);
    for flag in ["--server", "--output", "--as", "--review-server"] {
        assert!(!up.contains(flag), "{flag} does not apply to up: {up}");
    }
    assert!(up.contains("--listen"), "{up}");
}

#[test]
fn acting_without_a_name_warns_that_it_is_recorded_as_anonymous() {
    let mesh = Mesh::start();
    let run = common::start_backtrack(&mesh, &[]);
    let context = eventually("the context task", || open_task(&mesh, &run, "context"));
    let ran = mesh
        .command(&[
            "input",
            "submit",
            &context,
            &backtrack("inputs/context.json"),
        ])
        .env_remove("ORCHESTRA_USER")
        .env_remove("USER")
        .spawn()
        .expect("submit");
    let ran = finish(ran, Duration::from_secs(60)).ok();
    assert!(ran.stdout.contains("as anonymous"), "{ran:#?}");
    assert_eq!(
        ran.stderr
            .lines()
            .filter(|l| l.starts_with("warning: ") && l.contains("anonymous"))
            .count(),
        1,
        "warned once: {ran:#?}"
    );
}

/// A TLS front for the mesh: accepts TLS (HTTP/2 by ALPN) on its own port
/// with a self-signed certificate for 127.0.0.1, and passes the bytes on to
/// the mesh's plaintext port. Returns its port and the certificate's PEM.
fn tls_front(mesh: &Mesh) -> (u16, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("certificate params");
    let certificate = params.self_signed(&key).expect("self-signed");
    let pem = certificate.pem();
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(
        std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()),
    )
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![certificate.der().clone()],
        tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let backend = mesh.url.trim_start_matches("http://").to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let backend = backend.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    if let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
            }
        });
    });
    (port, pem)
}

#[test]
fn https_reaches_a_tls_server_that_the_client_trusts() {
    let mesh = Mesh::start();
    let (port, pem) = tls_front(&mesh);
    let dir = tempfile::tempdir().expect("dir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).expect("write");
    let https = format!("https://127.0.0.1:{port}");
    let with_roots = |roots: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .args(["--server", &https, "template", "list"])
            .env("SSL_CERT_FILE", roots)
            .output()
            .expect("run")
    };
    let trusted = with_roots(&ca);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );

    // Trusting other roots, the same server is refused, never used in plaintext.
    let other = dir.path().join("other.pem");
    let other_key = rcgen::KeyPair::generate().expect("key");
    let other_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .and_then(|p| p.self_signed(&other_key))
        .expect("other");
    std::fs::write(&other, other_cert.pem()).expect("write");
    let untrusted = with_roots(&other);
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot open a TLS connection to {https}")),
        "{stderr}"
    );
}
