//! One change to one run, as a unit of work: load the run under its row
//! lock, move phases through the transition table in memory (each move
//! recording its event), then save phases, events, queued tasks and outbox
//! hand-offs together in the caller's transaction.
//!
//! Because every change to a run takes the same row lock first, two parents
//! that finish at the same instant are applied one after the other, and the
//! second sees the first's result: their child is readied exactly once.
//!
//! - this module: loading, reading, the change markers and saving; the
//!   rows are private, so every write goes through a method that marks
//!   what it changed and nothing changed can go unsaved;
//! - [`transitions`]: moving phases and the graph forward;
//! - [`handoffs`]: the review service's messages for human phases.

mod handoffs;
mod transitions;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use orchestra_db::outbox::{Message, OutboxStore};
use orchestra_model::{Graph, Phase, PhaseState, RunStatus};
use orchestra_proto::v1 as pb;
use prost::Message as _;

use crate::convert::{self, parse_inputs, parse_ref, ref_json};
use crate::error::{Error, Result};
use crate::storage::changes::{Change, Notify};
use crate::storage::events::EventStore;
use crate::storage::models::{EventRow, PhaseRow, RunRow, TaskRow};
use crate::storage::phases::PhaseStore;
use crate::storage::runs::RunStore;
use crate::storage::tasks::TaskStore;

pub use handoffs::{CLOSE_HUMAN_TASK, OPEN_HUMAN_TASK};

/// What saving a unit of work set in motion, so the engine can wake waiters
/// and hand the run's watchers its events once committed.
#[derive(Debug, Default, Clone)]
pub struct Saved {
    /// The events appended, in order.
    pub events: Vec<pb::RunEvent>,
    /// Tasks were queued.
    pub tasks: bool,
    /// Hand-offs were added to the outbox.
    pub outbox: bool,
}

/// A run loaded for change (or being created), with everything the change
/// has recorded so far.
pub struct RunTx {
    /// The run row; saved at the end.
    run: RunRow,
    /// Its phases in declaration order.
    phases: Vec<PhaseRow>,
    /// Whether the rows are new (inserted on save) or loaded (updated).
    creating: bool,
    graph: Graph,
    /// Each phase row's definition, by the row's index.
    specs: Vec<Phase>,
    /// Each phase id's row index.
    indices: HashMap<String, usize>,
    now: i64,
    status_before: RunStatus,
    events: Vec<pb::run_event::Body>,
    /// The phase rows changed, by index.
    dirty: BTreeSet<usize>,
    new_tasks: Vec<TaskRow>,
    withdrawn: BTreeSet<String>,
    outbox: Vec<Message>,
}

