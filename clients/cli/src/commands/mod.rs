//! One module per command group; [`dispatch`] routes a parsed command line
//! to its handler.
//!
//! - [`up`]: the whole mesh in this process.
//! - [`template`]: apply, list, show.
//! - [`run`]: start, show, list.
//! - [`watch`]: following a run live, with reconnection.
//! - [`inbox`]: the human tasks waiting.
//! - [`input`]: submitting forms.
//! - [`review`]: showing and deciding reviews.
//! - [`artifact`]: reading artifacts.

pub mod artifact;
pub mod inbox;
pub mod input;
pub mod review;
pub mod run;
pub mod template;
pub mod up;
pub mod watch;

use std::process::ExitCode;

use crate::cli::{Cli, Command, InputCommand, RunCommand};
use crate::connect::Connection;
use crate::error::Result;

/// Runs the command `cli` names.
pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let person = cli.person();
    let format = cli.output;
    if let Command::Up(args) = &cli.command {
        up::up(args).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let connection = Connection::split(
        &cli.server,
        cli.review_server.as_deref(),
        cli.artifact_server.as_deref(),
    )?;
    match cli.command {
        Command::Up(_) => {}
        Command::Template(command) => template::template(&connection, format, command).await?,
        Command::Run(RunCommand::Start(args)) => {
            return run::start(&connection, format, args).await;
        }
        Command::Run(RunCommand::Watch { run }) => {
            return watch::watch(&connection, format, &run).await;
        }
        Command::Run(RunCommand::Show { run }) => run::show(&connection, format, &run).await?,
        Command::Run(RunCommand::List {
            statuses,
            template,
            limit,
        }) => run::list(&connection, format, &statuses, template, limit).await?,
        Command::Inbox(args) => inbox::inbox(&connection, format, args).await?,
        Command::Input(InputCommand::Submit { task, file }) => {
            input::submit(&connection, format, &task, &file, &person).await?;
        }
        Command::Review(command) => review::review(&connection, format, command, &person).await?,
        Command::Artifact(command) => artifact::artifact(&connection, format, command).await?,
    }
    Ok(ExitCode::SUCCESS)
}
