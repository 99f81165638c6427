//! One change to one run, as a unit of work: load the run under its row
//! lock, move phases through the transition table in memory (each move
//! recording its event), then save phases, events, queued tasks and outbox
//! hand-offs together in the caller's transaction.
//!
//! Because every change to a run takes the same row lock first, two parents
//! that finish at the same instant are applied one after the other, and the
//! second sees the first's result: their child is readied exactly once.
//!
//! A change reads only the rows it touches ([`Scope`]): the run's head, its
//! frozen template from a cache shared by every run of that version, and
//! the phases the change can read or move. The run's status follows from a
//! tally of its phase states kept on the run, and each phase counts its
//! unmet needs, so neither is recomputed from every phase: a transition
//! costs the same in a run of 5 phases and of 10,000.
//!
//! - this module: loading, reading, the change markers and saving; the
//!   rows are private, so every write goes through a method that marks
//!   what it changed and nothing changed can go unsaved;
//! - [`transitions`]: moving phases and the graph forward;
//! - [`handoffs`]: the review service's messages for human phases.

mod handoffs;
mod leasing;
#[cfg(test)]
mod tests;
mod transitions;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use orchestra_db::outbox::Message;
use orchestra_model::{Phase, PhaseState, PhaseTally, RunStatus};
use orchestra_proto::v1 as pb;
use prost::Message as _;

use super::frozen::{Frozen, FrozenCache};
use crate::convert::{self, parse_inputs, parse_ref, ref_json};
use crate::error::{Error, Result};
use crate::storage::changes::Change;
use crate::storage::models::{EventRow, PhaseRow, RunHead, RunRow, TaskRow};
use crate::storage::phases::PhaseStore;
use crate::storage::runs::{RunLock, RunStore};
use crate::storage::tasks::TaskKey;
use crate::storage::writes::{RunWrite, WriteRun};

pub use handoffs::{CLOSE_HUMAN_TASK, OPEN_HUMAN_TASK};

/// What saving a unit of work set in motion, so the engine can wake waiters
/// and hand the run's watchers its events once committed.
#[derive(Debug, Default, Clone)]
pub struct Saved {
    /// The events appended, in order.
    pub events: Vec<pb::RunEvent>,
    /// The kinds of the tasks queued for the Lease streams (not of those
    /// leased at once).
    pub queued_kinds: BTreeSet<String>,
    /// Hand-offs were added to the outbox.
    pub outbox: bool,
}

