//! Starting, reading and steering runs.

use std::collections::BTreeMap;

use orchestra_db::{db_run, db_tx};
use orchestra_model::{PhaseEvent, PhaseState};
use orchestra_proto::v1 as pb;

use super::run_tx::{RunTx, Saved};
use super::{Engine, StartRun, in_run_tx, now};
use crate::bus::OwnCommit;
use crate::error::{Error, Result};
use crate::storage::models::{PhaseRow, RunRow, TemplateRow};
use crate::storage::phases::PhaseStore;
use crate::storage::runs::{RunFilter, RunStore};

/// A run to create, its inputs already stored as artifacts.
struct NewRun {
    /// The new run's id (chosen first so inputs can be stored under it).
    run_id: String,
    /// The template version to freeze.
    template: TemplateRow,
    /// Run inputs by name.
    inputs: BTreeMap<String, pb::ArtifactRef>,
    /// The run's seed.
    seed: u64,
    /// Dispatch READY phases without waiting for a person.
    auto_advance: bool,
    /// Makes StartRun idempotent.
    request_id: Option<String>,
}

impl Engine {
    /// Starts a run of a template version: checks and stores its inputs as
    /// artifacts under the new run, then creates it. A request id already
    /// used returns the run it started, and stores nothing.
    pub async fn start_run(&self, start: StartRun) -> Result<RunRow> {
        if let Some(id) = &start.request_id
            && let Some(existing) = self.run_by_request_id(id).await?
        {
            return Ok(existing);
        }
        let template_row = self
            .get_template(&start.template_name, start.template_version)
            .await?;
        let template = crate::convert::parse_spec(&template_row.spec_json)?;
        let run_id = uuid::Uuid::now_v7().to_string();
        let inputs = self
            .store_inputs(&run_id, &template, &start.inputs, &start.input_refs)
            .await?;
        self.create_run(NewRun {
            run_id,
            template: template_row,
            inputs,
            seed: start.seed.unwrap_or_else(rand_seed),
            auto_advance: start.auto_advance,
            request_id: start.request_id,
        })
        .await
    }

    /// The run a request id started, if any.
    async fn run_by_request_id(&self, request_id: &str) -> Result<Option<RunRow>> {
        db_run!(&self.db, |c| -> Result<Option<RunRow>> {
            Ok(c.run_by_request_id(request_id).await?)
        })
    }

    /// Creates a run: its phases BLOCKED, then advanced as far as they go.
    /// The one unit of work that begins with [`RunTx::new`] rather than a
    /// load: the run's rows do not exist yet.
    async fn create_run(&self, new: NewRun) -> Result<RunRow> {
        let at = now();
        let frozen = match self.frozen.get(&new.template.id) {
            Some(frozen) => frozen,
            None => self
                .frozen
                .insert(&new.template.id, &new.template.spec_json)?,
        };
        let run = RunRow {
            id: new.run_id.clone(),
            template_id: new.template.id.clone(),
            template_name: new.template.name.clone(),
            template_version: new.template.version,
            spec_json: new.template.spec_json.clone(),
            status: orchestra_model::RunStatus::Pending.as_str().to_owned(),
            seed: new.seed as i64,
            auto_advance: new.auto_advance,
            cancelled: false,
            inputs_json: serde_json::to_string(&new.inputs).unwrap_or_else(|_| "{}".into()),
            request_id: new.request_id.clone(),
            last_seq: 0,
            created_at: at,
            updated_at: at,
            phase_tally: String::new(),
        };
        let phases: Vec<PhaseRow> = (0..frozen.len())
            .filter_map(|idx| frozen.spec(idx).map(|phase| (idx, phase)))
            .map(|(idx, phase)| PhaseRow {
                run_id: run.id.clone(),
                phase_id: phase.id.clone(),
                idx: idx as i32,
                kind: phase.kind.as_str().to_owned(),
                state: PhaseState::Blocked.as_str().to_owned(),
                attempt: 0,
                started_at: 0,
                finished_at: 0,
                error: String::new(),
                output_json: None,
                human_task_id: None,
                executor_id: None,
                feedback_json: "[]".to_owned(),
                // Counted when the run is wrapped for its first change.
                unmet_needs: 0,
            })
            .collect();
        let (row, saved, own) = db_tx!(&self.db, |c| -> Result<(RunRow, Saved, OwnCommit)> {
            if let Some(request_id) = &run.request_id
                && let Some(existing) = c.run_by_request_id(request_id).await?
            {
                return Ok((existing, Saved::default(), self.bus.expect_commit(&[])));
            }
            let mut tx = RunTx::new(run, phases, frozen.clone(), at)?;
            tx.record(pb::run_event::Body::RunStarted(pb::RunStarted {
                template_name: tx.run().template_name.clone(),
                template_version: tx.run().template_version,
                seed: tx.run().seed as u64,
            }));
            tx.advance()?;
            let run_id = tx.run().id.clone();
            let saved = tx.save(c).await?;
            let own = self.bus.expect_commit(&saved.events);
            let row = c
                .get_run(&run_id)
                .await?
                .ok_or_else(|| Error::Corrupt("run vanished".into()))?;
            Ok((row, saved, own))
        })?;
        own.keep();
        self.wake(saved);
        Ok(row)
    }

