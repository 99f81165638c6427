//! How figures are printed: a header saying what was measured where, then
//! one line per figure, flushed as soon as it is known so a long benchmark
//! shows its progress.

use std::io::Write;
use std::process::Command;

use crate::cli::Args;
use crate::stats::Figure;

/// The printer of one benchmark invocation.
pub struct Report {
    commit: String,
    date: String,
    /// Where the binaries came from when not beside the benchmark.
    bin_dir: Option<String>,
}

impl Report {
    /// Reads the commit (from `git`, when run in a checkout) and the date.
    pub fn new(args: &Args) -> Report {
        let now = orchestra_kit::time::now_micros();
        let date = orchestra_kit::time::timestamp(now)
            .map(|t| orchestra_kit::time::rfc3339(&t))
            .unwrap_or_default();
        // To the second: `2026-12-03T13:36:08Z`.
        let date = match date.get(..19) {
            Some(seconds) => format!("{seconds}Z"),
            None => date,
        };
        Report {
            commit: commit(),
            date,
            bin_dir: args.bin_dir.as_ref().map(|dir| dir.display().to_string()),
        }
    }

    /// The lines before the figures.
    pub fn header(&self) {
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let profile = if cfg!(debug_assertions) {
            "debug build: figures are not comparable with release"
        } else {
            "release build"
        };
        // The commit is the checkout's; binaries from elsewhere may differ.
        let commit = match &self.bin_dir {
            Some(dir) => format!("checkout {}, binaries from {dir}", self.commit),
            None => format!("commit {}", self.commit),
        };
        println!(
            "# orchestra-bench · {commit} · {} · {cores} cores · {profile}",
            self.date
        );
        println!(
            "# {:<50} {:<15} {:>10} {:>10} {:>10}  unit",
            "figure", "config", "median", "min", "max"
        );
        flush();
    }

    /// One figure line.
    pub fn figure(&self, name: &str, config: &str, figure: &Figure, unit: &str) {
        println!(
            "{:<52} {:<15} {:>10} {:>10} {:>10}  {unit}",
            name,
            config,
            format_value(figure.median),
            format_value(figure.min),
            format_value(figure.max),
        );
        flush();
    }

    /// A figure that could not be measured, and why.
    pub fn missing(&self, name: &str, config: &str, why: &str) {
        println!("{name:<52} {config:<15} not measured: {why}");
        flush();
    }
}

fn flush() {
    let _ = std::io::stdout().flush();
}

/// Three significant figures at least, never scientific notation.
fn format_value(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// The checkout's short commit, with `+dirty` when it has changes.
fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|status| !status.is_empty());
            if dirty { format!("{hash}+dirty") } else { hash }
        }
        None => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_three_figures() {
        assert_eq!(format_value(0.4567), "0.46");
        assert_eq!(format_value(56.52), "56.5");
        assert_eq!(format_value(1234.4), "1234");
    }
}
