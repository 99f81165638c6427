//! `orchestra run start|show|list` (`run watch` is in [`super::watch`]).

use std::collections::HashMap;
use std::process::ExitCode;

use comfy_table::Table;
use orchestra_proto::v1 as pb;

use crate::cli::{OutputFormat, StartArgs};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::output;
use crate::upload::{self, RunInput};

/// Starts a run; with `--watch`, follows it and exits as `run watch` does.
pub async fn start(
    connection: &Connection,
    format: OutputFormat,
    args: StartArgs,
) -> Result<ExitCode> {
    let mut inputs = HashMap::new();
    let mut input_refs = HashMap::new();
    for (name, path) in &args.inputs {
        match upload::run_input(connection, name, path).await? {
            RunInput::Inline(text) => {
                inputs.insert(name.clone(), text);
            }
            RunInput::Stored(stored) => {
                input_refs.insert(name.clone(), stored);
            }
        }
    }
    let response = connection
        .runs()
        .start_run(pb::StartRunRequest {
            template_name: args.template.clone(),
            template_version: args.version.unwrap_or(0),
            inputs,
            seed: args.seed,
            manual_advance: args.manual,
            request_id: String::new(),
            input_refs,
        })
        .await?
        .into_inner();
    let run = response.run.clone().ok_or(Error::Incomplete("run"))?;
    match format {
        OutputFormat::Json => output::print_json(&response)?,
        OutputFormat::Table if args.watch => println!(
            "started run {} of {} version {}",
            run.id, run.template_name, run.template_version
        ),
        OutputFormat::Table => {
            println!("{}", run.id);
            eprintln!("follow it with: orchestra run watch {}", run.id);
        }
    }
    if args.watch {
        return super::watch::watch(connection, format, &run.id).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Shows a run's fields and its phases.
pub async fn show(connection: &Connection, format: OutputFormat, run_id: &str) -> Result<()> {
    let response = get(connection, run_id).await?;
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let run = response.run.as_ref().ok_or(Error::Incomplete("run"))?;
    print_run(run, response.seq);
    println!("{}", phases_table(&response.phases));
    Ok(())
}

/// A run's snapshot.
pub async fn get(connection: &Connection, run_id: &str) -> Result<pb::GetRunResponse> {
    Ok(connection
        .runs()
        .get_run(pb::GetRunRequest {
            run_id: run_id.to_owned(),
        })
        .await?
        .into_inner())
}

/// Prints a run's fields, one per line.
pub fn print_run(run: &pb::Run, seq: i64) {
    println!("run       {}", run.id);
    println!(
        "template  {} version {}",
        run.template_name, run.template_version
    );
    println!("status    {}", output::run_status(run.status));
    println!("seed      {}", run.seed);
    println!(
        "advance   {}",
        if run.auto_advance { "auto" } else { "manual" }
    );
    println!("created   {}", output::when(run.created_at.as_ref()));
    println!(
        "updated   {}  (event {seq})",
        output::when(run.updated_at.as_ref())
    );
    let mut inputs: Vec<_> = run.inputs.iter().collect();
    inputs.sort_by(|a, b| a.0.cmp(b.0));
    for (name, artifact) in inputs {
        println!(
            "input     {name} = {}",
            output::artifact_ref(Some(artifact))
        );
    }
}

/// The phases of a run as a table: id, kind, state, attempt, output, error.
pub fn phases_table(phases: &[pb::Phase]) -> Table {
    let mut table = output::table(["id", "kind", "state", "attempt", "output", "error"]);
    for phase in phases {
        table.add_row([
            phase.id.clone(),
            // llm phases say which provider answers, offline included.
            if phase.provider_label.is_empty() {
                output::phase_kind(phase.kind)
            } else {
                format!(
                    "{} · {}",
                    output::phase_kind(phase.kind),
                    phase.provider_label
                )
            },
            output::phase_state(phase.state).to_owned(),
            phase.attempt.to_string(),
            output::artifact_ref(phase.output.as_ref()),
            phase.error.clone(),
        ]);
    }
    table
}

/// Lists runs, newest first.
pub async fn list(
    connection: &Connection,
    format: OutputFormat,
    statuses: &[pb::RunStatus],
    template: Option<String>,
    limit: i32,
) -> Result<()> {
    let response = connection
        .runs()
        .list_runs(pb::ListRunsRequest {
            statuses: statuses.iter().map(|s| *s as i32).collect(),
            template_name: template.unwrap_or_default(),
            page_size: limit.clamp(1, 500),
            page_token: String::new(),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let mut table = output::table(["id", "template", "status", "created", "updated"]);
    for run in &response.runs {
        table.add_row([
            run.id.clone(),
            format!("{} v{}", run.template_name, run.template_version),
            output::run_status(run.status).to_owned(),
            output::when(run.created_at.as_ref()),
            format!("{} ago", output::age(run.updated_at.as_ref())),
        ]);
    }
    println!("{table}");
    Ok(())
}