impl RunTx {
    /// Locks and loads a run; NOT_FOUND when it does not exist.
    pub async fn load<C>(c: &mut C, run_id: &str, now: i64) -> Result<RunTx>
    where
        C: RunStore + PhaseStore,
    {
        if c.lock_run(run_id, now).await? == 0 {
            return Err(Error::NotFound(format!("run {run_id} does not exist")));
        }
        let run = c
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("run {run_id} does not exist")))?;
        let phases = c.load_phases(run_id).await?;
        RunTx::wrap(run, phases, now, false)
    }

    /// Wraps a run that is being created (its rows not yet stored).
    pub fn new(run: RunRow, phases: Vec<PhaseRow>, now: i64) -> Result<RunTx> {
        RunTx::wrap(run, phases, now, true)
    }

    fn wrap(run: RunRow, phases: Vec<PhaseRow>, now: i64, creating: bool) -> Result<RunTx> {
        let template = convert::parse_spec(&run.spec_json)?;
        let graph = Graph::new(&template);
        let status_before = convert::stored_status(&run)?;
        let by_id: HashMap<&str, &Phase> = template
            .walk_phases()
            .into_iter()
            .map(|(_, p)| (p.id.as_str(), p))
            .collect();
        let specs = phases
            .iter()
            .map(|row| {
                by_id
                    .get(row.phase_id.as_str())
                    .map(|p| (*p).clone())
                    .ok_or_else(|| {
                        Error::Corrupt(format!(
                            "phase {} is not in the frozen template",
                            row.phase_id
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        let indices = phases
            .iter()
            .enumerate()
            .map(|(i, row)| (row.phase_id.clone(), i))
            .collect();
        Ok(RunTx {
            run,
            phases,
            creating,
            graph,
            specs,
            indices,
            now,
            status_before,
            events: Vec::new(),
            dirty: BTreeSet::new(),
            new_tasks: Vec::new(),
            withdrawn: BTreeSet::new(),
            outbox: Vec::new(),
        })
    }

    /// The run as changed so far.
    pub fn run(&self) -> &RunRow {
        &self.run
    }

    /// How many phases the run has; indices run from 0 below this.
    pub fn phase_count(&self) -> usize {
        self.phases.len()
    }

    /// A phase's row as changed so far.
    pub fn phase(&self, index: usize) -> &PhaseRow {
        &self.phases[index]
    }

    /// The index of a phase; NOT_FOUND when the run has none of that id.
    pub fn index(&self, phase_id: &str) -> Result<usize> {
        self.indices
            .get(phase_id)
            .copied()
            .ok_or_else(|| Error::NotFound(format!("run {} has no phase {phase_id}", self.run.id)))
    }

    /// A phase's definition in the frozen template.
    pub fn spec(&self, index: usize) -> Result<&Phase> {
        self.specs
            .get(index)
            .ok_or_else(|| Error::Corrupt(format!("no phase at index {index}")))
    }

    /// A phase's current state.
    pub fn state(&self, index: usize) -> Result<PhaseState> {
        convert::stored_state(&self.phases[index])
    }

    /// The phases downstream of one, in declaration order.
    pub fn descendants(&self, phase_id: &str) -> Vec<String> {
        self.graph
            .descendants(phase_id)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Says whether `ancestor` is upstream of `phase_id`.
    pub fn is_ancestor(&self, ancestor: &str, phase_id: &str) -> bool {
        self.graph.is_ancestor(ancestor, phase_id)
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
            if let Some(json) = &self.phases[source_index].output_json {
                resolved.insert(local.clone(), parse_ref(json)?);
            }
        }
        Ok(resolved)
    }

    /// The reviewers' comments a phase was sent back with, oldest first.
    pub fn feedback(&self, index: usize) -> Result<Vec<String>> {
        let phase = &self.phases[index];
        serde_json::from_str(&phase.feedback_json).map_err(|error| {
            Error::Corrupt(format!(
                "run {} phase {}: feedback does not parse: {error}",
                phase.run_id, phase.phase_id
            ))
        })
    }

    /// A phase's row for a change, marked to be saved.
    fn phase_mut(&mut self, index: usize) -> &mut PhaseRow {
        self.dirty.insert(index);
        &mut self.phases[index]
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
    pub fn set_executor(&mut self, index: usize, executor_id: Option<String>) {
        self.phase_mut(index).executor_id = executor_id;
    }

    /// Records why a phase's attempt failed.
    pub fn set_error(&mut self, index: usize, error: &str) {
        error.clone_into(&mut self.phase_mut(index).error);
    }

    /// Records a phase's accepted output.
    pub fn accept_output(&mut self, index: usize, output: &pb::ArtifactRef) {
        let phase = self.phase_mut(index);
        phase.output_json = Some(ref_json(output));
        let body = pb::run_event::Body::ArtifactAccepted(pb::ArtifactAccepted {
            phase_id: phase.phase_id.clone(),
            attempt: phase.attempt,
            artifact: Some(output.clone()),
        });
        self.events.push(body);
    }

    /// Adds a reviewer's comment to what the phase's next attempt is given.
    pub fn add_feedback(&mut self, index: usize, comment: &str) -> Result<()> {
        let mut feedback = self.feedback(index)?;
        feedback.push(comment.to_owned());
        self.phase_mut(index).feedback_json = serde_json::to_string(&feedback)
            .map_err(|error| Error::Corrupt(format!("feedback does not encode: {error}")))?;
        Ok(())
    }

    /// Withdraws a phase's queued or leased task on save.
    pub fn withdraw_task(&mut self, index: usize) {
        self.withdrawn.insert(self.phases[index].phase_id.clone());
    }

    /// Says whether a phase's row is marked to be saved, for the engine's
    /// tests.
    #[cfg(test)]
    pub(crate) fn is_marked(&self, index: usize) -> bool {
        self.dirty.contains(&index)
    }

    /// What the change has recorded so far, for the engine's tests.
    #[cfg(test)]
    pub(crate) fn recorded(&self) -> (&[pb::run_event::Body], &[Message], &BTreeSet<String>) {
        (&self.events, &self.outbox, &self.withdrawn)
    }

    /// Saves everything changed in the caller's transaction (inserting the
    /// rows of a run being created), appending the events under the next
    /// sequence numbers of the run.
    pub async fn save<C>(mut self, c: &mut C) -> Result<Saved>
    where
        C: RunStore + PhaseStore + EventStore + TaskStore + OutboxStore + Notify,
    {
        let states = self
            .phases
            .iter()
            .map(convert::stored_state)
            .collect::<Result<Vec<_>>>()?;
        let status = if states.iter().all(|s| *s == PhaseState::Blocked) && !self.run.cancelled {
            RunStatus::Pending
        } else {
            RunStatus::derive(states, self.run.cancelled)
        };
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
            tasks: !self.new_tasks.is_empty(),
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
        if self.creating {
            c.insert_run(self.run.clone()).await?;
            c.insert_phases(self.phases.clone()).await?;
        } else {
            for index in &self.dirty {
                c.update_phase(&self.phases[*index]).await?;
            }
            c.update_run(&self.run).await?;
        }
        c.insert_events(rows).await?;
        for phase_id in &self.withdrawn {
            c.cancel_phase_tasks(&self.run.id, phase_id).await?;
        }
        for task in self.new_tasks {
            c.insert_task(task).await?;
        }
        for message in self.outbox {
            c.enqueue(message).await?;
        }
        if !saved.events.is_empty() || saved.tasks || saved.outbox {
            let change = Change {
                run_id: self.run.id.clone(),
                events: saved
                    .events
                    .first()
                    .zip(saved.events.last())
                    .map(|(f, l)| (f.seq, l.seq)),
            };
            c.notify_changed(&change).await?;
        }
        Ok(saved)
    }
}
