//! The command line, as clap reads it: global flags and one subcommand per
//! step a person takes. Each subcommand's handler lives in `commands::*`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Orchestra: DAG workflows of LLM calls, functions and people.
///
/// Ids (runs, tasks, artifacts) may be given by any unique prefix, and
/// `--latest` stands for the newest run wherever a RUN is taken.
#[derive(Debug, Parser)]
#[command(name = "orchestra", version, about)]
pub struct Cli {
    /// The Orchestra server to talk to (`http://` is added when no scheme
    /// is given; `https://` uses TLS, trusting the system's roots or
    /// $SSL_CERT_FILE).
    #[arg(
        long,
        global = true,
        env = "ORCHESTRA_SERVER",
        hide_env_values = true,
        default_value = "http://127.0.0.1:50051",
        help_heading = GLOBAL
    )]
    pub server: String,
    /// The review service, when it runs apart from the scheduler (default:
    /// `--server`, where `orchestra up` serves every service).
    #[arg(
        long,
        global = true,
        env = "ORCHESTRA_REVIEW_SERVER",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    pub review_server: Option<String>,
    /// The artifact store, when it runs apart from the scheduler (default:
    /// `--server`).
    #[arg(
        long,
        global = true,
        env = "ORCHESTRA_ARTIFACT_SERVER",
        hide_env_values = true,
        help_heading = GLOBAL
    )]
    pub artifact_server: Option<String>,
    /// How results are printed: tables for people, JSON for programs (one
    /// document per result; one compact object per line for streams).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table, help_heading = GLOBAL)]
    pub output: OutputFormat,
    /// Who acts on human tasks (defaults to $USER).
    #[arg(
        long = "as",
        global = true,
        env = "ORCHESTRA_USER",
        hide_env_values = true,
        value_name = "PERSON",
        help_heading = GLOBAL
    )]
    pub person: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The heading global flags are listed under, apart from each command's own.
const GLOBAL: &str = "Global options";

/// The global flags that mean nothing to `orchestra up`, hidden from its help.
const CLIENT_FLAGS: [&str; 5] = [
    "server",
    "review_server",
    "artifact_server",
    "output",
    "person",
];

impl Cli {
    /// The command line's definition as clap renders it, with the client
    /// flags hidden from `up`'s help: `up` gets hidden copies of them, and
    /// clap copies a global flag into a subcommand only where it has none.
    pub fn definition() -> clap::Command {
        let command = <Cli as clap::CommandFactory>::command();
        let hidden: Vec<clap::Arg> = command
            .get_arguments()
            .filter(|arg| CLIENT_FLAGS.contains(&arg.get_id().as_str()))
            .map(|arg| arg.clone().global(false).hide(true))
            .collect();
        command.mut_subcommand("up", |up| up.args(hidden))
    }

    /// Reads the process's command line (exiting with clap's usage message
    /// when it is wrong).
    pub fn from_env() -> Cli {
        let matches = Cli::definition().get_matches();
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }

    /// The person acting: `--as`, else `$USER`, else "anonymous" (with a
    /// warning, since every action is then recorded as anonymous).
    pub fn person(&self) -> String {
        if let Some(person) = self
            .person
            .clone()
            .filter(|p| !p.is_empty())
            .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        {
            return person;
        }
        eprintln!(
            "warning: neither --as, $ORCHESTRA_USER nor $USER is set, so this is recorded as anonymous"
        );
        "anonymous".to_owned()
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables and lines for people.
    Table,
    /// The proto3 JSON mapping of each result.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs every Orchestra service on one port until Ctrl-C.
    Up(UpArgs),
    /// Stores, lists and shows workflow templates.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Starts, follows and inspects runs.
    #[command(subcommand)]
    Run(RunCommand),
    /// Lists the human tasks waiting for someone.
    Inbox(InboxArgs),
    /// Fills in human_input forms.
    #[command(subcommand)]
    Input(InputCommand),
    /// Shows and decides review tasks.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// Acts on human tasks of either kind.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Lists, reads and compares artifacts.
    #[command(subcommand)]
    Artifact(ArtifactCommand),
}

/// Which run a command is about: RUN (a whole id or a unique prefix), or
/// `--latest`.
#[derive(Debug, Clone, Args)]
pub struct RunSelector {
    /// The run's id, or any unique prefix of it.
    #[arg(value_name = "RUN", required_unless_present = "latest")]
    pub run: Option<String>,
    /// The newest run, instead of naming one.
    #[arg(long, conflicts_with = "run")]
    pub latest: bool,
}

/// Arguments of `orchestra up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where SQLite files and blobs live.
    #[arg(long, default_value = ".orchestra/data")]
    pub data_dir: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// A Postgres URL to keep every service's state in, instead of SQLite.
    #[arg(long, env = "ORCHESTRA_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// How long an executor's lease lasts without a heartbeat, in seconds.
    #[arg(long, value_name = "SECS")]
    pub lease_ttl: Option<u64>,
}

