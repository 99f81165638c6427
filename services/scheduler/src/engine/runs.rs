//! Starting, reading and steering runs.

use orchestra_db::{db_run, db_tx};
use orchestra_model::{PhaseEvent, PhaseState};
use orchestra_proto::v1 as pb;

use super::run_tx::{RunTx, Saved};
use super::{Engine, StartRun, now};
use crate::error::{Error, Result};
use crate::storage::models::{EventRow, PhaseRow, RunRow};
use crate::storage::{RunFilter, Store};

impl Engine {
    /// The run a request id started, if any.
    pub async fn run_by_request_id(&self, request_id: &str) -> Result<Option<RunRow>> {
        db_run!(&self.db, |c| -> Result<Option<RunRow>> {
            Ok(c.run_by_request_id(request_id).await?)
        })
    }

    /// Creates a run: its phases BLOCKED, then advanced as far as they go.
    pub async fn start_run(&self, start: StartRun) -> Result<RunRow> {
        let at = now();
        let template = crate::convert::parse_spec(&start.template.spec_json)?;
        let run = RunRow {
            id: start.run_id.clone(),
            template_id: start.template.id.clone(),
            template_name: start.template.name.clone(),
            template_version: start.template.version,
            spec_json: start.template.spec_json.clone(),
            status: orchestra_model::RunStatus::Pending.as_str().to_owned(),
            seed: start.seed as i64,
            auto_advance: start.auto_advance,
            cancelled: false,
            inputs_json: serde_json::to_string(&start.inputs).unwrap_or_else(|_| "{}".into()),
            request_id: start.request_id.clone(),
            last_seq: 0,
            created_at: at,
            updated_at: at,
        };
        let phases: Vec<PhaseRow> = template
            .walk_phases()
            .into_iter()
            .enumerate()
            .map(|(idx, (_, phase))| PhaseRow {
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
            })
            .collect();
        let (row, saved) = db_tx!(&self.db, |c| -> Result<(RunRow, Saved)> {
            if let Some(request_id) = &run.request_id
                && let Some(existing) = c.run_by_request_id(request_id).await?
            {
                return Ok((existing, Saved::default()));
            }
            let mut tx = RunTx::new(run, phases, at)?;
            tx.record(pb::run_event::Body::RunStarted(pb::RunStarted {
                template_name: tx.run.template_name.clone(),
                template_version: tx.run.template_version,
                seed: tx.run.seed as u64,
            }));
            tx.advance()?;
            let run_id = tx.run.id.clone();
            let saved = tx.save(c, true).await?;
            let row = c
                .get_run(&run_id)
                .await?
                .ok_or_else(|| Error::Corrupt("run vanished".into()))?;
            Ok((row, saved))
        })?;
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

    /// A run's events after a sequence.
    pub async fn events_after(
        &self,
        run_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        db_run!(&self.db, |c| -> Result<Vec<EventRow>> {
            Ok(c.events_after(run_id, after, limit).await?)
        })
    }

    /// Runs one change to one run in a transaction and wakes waiters.
    pub(super) async fn change_run<T, F>(&self, run_id: &str, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut RunTx) -> Result<T> + Send + 'static,
    {
        let run_id = run_id.to_owned();
        let (value, saved) = db_tx!(&self.db, |c| -> Result<(T, Saved)> {
            let mut tx = RunTx::load(c, &run_id, now()).await?;
            let value = change(&mut tx)?;
            tx.advance()?;
            let saved = tx.save(c, false).await?;
            Ok((value, saved))
        })?;
        self.wake(saved);
        Ok(value)
    }

    /// Dispatches a READY phase of a run that does not auto-advance.
    pub async fn continue_phase(&self, run_id: &str, phase_id: &str) -> Result<PhaseRow> {
        let phase_id = phase_id.to_owned();
        self.change_run(run_id, move |tx| {
            let index = tx.index(&phase_id)?;
            if tx.state(index)? != PhaseState::Ready {
                return Err(Error::FailedPrecondition(format!(
                    "phase {phase_id} is {}, not READY",
                    tx.state(index)?
                )));
            }
            tx.dispatch(index)?;
            Ok(tx.phases[index].clone())
        })
        .await
    }

    /// Cancels every unfinished phase of a run.
    pub async fn cancel_run(&self, run_id: &str, reason: &str) -> Result<RunRow> {
        let reason = if reason.is_empty() {
            "cancelled"
        } else {
            reason
        }
        .to_owned();
        self.change_run(run_id, move |tx| cancel(tx, &reason))
            .await?;
        Ok(self.get_run(run_id).await?.0)
    }
}

/// Cancels every unfinished phase of a run: queued and leased tasks are
/// withdrawn, open human tasks closed (see [`RunTx::apply`]).
pub(super) fn cancel(tx: &mut RunTx, reason: &str) -> Result<()> {
    tx.run.cancelled = true;
    for index in 0..tx.phases.len() {
        if !tx.state(index)?.is_terminal() {
            tx.apply(index, PhaseEvent::Cancel, reason, None)?;
            tx.withdraw_task(index);
        }
    }
    Ok(())
}
