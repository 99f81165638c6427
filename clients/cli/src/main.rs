//! The `orchestra` binary: reads the command line, runs it, reports errors.

use std::process::ExitCode;

use orchestra_cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::from_env();
    let server = orchestra_cli::connect::server_url(&cli.server).unwrap_or(cli.server.clone());
    match orchestra_cli::run(cli).await {
        Ok(code) => code,
        // A reader that stopped reading (`| head`) got what it wanted.
        Err(error) if error.is_closed_output() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", error.report(&server));
            ExitCode::from(error.exit_status())
        }
    }
}
