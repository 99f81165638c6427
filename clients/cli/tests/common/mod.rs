//! The test harness: the whole mesh on 127.0.0.1:0 with a temporary data
//! directory, in a thread of its own, and the real `orchestra` binary run
//! against it.

#![allow(dead_code)]

pub mod process;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running mesh; dropping it stops the server.
pub struct Mesh {
    /// The server's URL.
    pub url: String,
    addr: SocketAddr,
    server: Option<Server>,
    data: tempfile::TempDir,
}

/// The server's thread and the switch that stops it.
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

impl Server {
    /// Serves on `addr` (port 0 for any) from `data_dir`, in a thread with
    /// its own runtime; returns once the port is bound.
    fn spawn(addr: SocketAddr, data_dir: PathBuf) -> (Server, SocketAddr) {
        let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send");
                let options = orchestra_standalone::Options::new(data_dir);
                let serve = orchestra_standalone::serve(options, listener, std::future::pending());
                // Stopping is abrupt, like a crash: open streams drop mid-run.
                tokio::select! {
                    served = serve => served.expect("the mesh serves"),
                    _ = stopped => {}
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the mesh binds");
        (Server { stop, thread }, addr)
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

impl Mesh {
    /// Starts every service on a fresh port and data directory.
    pub fn start() -> Mesh {
        let data = tempfile::tempdir().expect("data dir");
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let (server, addr) = Server::spawn(any, data.path().to_owned());
        Mesh {
            url: format!("http://{addr}"),
            addr,
            server: Some(server),
            data,
        }
    }

    /// Kills the server and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Kills the server; its port refuses connections until [`Mesh::start_again`].
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn start_again(&mut self) {
        let (server, _) = Server::spawn(self.addr, self.data.path().to_owned());
        self.server = Some(server);
    }

    /// A command running the `orchestra` binary against this mesh.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orchestra"));
        command
            .arg("--server")
            .arg(&self.url)
            .args(args)
            .env("ORCHESTRA_USER", "tester")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs `orchestra ARGS` to the end (at most 60 s).
    pub fn run(&self, args: &[&str]) -> Ran {
        finish(
            self.command(args).spawn().expect("spawn orchestra"),
            Duration::from_secs(60),
        )
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

/// What one run of the binary printed and how it exited.
#[derive(Debug)]
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Panics with everything printed unless the command succeeded.
    pub fn ok(self) -> Ran {
        assert_eq!(self.code, Some(0), "the command failed: {self:#?}");
        self
    }
}

/// Waits for a child for at most `limit`, killing it past that.
pub fn finish(child: Child, limit: Duration) -> Ran {
    let (tx, rx) = mpsc::channel::<Output>();
    let id = child.id();
    std::thread::spawn(move || {
        if let Ok(output) = child.wait_with_output() {
            let _ = tx.send(output);
        }
    });
    match rx.recv_timeout(limit) {
        Ok(output) => Ran {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        },
        Err(_) => {
            // Only the child this test started, by its id.
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("orchestra (pid {id}) did not finish within {limit:?}");
        }
    }
}

/// Polls `check` until it returns `Some`, for at most 30 s.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Backtrack example's files.
pub fn backtrack(file: &str) -> String {
    repo_root()
        .join("examples/backtrack")
        .join(file)
        .to_string_lossy()
        .into_owned()
}

/// The JSON a command printed (one document).
pub fn json(ran: &Ran) -> serde_json::Value {
    serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {ran:#?}"))
}

/// The open task of `phase` in `run`, from `inbox --output json`.
pub fn open_task(mesh: &Mesh, run: &str, phase: &str) -> Option<String> {
    let inbox = mesh.run(&["--output", "json", "inbox", "--run", run]);
    if inbox.code != Some(0) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(&inbox.stdout).ok()?;
    value["tasks"].as_array()?.iter().find_map(|task| {
        (task["key"]["phaseId"] == phase)
            .then(|| task["id"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// Applies the Backtrack template and starts a run of it; returns its id.
pub fn start_backtrack(mesh: &Mesh, extra: &[&str]) -> String {
    mesh.run(&["template", "apply", &backtrack("template.yaml")])
        .ok();
    let mut args = vec!["run", "start", "backtrack-ui-patch", "--seed", "5"];
    args.extend_from_slice(extra);
    mesh.run(&args).ok().stdout.trim().to_owned()
}

/// Starts a Backtrack run and fills in its context; returns the run and
/// its open review task.
pub fn backtrack_to_review(mesh: &Mesh) -> (String, String) {
    let run = start_backtrack(mesh, &[]);
    let context = eventually("the context task", || open_task(mesh, &run, "context"));
    mesh.run(&[
        "input",
        "submit",
        &context,
        &backtrack("inputs/context.json"),
    ])
    .ok();
    let review = eventually("the review task", || open_task(mesh, &run, "review"));
    (run, review)
}

/// A run's status as `run show --output json` gives it (`RUN_STATUS_…`).
pub fn run_status(mesh: &Mesh, run: &str) -> String {
    let shown = mesh.run(&["--output", "json", "run", "show", run]).ok();
    json(&shown)["run"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the run's status is `status` (`RUN_STATUS_…`).
pub fn wait_for_status(mesh: &Mesh, run: &str, status: &str) {
    eventually(status, || (run_status(mesh, run) == status).then_some(()));
}