    /// A run and its phases, read in one transaction so they agree with the
    /// run's `last_seq`.
    pub async fn get_run(&self, run_id: &str) -> Result<(RunRow, Vec<PhaseRow>)> {
        let run_id = run_id.to_owned();
        db_tx!(&self.db, |c| -> Result<(RunRow, Vec<PhaseRow>)> {
            let run = c
                .get_run(&run_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("run {run_id} does not exist")))?;
            let phases = c.load_phases(&run_id).await?;
            Ok((run, phases))
        })
    }

    /// Runs newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        db_run!(&self.db, |c| -> Result<Vec<RunRow>> {
            Ok(c.list_runs(filter).await?)
        })
    }

    /// Dispatches a READY phase of a run that does not auto-advance.
    pub async fn continue_phase(&self, run_id: &str, phase_id: &str) -> Result<PhaseRow> {
        let phase = in_run_tx!(self, run_id, |tx| -> PhaseRow {
            let index = tx.index(phase_id)?;
            if tx.state(index)? != PhaseState::Ready {
                return Err(Error::FailedPrecondition(format!(
                    "phase {phase_id} is {}, not READY",
                    tx.state(index)?
                )));
            }
            tx.dispatch(index)?;
            let phase = tx.phase(index)?.clone();
            tx.advance()?;
            Ok(phase)
        });
        Ok(phase)
    }

    /// Cancels every unfinished phase of a run.
    pub async fn cancel_run(&self, run_id: &str, reason: &str) -> Result<RunRow> {
        let reason = if reason.is_empty() {
            "cancelled"
        } else {
            reason
        };
        in_run_tx!(self, run_id, |tx| -> () {
            cancel(tx, reason)?;
            tx.advance()
        });
        Ok(self.get_run(run_id).await?.0)
    }
}

/// Cancels every unfinished phase of a run: queued and leased tasks are
/// withdrawn, open human tasks closed (see [`RunTx::apply`]).
pub(super) fn cancel(tx: &mut RunTx, reason: &str) -> Result<()> {
    tx.set_cancelled();
    for index in 0..tx.phase_count() {
        if !tx.state(index)?.is_terminal() {
            tx.apply(index, PhaseEvent::Cancel, reason, None)?;
            tx.withdraw_task(index)?;
        }
    }
    Ok(())
}

/// A seed for a run that asked for none.
fn rand_seed() -> u64 {
    let uuid = uuid::Uuid::new_v4();
    let (high, low) = uuid.as_u64_pair();
    high ^ low
}
