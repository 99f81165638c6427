//! `orchestra up` as its own process, for tests that kill it with SIGKILL
//! and start it again on the same data.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

/// A running `orchestra up`; dropping it kills the process (so a failed
/// test leaves none behind).
pub struct Up {
    child: Child,
}

impl Up {
    /// Starts `orchestra up` on `addr` with its data in `data_dir`, and its
    /// state in Postgres when `database_url` is given.
    pub fn start(addr: SocketAddr, data_dir: &Path, database_url: Option<&str>) -> Up {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orchestra"));
        command
            .arg("up")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("ORCHESTRA_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(url) = database_url {
            command.arg("--database-url").arg(url);
        }
        Up {
            child: command.spawn().expect("spawn orchestra up"),
        }
    }

    /// Kills the process with SIGKILL, as a crash or an OOM kill would, and
    /// reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // Only the child this test started, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A channel to `addr` once something answers there.
pub async fn connect(addr: SocketAddr) -> Channel {
    let started = Instant::now();
    loop {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect()
            .await
        {
            return channel;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "orchestra up does not serve"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback address no one listens on now.
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}
