//! The `orchestra` binary: reads the command line, runs it, reports errors.

use std::process::ExitCode;

use clap::Parser;
use orchestra_cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let server = cli.server.clone();
    match orchestra_cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{}", error.report(&server));
            ExitCode::FAILURE
        }
    }
}
