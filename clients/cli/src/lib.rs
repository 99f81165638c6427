//! The `orchestra` command: every step a person takes with Orchestra, from
//! `orchestra up` to approving a review, over the public gRPC contracts.
//!
//! - [`cli`]: the command line as clap reads it.
//! - [`connect`]: the channel to the server and a client per service.
//! - [`commands`]: one module per command group; each handler prints its
//!   result as a table or as JSON.
//! - [`output`]: tables, JSON, and short forms of names, times and sizes.
//! - [`ids`]: ids by unique prefix, and `--latest`.
//! - [`error`]: the one error type and how it is reported.
//! - [`upload`]: run inputs, inline when small, streamed to the artifact
//!   store and passed by reference when large.

pub mod cli;
pub mod commands;
pub mod connect;
pub mod error;
pub mod ids;
pub mod output;
pub mod upload;

use std::process::ExitCode;

pub use crate::cli::Cli;
pub use crate::error::{Error, Result};

/// Runs one command line; the exit code says whether it succeeded (and for
/// `run watch`, whether the run completed).
pub async fn run(cli: Cli) -> Result<ExitCode> {
    commands::dispatch(cli).await
}
