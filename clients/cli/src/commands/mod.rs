//! One module per command group; [`dispatch`] routes a parsed command line
//! to its handler.
//!
//! - [`up`]: the whole mesh in this process.
//! - [`template`]: apply, validate, clone, list, show.
//! - [`run`]: start, show, list, cancel, continue.
//! - [`watch`]: following a run live, with reconnection, and its event log.
//! - [`inbox`]: the human tasks waiting, once or live.
//! - [`input`]: submitting forms.
//! - [`review`]: showing and deciding reviews.
//! - [`task`]: claiming a task of either kind.
//! - [`artifact`]: listing, reading and comparing artifacts.

pub mod artifact;
pub mod inbox;
pub mod input;
pub mod review;
pub mod run;
pub mod task;
pub mod template;
pub mod up;
pub mod watch;

use std::process::ExitCode;

use crate::cli::{Cli, Command, InputCommand, RunCommand, TaskCommand};
use crate::connect::Connection;
use crate::error::Result;
use crate::ids;

/// Runs the command `cli` names.
pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
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
    let c = &connection;
    match &cli.command {
        Command::Up(_) => {}
        Command::Template(command) => template::template(c, format, command).await?,
        Command::Run(RunCommand::Start(args)) => return run::start(c, format, args).await,
        Command::Run(RunCommand::Watch(selector)) => {
            let run = ids::run(c, selector).await?;
            return watch::watch(c, format, &run).await;
        }
        Command::Run(RunCommand::Events { run, follow }) => {
            let run = ids::run(c, run).await?;
            watch::events(c, format, &run, *follow).await?;
        }
        Command::Run(RunCommand::Show(selector)) => {
            run::show(c, format, &ids::run(c, selector).await?).await?;
        }
        Command::Run(RunCommand::List {
            statuses,
            template,
            limit,
        }) => run::list(c, format, statuses, template.clone(), *limit).await?,
        Command::Run(RunCommand::Cancel { run, reason }) => {
            run::cancel(c, format, &ids::run(c, run).await?, reason).await?;
        }
        Command::Run(RunCommand::Continue {
            first,
            phase,
            latest,
        }) => run::continue_phase(c, format, first, phase.as_deref(), *latest).await?,
        Command::Inbox(args) => inbox::inbox(c, format, args).await?,
        Command::Input(InputCommand::Submit { task, file }) => {
            input::submit(c, format, task, file, &cli.person()).await?;
        }
        Command::Review(command) => review::review(c, format, command, &cli).await?,
        Command::Task(TaskCommand::Claim { task }) => {
            task::claim(c, format, task, &cli.person()).await?;
        }
        Command::Artifact(command) => artifact::artifact(c, format, command).await?,
    }
    Ok(ExitCode::SUCCESS)
}