/// `orchestra template …`.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Stores a template file (with the schemas and prompts it refers to) as
    /// a new template or its next version.
    Apply {
        /// The template file (YAML or JSON).
        file: PathBuf,
    },
    /// Lists the latest version of every template.
    List,
    /// Shows one template version and its phases.
    Show {
        /// The template's name.
        name: String,
        /// The version (the latest when absent).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        version: Option<i32>,
    },
    /// Checks a template file (and the files it refers to) on the server
    /// without storing it; exits 1 when it has faults.
    Validate {
        /// The template file (YAML or JSON).
        file: PathBuf,
    },
    /// Copies a template version under a new name, as its version 1.
    Clone {
        /// The template to copy.
        name: String,
        /// The name of the copy.
        new_name: String,
        /// The version to copy (the latest when absent).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        version: Option<i32>,
    },
}

/// `orchestra run …`.
#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Starts a run of a template.
    Start(StartArgs),
    /// Follows a run live until it ends.
    Watch(RunSelector),
    /// Shows a run and its phases, with how long each took.
    Show(RunSelector),
    /// The run's event log, with times and how long each phase took.
    Events {
        /// The run.
        #[command(flatten)]
        run: RunSelector,
        /// Keeps printing new events until the run ends.
        #[arg(long)]
        follow: bool,
    },
    /// Cancels every phase of a run that has not finished.
    Cancel {
        /// The run.
        #[command(flatten)]
        run: RunSelector,
        /// Why, for the event log.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Moves a READY phase on, in a run started with --manual.
    #[command(
        override_usage = "orchestra run continue <RUN> <PHASE>\n       orchestra run continue --latest <PHASE>"
    )]
    Continue {
        /// The run's id or a unique prefix of it (the phase, with --latest).
        #[arg(value_name = "RUN")]
        first: String,
        /// The phase to move on.
        #[arg(value_name = "PHASE")]
        phase: Option<String>,
        /// The newest run, instead of naming one.
        #[arg(long)]
        latest: bool,
    },
    /// Lists runs, newest first.
    List {
        /// Only runs in this status (repeatable): pending, running,
        /// waiting_for_human, completed, failed, cancelled.
        #[arg(long = "status", value_parser = parse_run_status)]
        statuses: Vec<orchestra_proto::v1::RunStatus>,
        /// Only runs of this template.
        #[arg(long)]
        template: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i32,
    },
}

/// Arguments of `orchestra run start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The template's name.
    pub template: String,
    /// The template version (the latest when absent).
    #[arg(long)]
    pub version: Option<i32>,
    /// A run input as NAME=FILE, the file holding its JSON (repeatable).
    #[arg(long = "input", value_name = "NAME=FILE", value_parser = parse_input)]
    pub inputs: Vec<(String, PathBuf)>,
    /// The run's seed (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// READY phases wait for a person to move them on with
    /// `orchestra run continue RUN PHASE`.
    #[arg(long)]
    pub manual: bool,
    /// Follows the run as `orchestra run watch` does.
    #[arg(long)]
    pub watch: bool,
}

/// Arguments of `orchestra inbox`.
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// Include done and cancelled tasks.
    #[arg(long)]
    pub all: bool,
    /// Only tasks of this run (its id or a unique prefix of it).
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// Only tasks of the newest run.
    #[arg(long, conflicts_with = "run")]
    pub latest: bool,
    /// Prints the open tasks, then every change to the inbox as it happens,
    /// until interrupted.
    #[arg(long, conflicts_with = "all")]
    pub watch: bool,
}

