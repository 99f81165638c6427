//! Applying what people did on human phases: a submitted form, an opened
//! review, a decision; and sending upstream phases back for a new attempt.

use orchestra_model::{OnReject, PhaseEvent, PhaseKind, PhaseState};
use orchestra_proto::v1 as pb;

use super::run_tx::RunTx;
use super::{Engine, HumanResolution};
use crate::error::{Error, Result};
use crate::storage::TaskKey;

impl Engine {
    /// Applies what a person did on a human phase. Idempotent: a report for
    /// an attempt already resolved or superseded changes nothing.
    pub async fn resolve_human(&self, resolution: HumanResolution) -> Result<()> {
        let run_id = resolution.key.run_id.clone();
        self.change_run(&run_id, move |tx| apply_resolution(tx, resolution))
            .await
    }

    /// Marks a review phase ready for review once the review service has
    /// accepted its task. Idempotent, like every resolution: the outbox may
    /// deliver the task again after a crash.
    pub async fn review_opened(&self, key: TaskKey) -> Result<()> {
        self.resolve_human(HumanResolution {
            key,
            resolution: pb::HumanResolution::ReviewOpened,
            comment: String::new(),
            actor: None,
            output: None,
            retry_phases: Vec::new(),
        })
        .await
    }
}

fn apply_resolution(tx: &mut RunTx, r: HumanResolution) -> Result<()> {
    use pb::HumanResolution as H;
    let index = tx.index(&r.key.phase_id)?;
    let attempt = tx.phases[index].attempt;
    if r.key.attempt < attempt {
        return Ok(()); // superseded by a newer attempt
    }
    if r.key.attempt > attempt {
        return Err(Error::FailedPrecondition(format!(
            "phase {} has no attempt {} yet",
            r.key.phase_id, r.key.attempt
        )));
    }
    let state = tx.state(index)?;
    let actor = r.actor.clone();
    match r.resolution {
        H::ReviewOpened => {
            if state == PhaseState::WaitingForHuman {
                tx.apply(index, PhaseEvent::OpenReview, "", None)?;
            }
        }
        H::Submitted => {
            if state == PhaseState::WaitingForHuman {
                tx.apply(index, PhaseEvent::Complete, "submitted", actor)?;
                if let Some(output) = &r.output {
                    tx.accept_output(index, output);
                }
            }
        }
        H::Approved => {
            open_review_before_decision(tx, index, state)?;
            if tx.state(index)? == PhaseState::ReadyForReview {
                tx.apply(index, PhaseEvent::Approve, &r.comment, actor)?;
                if let Some(output) = &r.output {
                    tx.accept_output(index, output);
                }
            }
        }
        H::Rejected | H::Retry => {
            open_review_before_decision(tx, index, state)?;
            if tx.state(index)? != PhaseState::ReadyForReview {
                return Ok(()); // already decided
            }
            let on_reject = tx.spec(index)?.on_reject.clone();
            let retry_phases = match (r.resolution, on_reject) {
                (H::Retry, _) if !r.retry_phases.is_empty() => r.retry_phases.clone(),
                (_, Some(OnReject::Retry { phases })) => phases,
                (H::Retry, _) => tx.spec(index)?.needs.clone(),
                _ => Vec::new(),
            };
            tx.apply(index, PhaseEvent::Reject, &r.comment, actor)?;
            if let Some(output) = &r.output {
                tx.accept_output(index, output);
            }
            if !retry_phases.is_empty() {
                send_back(tx, index, &retry_phases, &r.comment)?;
            }
        }
        H::Unspecified => {
            return Err(Error::invalid_field("resolution", "must be set"));
        }
    }
    Ok(())
}

/// A decision can reach the scheduler before it has recorded that the
/// review opened (the review service answered OpenTask, a person decided,
/// and its outbox delivered first; or the scheduler crashed in between): a
/// decision proves the task was open, so the phase passes through
/// READY_FOR_REVIEW first.
fn open_review_before_decision(tx: &mut RunTx, index: usize, state: PhaseState) -> Result<()> {
    if state == PhaseState::WaitingForHuman {
        tx.apply(index, PhaseEvent::OpenReview, "", None)?;
    }
    Ok(())
}

/// Sends upstream phases back for a new attempt with the reviewer's comment
/// as feedback, and rewinds everything downstream of them.
fn send_back(tx: &mut RunTx, review: usize, phases: &[String], comment: &str) -> Result<()> {
    let review_id = tx.phases[review].phase_id.clone();
    for phase_id in phases {
        if !tx.is_ancestor(phase_id, &review_id) {
            return Err(Error::invalid_field(
                "retry_phases",
                format!("{phase_id} is not upstream of {review_id}"),
            ));
        }
    }
    let mut rewind = std::collections::BTreeSet::new();
    for phase_id in phases {
        rewind.extend(tx.descendants(phase_id));
    }
    for phase_id in phases {
        rewind.remove(phase_id);
    }
    for phase_id in &rewind {
        let index = tx.index(phase_id)?;
        if tx.state(index)? != PhaseState::Blocked {
            tx.apply(
                index,
                PhaseEvent::Rewind,
                "an upstream phase was sent back",
                None,
            )?;
            tx.withdraw_task(index);
        }
    }
    for phase_id in phases {
        let index = tx.index(phase_id)?;
        let mut feedback: Vec<String> =
            serde_json::from_str(&tx.phases[index].feedback_json).unwrap_or_default();
        if !comment.is_empty() {
            feedback.push(comment.to_owned());
        }
        tx.phases[index].feedback_json = serde_json::to_string(&feedback).unwrap_or_default();
        let kind = tx.spec(index)?.kind.clone();
        let state = tx.state(index)?;
        if state == PhaseState::Blocked {
            continue;
        }
        if matches!(kind, PhaseKind::Llm | PhaseKind::Function) && !state.is_terminal() {
            tx.withdraw_task(index);
            tx.apply(index, PhaseEvent::Rewind, "sent back by review", None)?;
        } else {
            tx.apply(index, PhaseEvent::Retry, comment, None)?;
        }
    }
    Ok(())
}
