//! Handing attempts to executors: the message a leased attempt travels in,
//! and the eager lease by which a completion gives its executor a phase it
//! readied, in the same transaction, so a chain goes hop to hop without a
//! trip through the Lease stream.

use orchestra_model::PhaseEvent;
use orchestra_proto::v1 as pb;

use super::{RunTx, as_idx};
use crate::error::{Error, Result};
use crate::storage::models::task_state;
use crate::storage::phases::PhaseStore;

impl RunTx {
    /// Starts a leased attempt: the phase runs, on that executor.
    pub fn start_leased(&mut self, index: usize, executor_id: &str) -> Result<()> {
        self.apply(index, PhaseEvent::Start, "", None)?;
        self.set_executor(index, Some(executor_id.to_owned()))
    }

    /// The message that hands an executor a leased attempt of a phase: its
    /// definition, its inputs (their sources must be loaded), its seed and
    /// the reviewers' comments.
    pub fn task_message(&self, index: usize, lease_id: &str, deadline: i64) -> Result<pb::Task> {
        let phase = self.phase(index)?;
        let spec = self.spec(index)?;
        let phase_spec_json = self
            .frozen
            .spec_json(index)
            .ok_or_else(|| Error::Corrupt(format!("no phase at index {index}")))?
            .to_owned();
        Ok(pb::Task {
            key: Some(pb::AttemptKey {
                run_id: phase.run_id.clone(),
                phase_id: phase.phase_id.clone(),
                attempt: phase.attempt,
            }),
            lease_id: lease_id.to_owned(),
            lease_deadline: orchestra_kit::time::timestamp(deadline),
            kind: crate::convert::phase_kind(&spec.kind) as i32,
            phase_spec_json,
            inputs: self.resolve_inputs(index)?.into_iter().collect(),
            seed: orchestra_kit::seed::nth(self.run.seed as u64, index as u64),
            timeout_ms: spec
                .timeout()
                .map_or(0, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
            feedback: self.feedback(index)?,
        })
    }

    /// The phases whose task this change queued, due now and of one kind,
    /// in the order they were queued.
    pub fn queued_now(&self, kind: &str) -> Vec<usize> {
        self.new_tasks
            .iter()
            .filter(|t| {
                t.state == task_state::QUEUED && t.kind == kind && t.available_at <= self.now
            })
            .filter_map(|t| self.frozen.index(&t.phase_id))
            .collect()
    }

    /// Loads the sources of a phase's inputs that the change's [`super::Scope`]
    /// left out, so its task can carry them.
    pub async fn load_sources<C: PhaseStore>(&mut self, c: &mut C, index: usize) -> Result<()> {
        let sources = self.frozen.sources(index).to_vec();
        self.load_missing(c, sources).await
    }

    /// Loads the phases a change needs beyond its [`super::Scope`] (a queued
    /// phase it hands on, say), skipping those loaded already.
    pub async fn load_missing<C: PhaseStore>(
        &mut self,
        c: &mut C,
        indices: impl IntoIterator<Item = usize>,
    ) -> Result<()> {
        let missing = indices
            .into_iter()
            .filter(|index| !self.phases.contains_key(index))
            .map(as_idx)
            .collect::<Result<Vec<_>>>()?;
        if missing.is_empty() {
            return Ok(());
        }
        for row in c.load_phases_at(&self.run.id, missing).await? {
            self.put_loaded(row)?;
        }
        Ok(())
    }

    /// Leases a task this change queued to an executor (it is stored
    /// leased) and starts its attempt.
    pub fn lease_queued(
        &mut self,
        index: usize,
        lease_id: &str,
        executor_id: &str,
        deadline: i64,
    ) -> Result<()> {
        let phase_id = self.phase(index)?.phase_id.clone();
        let task = self
            .new_tasks
            .iter_mut()
            .find(|t| t.phase_id == phase_id && t.state == task_state::QUEUED)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "{phase_id}: no task queued in this change to lease"
                ))
            })?;
        task.state = task_state::LEASED.to_owned();
        task.lease_id = Some(lease_id.to_owned());
        task.executor_id = Some(executor_id.to_owned());
        task.lease_deadline = deadline;
        self.start_leased(index, executor_id)
    }
}