/// Which of a run's phases a change loads.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Every phase: for the rare changes that walk the graph (cancel,
    /// rewind, a person's resolution, continue).
    All,
    /// One phase and what finishing it can read or move
    /// ([`Frozen::reach`]): the hot path of leases and reports.
    Phase(&'a str),
    /// Several phases and what finishing each can read or move: a
    /// Lease stream claiming several of a run's tasks at once.
    Phases(&'a [String]),
}

/// A run loaded for change (or being created), with everything the change
/// has recorded so far.
pub struct RunTx {
    /// The run's row without its template; saved at the end.
    run: RunHead,
    /// The whole row of a run being created: inserted on save.
    creating: Option<RunRow>,
    frozen: Arc<Frozen>,
    /// The loaded phases, by position.
    phases: BTreeMap<usize, PhaseRow>,
    /// Whether every phase is loaded (then `advance` looks at all of them).
    all_loaded: bool,
    tally: PhaseTally,
    now: i64,
    status_before: RunStatus,
    events: Vec<pb::run_event::Body>,
    /// The phase rows changed, by index.
    dirty: BTreeSet<usize>,
    /// Phases whose needs changed since `advance` last looked.
    candidates: BTreeSet<usize>,
    new_tasks: Vec<TaskRow>,
    withdrawn: BTreeSet<String>,
    /// Attempts whose tasks end (done) with this change.
    finished: Vec<TaskKey>,
    outbox: Vec<Message>,
}

impl RunTx {
    /// Locks and loads a run with the phases `scope` names; NOT_FOUND when
    /// the run (or the named phase) does not exist.
    pub async fn load<C>(
        c: &mut C,
        cache: &FrozenCache,
        run_id: &str,
        scope: Scope<'_>,
        now: i64,
    ) -> Result<RunTx>
    where
        C: RunStore + RunLock + PhaseStore,
    {
        let missing = || Error::NotFound(format!("run {run_id} does not exist"));
        let run = c.lock_run_head(run_id).await?.ok_or_else(missing)?;
        let frozen = match cache.get(&run.template_id) {
            Some(frozen) => frozen,
            None => {
                let row = c.get_run(run_id).await?.ok_or_else(missing)?;
                cache.insert(&run.template_id, &row.spec_json)?
            }
        };
        // A run stored before tallies existed is counted in full once.
        let scope = if run.phase_tally.is_empty() {
            Scope::All
        } else {
            scope
        };
        match scope {
            Scope::All => {
                let rows = c.load_phases(run_id).await?;
                RunTx::counted(run, None, frozen, rows, now)
            }
            Scope::Phase(phase_id) => {
                let wanted = Self::reach_of(&frozen, run_id, [phase_id])?;
                Self::partly(c, run, frozen, wanted, now).await
            }
            Scope::Phases(phase_ids) => {
                let wanted = Self::reach_of(&frozen, run_id, phase_ids.iter().map(String::as_str))?;
                Self::partly(c, run, frozen, wanted, now).await
            }
        }
    }

    /// The positions of the phases that changes to these phases can read or
    /// move; NOT_FOUND for a phase the run does not have.
    fn reach_of<'p>(
        frozen: &Frozen,
        run_id: &str,
        phase_ids: impl IntoIterator<Item = &'p str>,
    ) -> Result<Vec<i32>> {
        let mut reach = BTreeSet::new();
        for phase_id in phase_ids {
            let index = frozen
                .index(phase_id)
                .ok_or_else(|| Error::NotFound(format!("run {run_id} has no phase {phase_id}")))?;
            reach.extend(frozen.reach(index));
        }
        reach.into_iter().map(as_idx).collect()
    }

    /// A run with some of its phases loaded, its tally read from its row.
    async fn partly<C: PhaseStore>(
        c: &mut C,
        run: RunHead,
        frozen: Arc<Frozen>,
        wanted: Vec<i32>,
        now: i64,
    ) -> Result<RunTx> {
        let rows = c.load_phases_at(&run.id, wanted).await?;
        let tally = PhaseTally::from_json(&run.phase_tally)
            .map_err(|e| Error::Corrupt(format!("run {}: {e}", run.id)))?;
        let mut tx = RunTx::empty(run, None, frozen, tally, now)?;
        for row in rows {
            tx.put_loaded(row)?;
        }
        Ok(tx)
    }

    /// Wraps a run that is being created (its rows not yet stored).
    pub fn new(run: RunRow, phases: Vec<PhaseRow>, frozen: Arc<Frozen>, now: i64) -> Result<RunTx> {
        let head = run.head();
        RunTx::counted(head, Some(run), frozen, phases, now)
    }

    /// Every phase loaded: the tally and each phase's unmet needs are
    /// counted from the states (and saved where they differ).
    fn counted(
        run: RunHead,
        creating: Option<RunRow>,
        frozen: Arc<Frozen>,
        rows: Vec<PhaseRow>,
        now: i64,
    ) -> Result<RunTx> {
        if rows.len() != frozen.len() {
            return Err(Error::Corrupt(format!(
                "run {} has {} phases, its template {}",
                run.id,
                rows.len(),
                frozen.len()
            )));
        }
        let states = rows
            .iter()
            .map(convert::stored_state)
            .collect::<Result<Vec<_>>>()?;
        let tally = PhaseTally::of(states.iter().copied());
        let mut tx = RunTx::empty(run, creating, frozen, tally, now)?;
        tx.all_loaded = true;
        for row in rows {
            tx.put_loaded(row)?;
        }
        for index in 0..states.len() {
            let unmet = tx
                .frozen
                .needs(index)
                .iter()
                .filter(|need| !states[**need].satisfies_dependency())
                .count();
            let unmet = i32::try_from(unmet).unwrap_or(i32::MAX);
            if tx.phases[&index].unmet_needs != unmet {
                tx.phase_mut(index)?.unmet_needs = unmet;
            }
        }
        Ok(tx)
    }

    fn empty(
        run: RunHead,
        creating: Option<RunRow>,
        frozen: Arc<Frozen>,
        tally: PhaseTally,
        now: i64,
    ) -> Result<RunTx> {
        let status_before = convert::stored_status_of(&run.status)?;
        Ok(RunTx {
            run,
            creating,
            frozen,
            phases: BTreeMap::new(),
            all_loaded: false,
            tally,
            now,
            status_before,
            events: Vec::new(),
            dirty: BTreeSet::new(),
            candidates: BTreeSet::new(),
            new_tasks: Vec::new(),
            withdrawn: BTreeSet::new(),
            finished: Vec::new(),
            outbox: Vec::new(),
        })
    }

    /// Adds a loaded row, checking it is the phase the template has there.
    fn put_loaded(&mut self, row: PhaseRow) -> Result<()> {
        let index = usize::try_from(row.idx).map_err(|_| self.corrupt_row(&row))?;
        match self.frozen.spec(index) {
            Some(spec) if spec.id == row.phase_id => {
                self.phases.insert(index, row);
                Ok(())
            }
            _ => Err(self.corrupt_row(&row)),
        }
    }

    fn corrupt_row(&self, row: &PhaseRow) -> Error {
        Error::Corrupt(format!(
            "run {} phase {} at position {} is not in the frozen template",
            self.run.id, row.phase_id, row.idx
        ))
    }

    /// The run as changed so far.
    pub fn run(&self) -> &RunHead {
        &self.run
    }

    /// How many phases the run has; indices run from 0 below this.
    pub fn phase_count(&self) -> usize {
        self.frozen.len()
    }

    /// A phase's row as changed so far; an internal error when the change
    /// did not load it (its [`Scope`] left it out: a fault in the scope).
    pub fn phase(&self, index: usize) -> Result<&PhaseRow> {
        self.phases
            .get(&index)
            .ok_or_else(|| self.not_loaded(index))
    }

    fn not_loaded(&self, index: usize) -> Error {
        Error::Internal(format!(
            "run {}: phase at position {index} was not loaded for this change",
            self.run.id
        ))
    }

    /// The index of a phase; NOT_FOUND when the run has none of that id.
    pub fn index(&self, phase_id: &str) -> Result<usize> {
        self.frozen
            .index(phase_id)
            .ok_or_else(|| Error::NotFound(format!("run {} has no phase {phase_id}", self.run.id)))
    }

    /// A phase's definition in the frozen template.
    pub fn spec(&self, index: usize) -> Result<&Phase> {
        self.frozen
            .spec(index)
            .ok_or_else(|| Error::Corrupt(format!("no phase at index {index}")))
    }

    /// A phase's current state.
    pub fn state(&self, index: usize) -> Result<PhaseState> {
        convert::stored_state(self.phase(index)?)
    }

    /// The phases downstream of one, in declaration order.
    pub fn descendants(&self, phase_id: &str) -> Vec<String> {
        self.frozen
            .graph()
            .descendants(phase_id)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Says whether `ancestor` is upstream of `phase_id`.
    pub fn is_ancestor(&self, ancestor: &str, phase_id: &str) -> bool {
        self.frozen.graph().is_ancestor(ancestor, phase_id)
    }

    /// The artifacts a phase's inputs name, by their local names. An input
    /// whose source produced nothing (a skipped phase) is left out.
    pub fn resolve_inputs(&self, index: usize) -> Result<BTreeMap<String, pb::ArtifactRef>> {
        let spec = self.spec(index)?;
        let run_inputs = parse_inputs(&self.run.inputs_json)?;
        let mut resolved = BTreeMap::new();
        for (local, reference) in &spec.inputs {
            let Some((source, name)) = reference.split_once('.') else {
                continue;
            };
            if source == "input" {
                if let Some(r) = run_inputs.get(name) {
                    resolved.insert(local.clone(), r.clone());
                }
                continue;
            }
            let source_index = self.index(source)?;
            if let Some(json) = &self.phase(source_index)?.output_json {
                resolved.insert(local.clone(), parse_ref(json)?);
            }
        }
        Ok(resolved)
    }

    /// The reviewers' comments a phase was sent back with, oldest first.
    pub fn feedback(&self, index: usize) -> Result<Vec<String>> {
        let phase = self.phase(index)?;
        serde_json::from_str(&phase.feedback_json).map_err(|error| {
            Error::Corrupt(format!(
                "run {} phase {}: feedback does not parse: {error}",
                phase.run_id, phase.phase_id
            ))
        })
    }

    /// A phase's row for a change, marked to be saved.
    fn phase_mut(&mut self, index: usize) -> Result<&mut PhaseRow> {
        let missing = self.not_loaded(index);
        let row = self.phases.get_mut(&index).ok_or(missing)?;
        self.dirty.insert(index);
        Ok(row)
    }

    /// Records an event to append on save.
    pub fn record(&mut self, body: pb::run_event::Body) {
        self.events.push(body);
    }

    /// Marks the run cancelled: nothing dispatches after this.
    pub fn set_cancelled(&mut self) {
        self.run.cancelled = true;
    }

    /// Records which executor runs a phase's attempt (`None` once it ended).
    pub fn set_executor(&mut self, index: usize, executor_id: Option<String>) -> Result<()> {
        self.phase_mut(index)?.executor_id = executor_id;
        Ok(())
    }

    /// Records why a phase's attempt failed.
    pub fn set_error(&mut self, index: usize, error: &str) -> Result<()> {
        error.clone_into(&mut self.phase_mut(index)?.error);
        Ok(())
    }

    /// Records a phase's accepted output.
    pub fn accept_output(&mut self, index: usize, output: &pb::ArtifactRef) -> Result<()> {
        let phase = self.phase_mut(index)?;
        phase.output_json = Some(ref_json(output));
        let body = pb::run_event::Body::ArtifactAccepted(pb::ArtifactAccepted {
            phase_id: phase.phase_id.clone(),
            attempt: phase.attempt,
            artifact: Some(output.clone()),
        });
        self.events.push(body);
        Ok(())
    }

    /// Adds a reviewer's comment to what the phase's next attempt is given.
    pub fn add_feedback(&mut self, index: usize, comment: &str) -> Result<()> {
        let mut feedback = self.feedback(index)?;
        feedback.push(comment.to_owned());
        self.phase_mut(index)?.feedback_json = serde_json::to_string(&feedback)
            .map_err(|error| Error::Corrupt(format!("feedback does not encode: {error}")))?;
        Ok(())
    }

    /// Marks an attempt's task done on save: its report was applied (or
    /// its lease ended), so nothing leases or reports it again.
    pub fn finish_task(&mut self, key: &TaskKey) {
        self.finished.push(key.clone());
    }

    /// Withdraws a phase's queued or leased task on save.
    pub fn withdraw_task(&mut self, index: usize) -> Result<()> {
        let phase_id = self.phase(index)?.phase_id.clone();
        self.withdrawn.insert(phase_id);
        Ok(())
    }

    /// Says whether a phase's row is marked to be saved, for the engine's
    /// tests.
    #[cfg(test)]
    pub(crate) fn is_marked(&self, index: usize) -> bool {
        self.dirty.contains(&index)
    }

    /// How many phase rows the change loaded, for the engine's tests.
    #[cfg(test)]
    pub(crate) fn loaded(&self) -> usize {
        self.phases.len()
    }

    /// What the change has recorded so far, for the engine's tests.
    #[cfg(test)]
    pub(crate) fn recorded(&self) -> (&[pb::run_event::Body], &[Message], &BTreeSet<String>) {
        (&self.events, &self.outbox, &self.withdrawn)
    }

    /// Saves everything changed in the caller's transaction (inserting the
    /// rows of a run being created), appending the events under the next
    /// sequence numbers of the run.
    pub async fn save<C: WriteRun>(mut self, c: &mut C) -> Result<Saved> {
        let status = self.tally.status(self.run.cancelled);
        if status != self.status_before {
            self.events.push(pb::run_event::Body::RunStatusChanged(
                pb::RunStatusChanged {
                    from: convert::run_status(self.status_before) as i32,
                    to: convert::run_status(status) as i32,
                },
            ));
            self.run.status = status.as_str().to_owned();
        }
        let mut saved = Saved {
            events: Vec::with_capacity(self.events.len()),
            queued_kinds: self
                .new_tasks
                .iter()
                .filter(|t| t.state == crate::storage::models::task_state::QUEUED)
                .map(|t| t.kind.clone())
                .collect(),
            outbox: !self.outbox.is_empty(),
        };
        let mut rows = Vec::with_capacity(self.events.len());
        for body in self.events.drain(..) {
            self.run.last_seq += 1;
            let event = pb::RunEvent {
                run_id: self.run.id.clone(),
                seq: self.run.last_seq,
                time: orchestra_kit::time::timestamp(self.now),
                body: Some(body),
            };
            rows.push(EventRow {
                run_id: self.run.id.clone(),
                seq: self.run.last_seq,
                at: self.now,
                body: event.encode_to_vec(),
            });
            saved.events.push(event);
        }
        self.run.updated_at = self.now;
        self.run.phase_tally = self.tally.to_json();
        let mut write = RunWrite {
            events: rows,
            withdrawn: self
                .withdrawn
                .iter()
                .map(|phase_id| (self.run.id.clone(), phase_id.clone()))
                .collect(),
            finished: self.finished,
            tasks: self.new_tasks,
            outbox: self.outbox,
            ..RunWrite::default()
        };
        if let Some(mut row) = self.creating.take() {
            row.status.clone_from(&self.run.status);
            row.last_seq = self.run.last_seq;
            row.updated_at = self.run.updated_at;
            row.phase_tally.clone_from(&self.run.phase_tally);
            write.created = Some(row);
            write.new_phases = self.phases.into_values().collect();
        } else {
            write.phases = self
                .dirty
                .iter()
                .filter_map(|index| self.phases.remove(index))
                .collect();
            write.run = Some(self.run.clone());
        }
        if !saved.events.is_empty() || !saved.queued_kinds.is_empty() || saved.outbox {
            write.change = Some(Change {
                run_id: self.run.id.clone(),
                events: saved
                    .events
                    .first()
                    .zip(saved.events.last())
                    .map(|(f, l)| (f.seq, l.seq)),
            });
        }
        c.write_run(write).await?;
        Ok(saved)
    }
}

/// A phase position as the `phases.idx` column stores it.
fn as_idx(index: usize) -> Result<i32> {
    i32::try_from(index).map_err(|_| Error::Corrupt(format!("phase position {index}")))
}
