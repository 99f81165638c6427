//! The mesh a benchmark runs against: started here as real processes from
//! the built binaries (or one already running), with what the idle and
//! memory figures read about those processes and their database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use orchestra_db::testing::TestDb;
use orchestra_proto::v1::ListTemplatesRequest;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use tokio::process::{Child, Command};

use crate::cli::{Args, Configuration};
use crate::client;
use crate::error::{Error, Result};

/// How long a started mesh may take to answer its first call.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A started (or targeted) mesh.
pub struct Mesh {
    label: String,
    url: String,
    processes: Vec<Child>,
    /// The process that serves `WatchRun` (the scheduler), for memory per stream.
    scheduler_pid: Option<u32>,
    started_in: Duration,
    database: Option<TestDb>,
    _data_dir: Option<tempfile::TempDir>,
}

impl Mesh {
    /// Starts the configuration and waits until it answers.
    pub async fn start(configuration: &Configuration, args: &Args) -> Result<Mesh> {
        match configuration {
            Configuration::SqliteUp => start_up(args).await,
            Configuration::PostgresSplit => start_split(args).await,
            Configuration::Running(url) => {
                let began = Instant::now();
                wait_serving(url, "the mesh at --server").await?;
                Ok(Mesh {
                    label: "running".into(),
                    url: url.clone(),
                    processes: Vec::new(),
                    scheduler_pid: None,
                    started_in: began.elapsed(),
                    database: None,
                    _data_dir: None,
                })
            }
        }
    }

    /// The configuration's name in the report.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Where the scheduler (and every other service, through it or the
    /// shared port) is reached.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// From spawning the processes to the first answered call.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The resident memory of every process of the mesh, in KiB.
    pub fn resident_kib(&self) -> Option<u64> {
        self.pids().map(|pids| {
            pids.iter()
                .filter_map(|pid| proc_status_kib(*pid, "VmRSS:"))
                .sum()
        })
    }

    /// The resident memory of the process serving `WatchRun`, in KiB.
    pub fn scheduler_resident_kib(&self) -> Option<u64> {
        self.scheduler_pid
            .and_then(|pid| proc_status_kib(pid, "VmRSS:"))
    }

    /// CPU time used so far by every process of the mesh.
    pub fn cpu_time(&self) -> Option<Duration> {
        let pids = self.pids()?;
        let ticks: u64 = pids.iter().filter_map(|pid| proc_cpu_ticks(*pid)).sum();
        // Linux reports in USER_HZ, which is 100 on every platform it runs on.
        Some(Duration::from_millis(ticks * 10))
    }

    /// Transactions Postgres has committed in the mesh's database so far
    /// (`pg_stat_database.xact_commit`, which counts reads too); `None` on
    /// SQLite or a mesh started elsewhere.
    pub async fn committed_transactions(&self) -> Result<Option<i64>> {
        let Some(database) = &self.database else {
            return Ok(None);
        };
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            commits: i64,
        }
        // Read from the server's admin database, so that the reads (and
        // the connection's own set-up) are not counted as the mesh's.
        let name = database.url().rsplit('/').next().unwrap_or_default();
        let mut conn = AsyncPgConnection::establish(&orchestra_db::testing::postgres_admin_url())
            .await
            .map_err(|e| Error::Postgres(e.to_string()))?;
        // The statistics collector publishes counters when a backend's
        // transaction ends; clearing the snapshot makes this read current.
        diesel::sql_query("SELECT pg_stat_clear_snapshot()")
            .execute(&mut conn)
            .await
            .map_err(|e| Error::Postgres(e.to_string()))?;
        let count: Count = diesel::sql_query(
            "SELECT xact_commit AS commits FROM pg_stat_database WHERE datname = $1",
        )
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result(&mut conn)
        .await
        .map_err(|e| Error::Postgres(e.to_string()))?;
        Ok(Some(count.commits))
    }

    /// Stops every process (SIGKILL: nothing is kept after a benchmark) and
    /// drops the database.
    pub async fn stop(mut self) {
        // The executor first, so it does not log its scheduler's death.
        for child in self.processes.iter_mut().rev() {
            let _ = child.kill().await;
        }
    }

    fn pids(&self) -> Option<Vec<u32>> {
        if self.processes.is_empty() {
            return None;
        }
        Some(self.processes.iter().filter_map(Child::id).collect())
    }
}

