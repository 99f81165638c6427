//! Moving a run forward in memory: one phase by one event of the
//! transition table, readying phases whose needs are met, and starting
//! attempts.

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
            Error::FailedPrecondition(format!("{}: {e}", self.phases[index].phase_id))
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
                self.close_human_task(index, why, reason);
            }
        }
        let now = self.now;
        let phase = self.phase_mut(index);
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
        Ok(to)
    }

    /// Readies every blocked phase whose needs are met and, when the run
    /// auto-advances, dispatches every ready one; repeats until nothing moves.
    pub fn advance(&mut self) -> Result<()> {
        if self.run.cancelled {
            return Ok(());
        }
        loop {
            let mut moved = false;
            for index in 0..self.phases.len() {
                let state = self.state(index)?;
                if state == PhaseState::Blocked && self.needs_met(index)? {
                    self.apply(index, PhaseEvent::DependenciesMet, "", None)?;
                    moved = true;
                }
                if self.state(index)? == PhaseState::Ready && self.run.auto_advance {
                    self.dispatch(index)?;
                    moved = true;
                }
            }
            if !moved {
                return Ok(());
            }
        }
    }

    fn needs_met(&self, index: usize) -> Result<bool> {
        let id = self.phases[index].phase_id.clone();
        for need in self.graph.needs(&id) {
            let need_index = self.index(need)?;
            if !self.state(need_index)?.satisfies_dependency() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Starts a new attempt of a READY phase: queues a task for machine
    /// phases, opens a human task for human ones.
    pub fn dispatch(&mut self, index: usize) -> Result<()> {
        let kind = self.spec(index)?.kind.clone();
        self.begin_attempt(index);
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
        self.begin_attempt(index);
        self.set_error(index, reason);
        let attempt = u32::try_from(self.phases[index].attempt).unwrap_or(1);
        let delay = i64::try_from(policy.delay_before(attempt).as_micros()).unwrap_or(0);
        self.queue_task(index, self.now + delay)
    }

    fn begin_attempt(&mut self, index: usize) {
        let now = self.now;
        let phase = self.phase_mut(index);
        phase.attempt += 1;
        phase.started_at = now;
        phase.finished_at = 0;
        phase.error.clear();
        phase.output_json = None;
        phase.executor_id = None;
        phase.human_task_id = None;
    }

    fn queue_task(&mut self, index: usize, available_at: i64) -> Result<()> {
        let phase = &self.phases[index];
        self.new_tasks.push(TaskRow {
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
        });
        Ok(())
    }
}

/// The transition table's class for a phase kind. Loops move like machine
/// phases; unknown kinds cannot be stored (validation refuses them).
fn class_of(kind: &PhaseKind) -> PhaseClass {
    kind.class().unwrap_or(PhaseClass::Machine)
}
