//! Applying what people did on human phases: a submitted form, an opened
//! review, a decision; and sending upstream phases back for a new attempt.

use orchestra_model::{OnReject, PhaseEvent, PhaseKind, PhaseState};
use orchestra_proto::v1 as pb;

use super::run_tx::RunTx;
use super::{Engine, HumanResolution, in_run_tx};
use crate::error::{Error, Result};
use crate::storage::tasks::TaskKey;
use orchestra_kit::error::InvalidArgument;

impl Engine {
    /// Applies what a person did on a human phase. Idempotent: a report for
    /// an attempt already resolved or superseded changes nothing.
    pub async fn resolve_human(&self, resolution: HumanResolution) -> Result<()> {
        let run_id = resolution.key.run_id.clone();
        in_run_tx!(self, run_id, |tx| -> () {
            apply_resolution(tx, resolution)?;
            tx.advance()
        });
        Ok(())
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
    let attempt = tx.phase(index)?.attempt;
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
                    tx.accept_output(index, output)?;
                }
            }
        }
        H::Approved => {
            open_review_before_decision(tx, index, state)?;
            if tx.state(index)? == PhaseState::ReadyForReview {
                tx.apply(index, PhaseEvent::Approve, &r.comment, actor)?;
                if let Some(output) = &r.output {
                    tx.accept_output(index, output)?;
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
                tx.accept_output(index, output)?;
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
    let review_id = tx.phase(review)?.phase_id.clone();
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
            tx.withdraw_task(index)?;
        }
    }
    for phase_id in phases {
        let index = tx.index(phase_id)?;
        if !comment.is_empty() {
            tx.add_feedback(index, comment)?;
        }
        let kind = tx.spec(index)?.kind.clone();
        let state = tx.state(index)?;
        if state == PhaseState::Blocked {
            continue;
        }
        if matches!(kind, PhaseKind::Llm | PhaseKind::Function) && !state.is_terminal() {
            tx.withdraw_task(index)?;
            tx.apply(index, PhaseEvent::Rewind, "sent back by review", None)?;
        } else {
            tx.apply(index, PhaseEvent::Retry, comment, None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Human resolutions applied to a run in memory, through the same
    //! [`RunTx`] the engine saves: every resolution in every state of a
    //! review phase, send-backs that nest, and a cancel while a task is
    //! leased; and every change to a phase marked to be saved.

    use orchestra_model::{PhaseState, Template};
    use orchestra_proto::v1 as pb;

    use super::*;
    use crate::engine::run_tx::CLOSE_HUMAN_TASK;
    use crate::engine::runs::cancel;
    use crate::storage::models::{PhaseRow, RunRow};

    /// context (a form) → draft (a function) → review → publish.
    fn template() -> Template {
        serde_json::from_value(serde_json::json!({
            "name": "t",
            "phases": [
                {"id": "context", "kind": "human_input",
                 "output": {"name": "context", "schema": {"type": "object"}}},
                {"id": "draft", "kind": "function", "function": "json.merge",
                 "needs": ["context"], "inputs": {"c": "context.context"},
                 "output": {"name": "draft"}},
                {"id": "review", "kind": "human_review", "needs": ["draft"],
                 "inputs": {"d": "draft.draft"}, "candidates": ["d"],
                 "on_reject": {"action": "retry", "phases": ["draft"]},
                 "output": {"name": "decision"}},
                {"id": "publish", "kind": "function", "function": "json.merge",
                 "needs": ["review"], "inputs": {"d": "draft.draft"}},
            ]
        }))
        .expect("template")
    }

    /// A run whose phases stand in the given states, each at attempt 1.
    fn run_in(states: [PhaseState; 4]) -> RunTx {
        let template = template();
        let run = RunRow {
            id: "run".into(),
            template_id: "tid".into(),
            template_name: "t".into(),
            template_version: 1,
            spec_json: serde_json::to_string(&template).expect("json"),
            status: orchestra_model::RunStatus::Running.as_str().into(),
            seed: 1,
            auto_advance: true,
            cancelled: false,
            inputs_json: "{}".into(),
            request_id: None,
            last_seq: 0,
            created_at: 0,
            updated_at: 0,
            phase_tally: String::new(),
        };
        let phases = template
            .phases
            .iter()
            .zip(states)
            .enumerate()
            .map(|(idx, (phase, state))| PhaseRow {
                run_id: "run".into(),
                phase_id: phase.id.clone(),
                idx: idx as i32,
                kind: phase.kind.as_str().to_owned(),
                state: state.as_str().to_owned(),
                attempt: 1,
                started_at: 0,
                finished_at: 0,
                error: String::new(),
                output_json: None,
                human_task_id: matches!(
                    state,
                    PhaseState::WaitingForHuman | PhaseState::ReadyForReview
                )
                .then(|| format!("task-{}", phase.id)),
                executor_id: None,
                feedback_json: "[]".into(),
                // Counted by RunTx::new from the states.
                unmet_needs: 0,
            })
            .collect();
        let frozen =
            std::sync::Arc::new(crate::engine::frozen::Frozen::new(&template).expect("frozen"));
        RunTx::new(run, phases, frozen, 1_000).expect("run")
    }

    fn resolution(kind: pb::HumanResolution, attempt: i32) -> HumanResolution {
        HumanResolution {
            key: TaskKey {
                run_id: "run".into(),
                phase_id: "review".into(),
                attempt,
            },
            resolution: kind,
            comment: "tighter copy".into(),
            actor: None,
            output: Some(pb::ArtifactRef {
                artifact_id: "decision".into(),
                version: 1,
                ..Default::default()
            }),
            retry_phases: Vec::new(),
        }
    }

    const REVIEW: usize = 2;
    const DRAFT: usize = 1;

    fn rows_of(tx: &RunTx) -> Vec<PhaseRow> {
        (0..tx.phase_count())
            .map(|i| tx.phase(i).expect("loaded").clone())
            .collect()
    }

    /// Every phase row that differs from `before` is marked to be saved.
    fn assert_changes_saved(before: &[PhaseRow], tx: &RunTx, case: &str) {
        for (index, row) in before.iter().enumerate() {
            if format!("{row:?}") != format!("{:?}", tx.phase(index).expect("loaded")) {
                assert!(
                    tx.is_marked(index),
                    "{case}: phase {} changed but would not be saved",
                    row.phase_id
                );
            }
        }
    }

    #[test]
    fn every_resolution_in_every_review_state() {
        use PhaseState::*;
        use pb::HumanResolution as H;
        // (resolution, review state before, review state after or None for
        // a refusal, whether draft is sent back). A send-back rewinds the
        // review itself to BLOCKED: it waits for the draft's next attempt.
        let table: &[(H, PhaseState, Option<PhaseState>, bool)] = &[
            (H::ReviewOpened, Blocked, Some(Blocked), false),
            (
                H::ReviewOpened,
                WaitingForHuman,
                Some(ReadyForReview),
                false,
            ),
            (H::ReviewOpened, ReadyForReview, Some(ReadyForReview), false),
            (H::ReviewOpened, Approved, Some(Approved), false),
            (H::ReviewOpened, Cancelled, Some(Cancelled), false),
            (H::Approved, WaitingForHuman, Some(Approved), false),
            (H::Approved, ReadyForReview, Some(Approved), false),
            (H::Approved, Approved, Some(Approved), false),
            (H::Approved, Rejected, Some(Rejected), false),
            (H::Approved, Cancelled, Some(Cancelled), false),
            (H::Rejected, WaitingForHuman, Some(Blocked), true),
            (H::Rejected, ReadyForReview, Some(Blocked), true),
            (H::Rejected, Approved, Some(Approved), false),
            (H::Rejected, Rejected, Some(Rejected), false),
            (H::Rejected, Cancelled, Some(Cancelled), false),
            (H::Retry, ReadyForReview, Some(Blocked), true),
            (H::Retry, Approved, Some(Approved), false),
            (H::Retry, Cancelled, Some(Cancelled), false),
            // A form's resolution on a review is a bug upstream: refused.
            (H::Submitted, WaitingForHuman, None, false),
            (H::Submitted, ReadyForReview, Some(ReadyForReview), false),
            (H::Unspecified, ReadyForReview, None, false),
        ];
        for (kind, before, after, sent_back) in table {
            let mut tx = run_in([
                Completed,
                Completed,
                *before,
                if *before == Approved { Ready } else { Blocked },
            ]);
            let rows = rows_of(&tx);
            let outcome = apply_resolution(&mut tx, resolution(*kind, 1));
            let case = format!("{kind:?} in {before}");
            assert_changes_saved(&rows, &tx, &case);
            match after {
                None => assert!(outcome.is_err(), "{case}: refused"),
                Some(after) => {
                    outcome.unwrap_or_else(|e| panic!("{case}: {e}"));
                    assert_eq!(tx.state(REVIEW).expect("state"), *after, "{case}");
                }
            }
            let draft_moved = tx.state(DRAFT).expect("state") != Completed;
            assert_eq!(draft_moved, *sent_back, "{case}: draft sent back");
            if *sent_back {
                assert_eq!(
                    tx.feedback(DRAFT).expect("feedback"),
                    ["tighter copy"],
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn every_write_to_a_phase_is_saved() {
        type Write = fn(&mut RunTx);
        let writes: [(&str, Write); 4] = [
            ("executor", |tx| {
                tx.set_executor(DRAFT, Some("e1".into())).expect("executor")
            }),
            ("error", |tx| tx.set_error(DRAFT, "boom").expect("error")),
            ("feedback", |tx| {
                tx.add_feedback(DRAFT, "more").expect("feedback")
            }),
            ("output", |tx| {
                tx.accept_output(DRAFT, &pb::ArtifactRef::default())
                    .expect("output")
            }),
        ];
        for (case, write) in writes {
            let mut tx = run_in([
                PhaseState::Completed,
                PhaseState::Running,
                PhaseState::Blocked,
                PhaseState::Blocked,
            ]);
            let rows = rows_of(&tx);
            write(&mut tx);
            assert_ne!(format!("{rows:?}"), format!("{:?}", rows_of(&tx)), "{case}");
            assert_changes_saved(&rows, &tx, case);
        }
    }

    #[test]
    fn a_stale_resolution_changes_nothing_and_a_future_one_is_refused() {
        let mut tx = run_in([
            PhaseState::Completed,
            PhaseState::Completed,
            PhaseState::ReadyForReview,
            PhaseState::Blocked,
        ]);
        apply_resolution(&mut tx, resolution(pb::HumanResolution::Approved, 0))
            .expect("a superseded attempt is ignored");
        assert_eq!(tx.state(REVIEW).expect("state"), PhaseState::ReadyForReview);
        let future = apply_resolution(&mut tx, resolution(pb::HumanResolution::Approved, 2));
        assert!(
            matches!(future, Err(Error::FailedPrecondition(_))),
            "{future:?}"
        );
    }

    #[test]
    fn send_backs_nest_and_keep_every_comment() {
        let mut tx = run_in([
            PhaseState::Completed,
            PhaseState::Completed,
            PhaseState::ReadyForReview,
            PhaseState::Blocked,
        ]);
        let rows = rows_of(&tx);
        apply_resolution(&mut tx, resolution(pb::HumanResolution::Rejected, 1)).expect("reject");
        tx.advance().expect("advance");
        assert_changes_saved(&rows, &tx, "reject");
        assert_eq!(
            tx.phase(DRAFT).expect("loaded").attempt,
            2,
            "draft runs again"
        );
        assert_eq!(tx.state(DRAFT).expect("state"), PhaseState::Queued);
        assert_eq!(tx.state(REVIEW).expect("state"), PhaseState::Blocked);

        // The draft's second attempt finishes; the review opens again.
        tx.apply(DRAFT, PhaseEvent::Start, "", None).expect("start");
        tx.apply(DRAFT, PhaseEvent::Complete, "", None)
            .expect("complete");
        tx.advance().expect("advance");
        assert_eq!(tx.phase(REVIEW).expect("loaded").attempt, 2);
        assert_eq!(
            tx.state(REVIEW).expect("state"),
            PhaseState::WaitingForHuman
        );

        let mut again = resolution(pb::HumanResolution::Retry, 2);
        again.comment = "shorter".into();
        again.retry_phases = vec!["draft".into()];
        apply_resolution(&mut tx, again).expect("send back again");
        tx.advance().expect("advance");
        assert_eq!(tx.phase(DRAFT).expect("loaded").attempt, 3);
        assert_eq!(
            tx.feedback(DRAFT).expect("feedback"),
            ["tighter copy", "shorter"],
            "every comment reaches the next attempt"
        );
        let not_upstream = HumanResolution {
            retry_phases: vec!["publish".into()],
            ..resolution(pb::HumanResolution::Retry, 2)
        };
        let mut fresh = run_in([
            PhaseState::Completed,
            PhaseState::Completed,
            PhaseState::ReadyForReview,
            PhaseState::Blocked,
        ]);
        let refused = apply_resolution(
            &mut fresh,
            HumanResolution {
                key: TaskKey {
                    attempt: 1,
                    ..not_upstream.key.clone()
                },
                ..not_upstream
            },
        );
        assert!(
            matches!(refused, Err(Error::InvalidArgument { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn cancelling_withdraws_the_leased_task_and_closes_the_open_one() {
        let mut tx = run_in([
            PhaseState::WaitingForHuman,
            PhaseState::Running,
            PhaseState::Blocked,
            PhaseState::Blocked,
        ]);
        let rows = rows_of(&tx);
        cancel(&mut tx, "not needed").expect("cancel");
        assert_changes_saved(&rows, &tx, "cancel");
        for index in 0..4 {
            assert_eq!(tx.state(index).expect("state"), PhaseState::Cancelled);
        }
        let (_, outbox, withdrawn) = tx.recorded();
        assert!(withdrawn.contains("draft"), "the leased task is withdrawn");
        let closes: Vec<&str> = outbox
            .iter()
            .filter(|m| m.kind == CLOSE_HUMAN_TASK)
            .map(|m| m.key.as_str())
            .collect();
        assert_eq!(closes, ["task-context"], "the open form is closed");
        tx.advance().expect("advance");
        assert_eq!(
            tx.state(DRAFT).expect("state"),
            PhaseState::Cancelled,
            "nothing dispatches after a cancel"
        );
    }
}