async fn start_up(args: &Args) -> Result<Mesh> {
    let bin_dir = bin_dir(args)?;
    let data_dir = tempfile::tempdir()?;
    let addr = free_addr()?;
    let began = Instant::now();
    let child = spawn(
        &binary(&bin_dir, "orchestra")?,
        "orchestra up",
        &[
            "up",
            "--listen",
            &addr.to_string(),
            "--data-dir",
            &data_dir.path().display().to_string(),
        ],
        &[],
    )?;
    let pid = child.id();
    let url = format!("http://{addr}");
    let mut mesh = Mesh {
        label: "sqlite-up".into(),
        url,
        processes: vec![child],
        scheduler_pid: pid,
        started_in: Duration::ZERO,
        database: None,
        _data_dir: Some(data_dir),
    };
    wait_serving(&mesh.url, "orchestra up").await?;
    mesh.started_in = began.elapsed();
    Ok(mesh)
}

async fn start_split(args: &Args) -> Result<Mesh> {
    let bin_dir = bin_dir(args)?;
    let data_dir = tempfile::tempdir()?;
    let database = TestDb::postgres().await;
    let db_url = database.url().to_owned();
    let [scheduler, artifacts, review, executor] =
        [free_addr()?, free_addr()?, free_addr()?, free_addr()?];
    let url = |addr: SocketAddr| format!("http://{addr}");
    let blob_dir = data_dir.path().join("blobs").display().to_string();
    let began = Instant::now();
    let mut processes = Vec::new();
    processes.push(spawn(
        &binary(&bin_dir, "orchestra-artifact-store")?,
        "the artifact store",
        &[],
        &[
            ("ORCHESTRA_ARTIFACT_STORE_DATABASE_URL", db_url.clone()),
            (
                "ORCHESTRA_ARTIFACT_STORE_LISTEN_ADDR",
                artifacts.to_string(),
            ),
            ("ORCHESTRA_ARTIFACT_STORE_BLOB_DIR", blob_dir),
        ],
    )?);
    processes.push(spawn(
        &binary(&bin_dir, "orchestra-scheduler")?,
        "the scheduler",
        &[],
        &[
            ("ORCHESTRA_SCHEDULER_DATABASE_URL", db_url.clone()),
            ("ORCHESTRA_SCHEDULER_LISTEN_ADDR", scheduler.to_string()),
            ("ORCHESTRA_SCHEDULER_REVIEW_URL", url(review)),
            ("ORCHESTRA_SCHEDULER_ARTIFACT_STORE_URL", url(artifacts)),
        ],
    )?);
    let scheduler_pid = processes[1].id();
    processes.push(spawn(
        &binary(&bin_dir, "orchestra-review")?,
        "the review service",
        &[],
        &[
            ("ORCHESTRA_REVIEW_DATABASE_URL", db_url.clone()),
            ("ORCHESTRA_REVIEW_LISTEN_ADDR", review.to_string()),
            ("ORCHESTRA_REVIEW_SCHEDULER_URL", url(scheduler)),
            ("ORCHESTRA_REVIEW_ARTIFACT_STORE_URL", url(artifacts)),
        ],
    )?);
    processes.push(spawn(
        &binary(&bin_dir, "orchestra-phase-executor")?,
        "the phase executor",
        &[],
        &[
            ("ORCHESTRA_EXECUTOR_SCHEDULER_URL", url(scheduler)),
            ("ORCHESTRA_EXECUTOR_ARTIFACT_STORE_URL", url(artifacts)),
            ("ORCHESTRA_EXECUTOR_LISTEN_ADDR", executor.to_string()),
        ],
    )?);
    let mut mesh = Mesh {
        label: "postgres-split".into(),
        url: url(scheduler),
        processes,
        scheduler_pid,
        started_in: Duration::ZERO,
        database: Some(database),
        _data_dir: Some(data_dir),
    };
    wait_serving(&mesh.url, "the scheduler").await?;
    mesh.started_in = began.elapsed();
    Ok(mesh)
}

/// Polls until the template service answers: the first call a user makes.
async fn wait_serving(url: &str, what: &str) -> Result<()> {
    let began = Instant::now();
    while began.elapsed() < START_LIMIT {
        if let Ok(channel) = client::channel(url).await {
            let mut templates = TemplateServiceClient::new(channel);
            if templates
                .list_templates(ListTemplatesRequest::default())
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(Error::NotServing {
        what: what.to_owned(),
        after: START_LIMIT,
    })
}

fn bin_dir(args: &Args) -> Result<PathBuf> {
    if let Some(dir) = &args.bin_dir {
        return Ok(dir.clone());
    }
    let exe = std::env::current_exe()?;
    Ok(exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

fn binary(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::MissingBinary {
            binary: name.to_owned(),
            dir: dir.display().to_string(),
        })
    }
}

fn spawn(path: &Path, what: &str, args: &[&str], env: &[(&str, String)]) -> Result<Child> {
    Command::new(path)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        // Services log at info by default; the benchmark's output is its figures.
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| Error::Spawn {
            what: what.to_owned(),
            source,
        })
}

/// A loopback port nobody listens on now.
fn free_addr() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at `)`;
    // utime and stime are the 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
