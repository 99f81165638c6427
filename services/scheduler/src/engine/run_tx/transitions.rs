//! Moving a run forward in memory: one phase by one event of the
//! transition table, readying phases whose needs are met, and starting
//! attempts.
//!
//! Each move keeps the run's tally and the children's unmet-needs counts
//! current, so readying a phase looks at that phase alone, never at its
//! siblings: a join of 10,000 children costs one counter per child.

use orchestra_model::{PhaseClass, PhaseEvent, PhaseKind, PhaseState, transition};
use orchestra_proto::v1 as pb;

use super::RunTx;
use crate::convert;
use crate::error::{Error, Result};
use crate::storage::models::{TaskRow, task_state};

impl RunTx {
    /// Moves a phase by one event of the transition table, recording it.
    pub fn apply(
        &mut self,
        index: usize,
        event: PhaseEvent,
        reason: &str,
        actor: Option<pb::Actor>,
    ) -> Result<PhaseState> {
        let from = self.state(index)?;
        let class = class_of(&self.spec(index)?.kind);
        let to = transition(class, from, event).map_err(|e| {
            let phase_id = self
                .phase(index)
                .map(|p| p.phase_id.clone())
                .unwrap_or_default();
            Error::FailedPrecondition(format!("{phase_id}: {e}"))
        })?;
        if matches!(
            from,
            PhaseState::WaitingForHuman | PhaseState::ReadyForReview
        ) {
            let why = match event {
                PhaseEvent::Cancel => Some("the run was cancelled"),
                PhaseEvent::Rewind => Some("the phase was sent back for a new attempt"),
                _ => None,
            };
            if let Some(why) = why {
                self.close_human_task(index, why, reason)?;
            }
        }
        let now = self.now;
        let phase = self.phase_mut(index)?;
        phase.state = to.as_str().to_owned();
        if to.is_terminal() {
            phase.finished_at = now;
        }
        let body = pb::run_event::Body::PhaseStateChanged(pb::PhaseStateChanged {
            phase_id: phase.phase_id.clone(),
            attempt: phase.attempt,
            from: convert::phase_state(from) as i32,
            to: convert::phase_state(to) as i32,
            reason: reason.to_owned(),
            actor,
        });
        self.events.push(body);
        self.tally.moved(from, to);
        if from.satisfies_dependency() != to.satisfies_dependency() {
            self.needs_changed(index, to.satisfies_dependency())?;
        }
        Ok(to)
    }

    /// A phase now satisfies its children's need of it, or no longer does:
    /// each child's count of unmet needs follows, and the child is looked at
    /// by the next [`RunTx::advance`].
    fn needs_changed(&mut self, index: usize, satisfied: bool) -> Result<()> {
        let children = self.frozen.children(index).to_vec();
        for child in children {
            let run_id = self.run.id.clone();
            let row = self.phase_mut(child)?;
            row.unmet_needs += if satisfied { -1 } else { 1 };
            if row.unmet_needs < 0 {
                return Err(Error::Corrupt(format!(
                    "run {run_id} phase {}: more needs met than it has",
                    row.phase_id
                )));
            }
            self.candidates.insert(child);
        }
        Ok(())
    }

    /// Readies every blocked phase whose needs are met and, when the run
    /// auto-advances, dispatches every ready one; repeats until nothing moves.
    /// With every phase loaded it looks at all of them; otherwise at those
    /// whose needs changed in this unit of work.
    pub fn advance(&mut self) -> Result<()> {
        if self.run.cancelled {
            return Ok(());
        }
        let mut look_at = if self.all_loaded {
            (0..self.frozen.len()).collect()
        } else {
            std::mem::take(&mut self.candidates)
        };
        while !look_at.is_empty() {
            for index in look_at {
                if self.state(index)? == PhaseState::Blocked && self.phase(index)?.unmet_needs == 0
                {
                    self.apply(index, PhaseEvent::DependenciesMet, "", None)?;
                }
                if self.state(index)? == PhaseState::Ready && self.run.auto_advance {
                    self.dispatch(index)?;
                }
            }
            look_at = std::mem::take(&mut self.candidates);
        }
        Ok(())
    }

    /// Starts a new attempt of a READY phase: queues a task for machine
    /// phases, opens a human task for human ones.
    pub fn dispatch(&mut self, index: usize) -> Result<()> {
        let kind = self.spec(index)?.kind.clone();
        self.begin_attempt(index)?;
        self.apply(index, PhaseEvent::Dispatch, "", None)?;
        match kind {
            PhaseKind::Llm | PhaseKind::Function => self.queue_task(index, self.now),
            PhaseKind::HumanInput | PhaseKind::HumanReview => self.open_human_task(index),
            // A loop block finishes when its body has (the graph makes it
            // need the body's last phases); it has no work of its own.
            PhaseKind::Loop | PhaseKind::Unknown(_) => {
                self.apply(index, PhaseEvent::Start, "", None)?;
                self.apply(index, PhaseEvent::Complete, "loop body finished", None)?;
                Ok(())
            }
        }
    }

    /// Requeues a running machine phase as a new attempt after its backoff.
    pub fn requeue(&mut self, index: usize, reason: &str) -> Result<()> {
        let policy = self.spec(index)?.retry_policy();
        self.apply(index, PhaseEvent::Requeue, reason, None)?;
        self.begin_attempt(index)?;
        self.set_error(index, reason)?;
        let attempt = u32::try_from(self.phase(index)?.attempt).unwrap_or(1);
        let delay = i64::try_from(policy.delay_before(attempt).as_micros()).unwrap_or(0);
        self.queue_task(index, self.now + delay)
    }

    fn begin_attempt(&mut self, index: usize) -> Result<()> {
        let now = self.now;
        let phase = self.phase_mut(index)?;
        phase.attempt += 1;
        phase.started_at = now;
        phase.finished_at = 0;
        phase.error.clear();
        phase.output_json = None;
        phase.executor_id = None;
        phase.human_task_id = None;
        Ok(())
    }

    fn queue_task(&mut self, index: usize, available_at: i64) -> Result<()> {
        let phase = self.phase(index)?;
        let task = TaskRow {
            run_id: phase.run_id.clone(),
            phase_id: phase.phase_id.clone(),
            attempt: phase.attempt,
            kind: self.spec(index)?.kind.as_str().to_owned(),
            state: task_state::QUEUED.to_owned(),
            available_at,
            lease_id: None,
            executor_id: None,
            lease_deadline: 0,
            created_at: self.now,
        };
        self.new_tasks.push(task);
        Ok(())
    }
}

/// The transition table's class for a phase kind. Loops move like machine
/// phases; unknown kinds cannot be stored (validation refuses them).
fn class_of(kind: &PhaseKind) -> PhaseClass {
    kind.class().unwrap_or(PhaseClass::Machine)
}
