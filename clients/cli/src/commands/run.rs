//! `orchestra run start|show|list|cancel|continue` (`run watch` and
//! `run events` are in [`super::watch`]).

use std::collections::HashMap;
use std::process::ExitCode;

use comfy_table::Table;
use orchestra_proto::v1 as pb;

use crate::cli::{OutputFormat, StartArgs};
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::upload::{self, RunInput};
use crate::{ids, outln, output};

/// Starts a run; with `--watch`, follows it and exits as `run watch` does.
pub async fn start(
    connection: &Connection,
    format: OutputFormat,
    args: &StartArgs,
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
        // With --watch the output is a stream: one compact object per line.
        OutputFormat::Json if args.watch => output::print_json_line(&response)?,
        OutputFormat::Json => output::print_json(&response)?,
        OutputFormat::Table if args.watch => outln!(
            "started run {} of {} version {}",
            run.id,
            run.template_name,
            run.template_version
        )?,
        OutputFormat::Table => {
            outln!("{}", run.id)?;
            eprintln!("follow it with: orchestra run watch {}", run.id);
            if args.manual {
                eprintln!("{}", manual_hint(&run.id));
                let snapshot = get(connection, &run.id).await?;
                eprint!("{}", ready_lines(&run, &snapshot.phases));
            }
        }
    }
    if args.watch {
        return super::watch::watch(connection, format, &run.id).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a run started with --manual needs from a person.
pub fn manual_hint(run_id: &str) -> String {
    format!(
        "phases wait for you when READY: move each on with `orchestra run continue {run_id} PHASE` (`orchestra run show {run_id}` lists them)"
    )
}

/// The commands that move on a manual run's READY phases, one line each.
pub fn ready_lines(run: &pb::Run, phases: &[pb::Phase]) -> String {
    if run.auto_advance {
        return String::new();
    }
    phases
        .iter()
        .filter(|p| p.state == pb::PhaseState::Ready as i32)
        .map(|p| {
            format!(
                "{} is READY: orchestra run continue {} {}\n",
                p.id, run.id, p.id
            )
        })
        .collect()
}

/// Shows a run's fields and its phases.
pub async fn show(connection: &Connection, format: OutputFormat, run_id: &str) -> Result<()> {
    let response = get(connection, run_id).await?;
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let run = response.run.as_ref().ok_or(Error::Incomplete("run"))?;
    print_run(run, response.seq)?;
    outln!("{}", phases_table(&response.phases))?;
    output::write_out(&ready_lines(run, &response.phases))
}

/// Cancels a run: every phase that has not finished, and its open tasks.
pub async fn cancel(
    connection: &Connection,
    format: OutputFormat,
    run_id: &str,
    reason: &str,
) -> Result<()> {
    let response = connection
        .runs()
        .cancel_run(pb::CancelRunRequest {
            run_id: run_id.to_owned(),
            reason: reason.to_owned(),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let run = response.run.unwrap_or_default();
    outln!("run {} is {}", run.id, output::run_status(run.status))
}

/// Moves a READY phase of a manual run on. `first` is the run (or, with
/// `--latest`, the phase).
pub async fn continue_phase(
    connection: &Connection,
    format: OutputFormat,
    first: &str,
    phase: Option<&str>,
    latest: bool,
) -> Result<()> {
    let (run_id, phase_id) = match (latest, phase) {
        (true, None) => (ids::latest_run(connection).await?, first),
        (false, Some(phase)) => (ids::run_id(connection, first).await?, phase),
        (true, Some(_)) => {
            return Err(Error::Usage(
                "with --latest, give only the phase: orchestra run continue --latest PHASE"
                    .to_owned(),
            ));
        }
        (false, None) => {
            return Err(Error::Usage(
                "name the run and the phase: orchestra run continue RUN PHASE (or --latest PHASE)"
                    .to_owned(),
            ));
        }
    };
    let response = connection
        .runs()
        .continue_phase(pb::ContinuePhaseRequest {
            run_id: run_id.clone(),
            phase_id: phase_id.to_owned(),
        })
        .await?
        .into_inner();
    if format == OutputFormat::Json {
        return output::print_json(&response);
    }
    let phase = response.phase.unwrap_or_default();
    outln!(
        "{} of run {run_id} is {}",
        phase.id,
        output::phase_state(phase.state)
    )
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
pub fn print_run(run: &pb::Run, seq: i64) -> Result<()> {
    outln!("run       {}", run.id)?;
    outln!(
        "template  {} version {}",
        run.template_name,
        run.template_version
    )?;
    outln!("status    {}", output::run_status(run.status))?;
    outln!("seed      {}", run.seed)?;
    outln!(
        "advance   {}",
        if run.auto_advance { "auto" } else { "manual" }
    )?;
    outln!("created   {}", output::when(run.created_at.as_ref()))?;
    outln!(
        "updated   {}  (event {seq})",
        output::when(run.updated_at.as_ref())
    )?;
    let mut inputs: Vec<_> = run.inputs.iter().collect();
    inputs.sort_by(|a, b| a.0.cmp(b.0));
    for (name, artifact) in inputs {
        outln!(
            "input     {name} = {}",
            output::artifact_ref(Some(artifact))
        )?;
    }
    Ok(())
}

/// How long a phase's current attempt took (`+` while it is still going),
/// or `-` when it has not started.
pub fn phase_duration(phase: &pb::Phase, now_micros: i64) -> String {
    if phase.started_at.is_none() {
        return "-".to_owned();
    }
    let started = orchestra_kit::time::micros(phase.started_at.as_ref());
    match phase.finished_at.as_ref() {
        Some(finished) => output::duration(orchestra_kit::time::micros(Some(finished)) - started),
        None => format!("{}+", output::duration(now_micros - started)),
    }
}

/// The phases of a run as a table: id, kind, state, attempt, how long the
/// attempt took, output, error.
pub fn phases_table(phases: &[pb::Phase]) -> Table {
    let now = orchestra_kit::time::now_micros();
    let mut table = output::table(["id", "kind", "state", "attempt", "took", "output", "error"]);
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
            phase_duration(phase, now),
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
    outln!("{table}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use orchestra_proto::Timestamp;

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    #[test]
    fn a_phase_took_from_its_start_to_its_finish() {
        let mut phase = pb::Phase::default();
        assert_eq!(phase_duration(&phase, 0), "-");
        phase.started_at = at(100);
        assert_eq!(phase_duration(&phase, 103_000_000), "3.0s+");
        phase.finished_at = at(165);
        assert_eq!(phase_duration(&phase, 0), "1m05s");
    }

    #[test]
    fn a_manual_run_names_the_command_for_each_ready_phase() {
        let run = pb::Run {
            id: "r1".into(),
            auto_advance: false,
            ..Default::default()
        };
        let phases = [
            pb::Phase {
                id: "context".into(),
                state: pb::PhaseState::Ready as i32,
                ..Default::default()
            },
            pb::Phase {
                id: "merge".into(),
                state: pb::PhaseState::Blocked as i32,
                ..Default::default()
            },
        ];
        assert_eq!(
            ready_lines(&run, &phases),
            "context is READY: orchestra run continue r1 context\n"
        );
    }
}
