//! The benchmark's flags. The defaults are the full benchmark of
//! `docs/benchmarks.md`; `--smoke` shrinks every workload so the test
//! command can run it in seconds.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Orchestra's benchmark: starts the mesh, runs the workloads through real
/// gRPC and prints one line per figure (median, min and max over the
/// repetitions after one warm-up).
#[derive(Debug, Clone, Parser)]
#[command(name = "orchestra-bench", version)]
pub struct Args {
    /// Which configurations to start; each runs every workload.
    #[arg(long, value_enum, default_value = "all")]
    pub config: ConfigChoice,
    /// Benchmark a mesh that is already running at this URL instead of
    /// starting one (its Postgres counters are not read).
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Workloads to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Workload>,
    /// Repetitions per figure, after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Small sizes and one repetition: checks the benchmark works, measures little.
    #[arg(long)]
    pub smoke: bool,
    /// Where the `orchestra` and `orchestra-*` binaries are (default: beside this one).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Longest one repetition of a workload may take, in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Phases in the W3 chain.
    #[arg(long, default_value_t = 100)]
    pub chain: usize,
    /// Diamonds in W1.
    #[arg(long, default_value_t = 1000)]
    pub diamonds: usize,
    /// Diamonds in flight at once in W1 (comma-separated for a curve).
    #[arg(long, value_delimiter = ',', default_value = "50")]
    pub in_flight: Vec<usize>,
    /// Children of the W2 fan-out (comma-separated for a curve).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub children: Vec<usize>,
    /// `WatchRun` streams on one run (comma-separated for a curve).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub watchers: Vec<usize>,
    /// How long the idle figures are measured, in seconds.
    #[arg(long, default_value_t = 10)]
    pub idle_secs: u64,
}

/// The `--config` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConfigChoice {
    /// `orchestra up` on SQLite, every service in one process.
    SqliteUp,
    /// The four services as separate processes on one Postgres database.
    PostgresSplit,
    /// Both, one after the other.
    All,
}

/// One configuration the workloads run in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Configuration {
    /// `orchestra up` on SQLite in a temporary data directory.
    SqliteUp,
    /// Scheduler, artifact store, review and executor as four processes on
    /// a fresh Postgres database.
    PostgresSplit,
    /// A mesh someone else started.
    Running(String),
}

/// The workloads, as `--only` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// W3: a chain of no-op phases, per hop; also dispatch latency idle.
    Chain,
    /// W1s: one diamond alone, StartRun to the completed event.
    Diamond,
    /// W1: many diamonds with a bound on those in flight; also dispatch under load.
    Diamonds,
    /// W2: one root, many children, one join.
    Fanout,
    /// Many `WatchRun` streams on one run: commit-to-receipt latency and memory.
    Watchers,
    /// Nothing happening: database transactions, CPU and memory.
    Idle,
}

impl Args {
    /// The configurations to run, in order.
    pub fn configurations(&self) -> Vec<Configuration> {
        if let Some(url) = &self.server {
            return vec![Configuration::Running(url.clone())];
        }
        match self.config {
            ConfigChoice::SqliteUp => vec![Configuration::SqliteUp],
            ConfigChoice::PostgresSplit => vec![Configuration::PostgresSplit],
            ConfigChoice::All => vec![Configuration::SqliteUp, Configuration::PostgresSplit],
        }
    }

    /// Whether a workload was chosen.
    pub fn runs(&self, workload: Workload) -> bool {
        self.only.is_empty() || self.only.contains(&workload)
    }

    /// Repetitions after the warm-up.
    pub fn repetitions(&self) -> usize {
        if self.smoke { 1 } else { self.reps.max(1) }
    }

    /// The limit on one repetition.
    pub fn time_limit(&self) -> Duration {
        Duration::from_secs(self.timeout.max(1))
    }

    /// Phases in the chain.
    pub fn chain_len(&self) -> usize {
        if self.smoke { 5 } else { self.chain.max(1) }
    }

    /// Diamonds in W1.
    pub fn diamond_count(&self) -> usize {
        if self.smoke { 20 } else { self.diamonds.max(1) }
    }

    /// Diamonds in flight, one figure each.
    pub fn in_flight_levels(&self) -> Vec<usize> {
        if self.smoke {
            vec![5]
        } else {
            positive(&self.in_flight)
        }
    }

    /// Fan-out widths, one figure each.
    pub fn fanout_widths(&self) -> Vec<usize> {
        if self.smoke {
            vec![20]
        } else {
            positive(&self.children)
        }
    }

    /// Watcher counts, one figure each.
    pub fn watcher_counts(&self) -> Vec<usize> {
        if self.smoke {
            vec![20]
        } else {
            positive(&self.watchers)
        }
    }

    /// How long idle is measured.
    pub fn idle_window(&self) -> Duration {
        Duration::from_secs(if self.smoke { 1 } else { self.idle_secs.max(1) })
    }
}

fn positive(values: &[usize]) -> Vec<usize> {
    values.iter().copied().filter(|v| *v > 0).collect()
}
