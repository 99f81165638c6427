//! The benchmark: it starts the mesh in each configuration (or targets a
//! running one), runs each workload through real gRPC as a client would, and
//! prints one line per figure — median, min and max over the repetitions
//! after a warm-up — with the configuration, the commit and the date.
//!
//! - `cli`: the flags.
//! - `mesh`: starting `orchestra up` on SQLite, or the four services as
//!   separate processes on a fresh Postgres database, and reading their
//!   processes' memory and CPU.
//! - `client`: the gRPC calls every workload makes (apply, start, watch).
//! - `templates`: the generated templates (chains, diamonds, fan-outs).
//! - `workloads/`: one module per workload.
//! - `stats` and `report`: figures and how they are printed.

mod cli;
mod client;
mod error;
mod mesh;
mod report;
mod stats;
mod templates;
mod workloads;

pub use cli::{Args, Configuration};
pub use error::{Error, Result};

use crate::mesh::Mesh;
use crate::report::Report;

/// Runs every chosen workload in every chosen configuration and prints the
/// figures as they come.
pub async fn run(args: Args) -> Result<()> {
    let report = Report::new(&args);
    report.header();
    for configuration in args.configurations() {
        let mesh = Mesh::start(&configuration, &args).await?;
        report.figure(
            "start to serving",
            mesh.label(),
            &stats::Figure::single(mesh.started_in().as_secs_f64() * 1e3),
            "ms",
        );
        let result = workloads::run_all(&mesh, &args, &report).await;
        mesh.stop().await;
        result?;
    }
    Ok(())
}