/// `orchestra input …`.
#[derive(Debug, Subcommand)]
pub enum InputCommand {
    /// Submits a human_input form from a JSON file.
    Submit {
        /// The task's id, or any unique prefix of it.
        task: String,
        /// The JSON file holding the form's content.
        file: PathBuf,
    },
}

/// `orchestra review …`.
#[derive(Debug, Subcommand)]
pub enum ReviewCommand {
    /// Shows a task: what is under review, the diffs, and how to decide.
    Show {
        /// The task's id, or any unique prefix of it.
        task: String,
    },
    /// Approves the work under review.
    Approve(DecideArgs),
    /// Rejects the work under review.
    Reject(DecideArgs),
    /// Sends upstream phases back for a new attempt, with the comment as feedback.
    Retry(DecideArgs),
}

/// Arguments of a review decision.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The task's id, or any unique prefix of it.
    pub task: String,
    /// Why, for the audit trail and as feedback to retried phases.
    #[arg(long, default_value = "")]
    pub comment: String,
    /// The candidates chosen, by item name (all when absent; repeatable).
    #[arg(long = "select", value_name = "NAME")]
    pub selected: Vec<String>,
    /// The phases to run again (the template's on_reject when absent; repeatable).
    #[arg(long = "phase", value_name = "PHASE")]
    pub phases: Vec<String>,
}

/// `orchestra task …`.
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Marks a task as being worked on by you (`--as`), so others see it
    /// in the inbox.
    Claim {
        /// The task's id, or any unique prefix of it.
        task: String,
    },
}

/// `orchestra artifact …`.
#[derive(Debug, Subcommand)]
pub enum ArtifactCommand {
    /// Lists the latest version of each artifact of a run.
    List {
        /// The run.
        #[command(flatten)]
        run: RunSelector,
        /// Only those of this phase.
        #[arg(long)]
        phase: Option<String>,
    },
    /// Prints one artifact version, or writes its content to a file. With
    /// --output json, JSON content is printed as JSON (text as
    /// `contentText`, anything else as `contentBase64`).
    Get {
        /// The artifact's id, or any unique prefix of it.
        id: String,
        /// The version (the latest when absent).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        version: Option<i32>,
        /// Writes the content to this file instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Lists every version of an artifact, oldest first.
    History {
        /// The artifact's id, or any unique prefix of it.
        id: String,
    },
    /// Compares two versions of an artifact (a unified diff, and JSON
    /// Patch operations when both are JSON).
    Diff {
        /// The artifact's id, or any unique prefix of it.
        id: String,
        /// The older version.
        #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(i32).range(1..))]
        from: i32,
        /// The newer version (the latest when absent).
        #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(i32).range(1..))]
        to: Option<i32>,
    },
}

/// Reads `NAME=FILE`.
fn parse_input(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, file)) if !name.is_empty() && !file.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(file)))
        }
        _ => Err(format!("expected NAME=FILE, got {text:?}")),
    }
}

/// Reads a run status as `completed`, `COMPLETED` or `RUN_STATUS_COMPLETED`.
fn parse_run_status(text: &str) -> Result<orchestra_proto::v1::RunStatus, String> {
    let upper = text.trim().to_ascii_uppercase().replace('-', "_");
    let full = if upper.starts_with("RUN_STATUS_") {
        upper
    } else {
        format!("RUN_STATUS_{upper}")
    };
    orchestra_proto::v1::RunStatus::from_str_name(&full)
        .filter(|s| *s != orchestra_proto::v1::RunStatus::Unspecified)
        .ok_or_else(|| {
            format!(
                "{text:?} is not a run status (pending, running, waiting_for_human, completed, failed, cancelled)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use orchestra_proto::v1::RunStatus;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_statuses_read_in_any_case() {
        assert_eq!(parse_run_status("completed"), Ok(RunStatus::Completed));
        assert_eq!(
            parse_run_status("waiting-for-human"),
            Ok(RunStatus::WaitingForHuman)
        );
        assert_eq!(parse_run_status("RUN_STATUS_FAILED"), Ok(RunStatus::Failed));
        assert!(parse_run_status("done").is_err());
    }

    #[test]
    fn inputs_are_name_equals_file() {
        assert_eq!(
            parse_input("baseline=page.json"),
            Ok(("baseline".to_owned(), PathBuf::from("page.json")))
        );
        assert!(parse_input("baseline").is_err());
        assert!(parse_input("=x").is_err());
    }
}
