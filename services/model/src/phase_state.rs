//! The phase state machine: the one table of legal moves in the engine.
//!
//! The scheduler asks [`transition`] before every change of a phase's state,
//! so a move that is not a row of [`TRANSITIONS`] can never be written to the
//! database. Read the table top to bottom to see everything a phase can do.

use std::fmt;
use std::str::FromStr;

/// The state of one phase of a run.
///
/// Stored and shown under its SCREAMING_SNAKE name (see [`PhaseState::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PhaseState {
    /// Waiting on dependencies that have not yet completed.
    Blocked,
    /// Dependencies are met; waits here for a person's Continue when the run does not auto-advance.
    Ready,
    /// A machine phase waiting for an executor to lease it.
    Queued,
    /// An executor holds a lease on the current attempt.
    Running,
    /// A machine phase or a human input finished with a valid output.
    Completed,
    /// A machine phase failed with no attempts left.
    Error,
    /// A human phase waiting for a person (a form to fill, or artifacts still to attach).
    WaitingForHuman,
    /// A review whose artifacts are attached and can be decided.
    ReadyForReview,
    /// A reviewer approved.
    Approved,
    /// A reviewer rejected.
    Rejected,
    /// Skipped by a person; counts as satisfied for its children.
    Skipped,
    /// Stopped before it finished, by a cancel of the phase or the run.
    Cancelled,
}

impl PhaseState {
    /// Every state, in declaration order; lets tests and UIs enumerate them.
    pub const ALL: [PhaseState; 12] = [
        PhaseState::Blocked,
        PhaseState::Ready,
        PhaseState::Queued,
        PhaseState::Running,
        PhaseState::Completed,
        PhaseState::Error,
        PhaseState::WaitingForHuman,
        PhaseState::ReadyForReview,
        PhaseState::Approved,
        PhaseState::Rejected,
        PhaseState::Skipped,
        PhaseState::Cancelled,
    ];

    /// Says whether the phase has stopped moving on its own: only a person's
    /// Retry or Rewind moves it again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PhaseState::Completed
                | PhaseState::Approved
                | PhaseState::Rejected
                | PhaseState::Error
                | PhaseState::Skipped
                | PhaseState::Cancelled
        )
    }

    /// Says whether a child may run once this parent is in this state.
    pub fn satisfies_dependency(self) -> bool {
        matches!(
            self,
            PhaseState::Completed | PhaseState::Approved | PhaseState::Skipped
        )
    }

    /// Returns the stable SCREAMING_SNAKE name used in storage, events and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseState::Blocked => "BLOCKED",
            PhaseState::Ready => "READY",
            PhaseState::Queued => "QUEUED",
            PhaseState::Running => "RUNNING",
            PhaseState::Completed => "COMPLETED",
            PhaseState::Error => "ERROR",
            PhaseState::WaitingForHuman => "WAITING_FOR_HUMAN",
            PhaseState::ReadyForReview => "READY_FOR_REVIEW",
            PhaseState::Approved => "APPROVED",
            PhaseState::Rejected => "REJECTED",
            PhaseState::Skipped => "SKIPPED",
            PhaseState::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for PhaseState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PhaseState {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        PhaseState::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "phase state",
                name: name.to_owned(),
            })
    }
}

/// A name read from storage or the wire that matches no variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    /// What kind of name it should have been, e.g. "phase state".
    pub what: &'static str,
    /// The name that was given.
    pub name: String,
}

/// How a phase moves, which decides the rows of the table that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhaseClass {
    /// `llm` and `function` phases: queued, leased and run by an executor.
    Machine,
    /// `human_input`: a person fills in a form.
    HumanInput,
    /// `human_review`: a person approves or rejects what is attached.
    HumanReview,
}

impl PhaseClass {
    /// Every class, so tests can walk the whole grid.
    pub const ALL: [PhaseClass; 3] = [
        PhaseClass::Machine,
        PhaseClass::HumanInput,
        PhaseClass::HumanReview,
    ];
}

/// Something that happens to a phase; the table decides whether it is legal now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhaseEvent {
    /// Every dependency is satisfied: Blocked → Ready.
    DependenciesMet,
    /// Auto-advance or a person's Continue: Ready → Queued (machine) or WaitingForHuman (human).
    Dispatch,
    /// An executor leased the task: Queued → Running.
    Start,
    /// The lease expired, or a retryable failure left attempts: Running → Queued as a new attempt.
    Requeue,
    /// A machine phase finished, or a valid form was submitted.
    Complete,
    /// A machine phase failed with no attempts left: Running → Error.
    Fail,
    /// The artifacts to review are attached: WaitingForHuman → ReadyForReview.
    OpenReview,
    /// The reviewer approved: ReadyForReview → Approved.
    Approve,
    /// The reviewer rejected: ReadyForReview → Rejected.
    Reject,
    /// A person asks for a new attempt of a finished phase; nothing is overwritten.
    Retry,
    /// A person skips the phase; its children may then run.
    Skip,
    /// The phase, or its run, is cancelled before it finished.
    Cancel,
    /// The phase is reset by a rewind to it or to an upstream phase.
    Rewind,
}

impl PhaseEvent {
    /// Every event, so tests can walk the whole grid.
    pub const ALL: [PhaseEvent; 13] = [
        PhaseEvent::DependenciesMet,
        PhaseEvent::Dispatch,
        PhaseEvent::Start,
        PhaseEvent::Requeue,
        PhaseEvent::Complete,
        PhaseEvent::Fail,
        PhaseEvent::OpenReview,
        PhaseEvent::Approve,
        PhaseEvent::Reject,
        PhaseEvent::Retry,
        PhaseEvent::Skip,
        PhaseEvent::Cancel,
        PhaseEvent::Rewind,
    ];

    /// Returns the event's name as written in error messages and events.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseEvent::DependenciesMet => "DependenciesMet",
            PhaseEvent::Dispatch => "Dispatch",
            PhaseEvent::Start => "Start",
            PhaseEvent::Requeue => "Requeue",
            PhaseEvent::Complete => "Complete",
            PhaseEvent::Fail => "Fail",
            PhaseEvent::OpenReview => "OpenReview",
            PhaseEvent::Approve => "Approve",
            PhaseEvent::Reject => "Reject",
            PhaseEvent::Retry => "Retry",
            PhaseEvent::Skip => "Skip",
            PhaseEvent::Cancel => "Cancel",
            PhaseEvent::Rewind => "Rewind",
        }
    }
}

impl fmt::Display for PhaseEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which classes a row of the table applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassFilter {
    /// Every class.
    Any,
    /// Only [`PhaseClass::Machine`].
    Machine,
    /// [`PhaseClass::HumanInput`] and [`PhaseClass::HumanReview`].
    Human,
    /// Only [`PhaseClass::HumanInput`].
    HumanInput,
    /// Only [`PhaseClass::HumanReview`].
    HumanReview,
}

impl ClassFilter {
    /// Says whether a row with this filter applies to `class`.
    pub fn admits(self, class: PhaseClass) -> bool {
        match self {
            ClassFilter::Any => true,
            ClassFilter::Machine => class == PhaseClass::Machine,
            ClassFilter::Human => class != PhaseClass::Machine,
            ClassFilter::HumanInput => class == PhaseClass::HumanInput,
            ClassFilter::HumanReview => class == PhaseClass::HumanReview,
        }
    }
}

/// One legal move: phases of `class` in state `from` go to `to` on `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The classes of phase the row applies to.
    pub class: ClassFilter,
    /// The state the phase is in.
    pub from: PhaseState,
    /// What happens.
    pub event: PhaseEvent,
    /// The state the phase moves to.
    pub to: PhaseState,
}

const fn row(
    class: ClassFilter,
    from: PhaseState,
    event: PhaseEvent,
    to: PhaseState,
) -> Transition {
    Transition {
        class,
        from,
        event,
        to,
    }
}

use ClassFilter as C;
use PhaseEvent as E;
use PhaseState as S;

/// Every legal move of a phase. A pair of (state, event) that is not here is refused.
///
/// Rows name only the classes that can actually be in the `from` state, so an
/// impossible move (a review that Fails, a form that is Requeued) is refused too.
pub const TRANSITIONS: &[Transition] = &[
    // Dependencies and dispatch.
    row(C::Any, S::Blocked, E::DependenciesMet, S::Ready),
    row(C::Machine, S::Ready, E::Dispatch, S::Queued),
    row(C::Human, S::Ready, E::Dispatch, S::WaitingForHuman),
    // An executor runs a machine phase.
    row(C::Machine, S::Queued, E::Start, S::Running),
    row(C::Machine, S::Running, E::Requeue, S::Queued),
    row(C::Machine, S::Running, E::Complete, S::Completed),
    row(C::Machine, S::Running, E::Fail, S::Error),
    // People: a form is submitted; a review opens and is decided.
    row(C::HumanInput, S::WaitingForHuman, E::Complete, S::Completed),
    row(
        C::HumanReview,
        S::WaitingForHuman,
        E::OpenReview,
        S::ReadyForReview,
    ),
    row(C::HumanReview, S::ReadyForReview, E::Approve, S::Approved),
    row(C::HumanReview, S::ReadyForReview, E::Reject, S::Rejected),
    // Retry: a new attempt of a finished phase.
    row(C::Machine, S::Error, E::Retry, S::Ready),
    row(C::Machine, S::Completed, E::Retry, S::Ready),
    row(C::HumanInput, S::Completed, E::Retry, S::Ready),
    row(C::HumanReview, S::Rejected, E::Retry, S::Ready),
    row(C::HumanReview, S::Approved, E::Retry, S::Ready),
    // Skip: a person decides the phase is not needed.
    row(C::Any, S::Blocked, E::Skip, S::Skipped),
    row(C::Any, S::Ready, E::Skip, S::Skipped),
    row(C::Machine, S::Error, E::Skip, S::Skipped),
    row(C::Human, S::WaitingForHuman, E::Skip, S::Skipped),
    row(C::HumanReview, S::ReadyForReview, E::Skip, S::Skipped),
    row(C::HumanReview, S::Rejected, E::Skip, S::Skipped),
    // Cancel: anything not yet finished.
    row(C::Any, S::Blocked, E::Cancel, S::Cancelled),
    row(C::Any, S::Ready, E::Cancel, S::Cancelled),
    row(C::Machine, S::Queued, E::Cancel, S::Cancelled),
    row(C::Machine, S::Running, E::Cancel, S::Cancelled),
    row(C::Human, S::WaitingForHuman, E::Cancel, S::Cancelled),
    row(C::HumanReview, S::ReadyForReview, E::Cancel, S::Cancelled),
    // Rewind: from anywhere back to the start; earlier attempts are kept.
    row(C::Any, S::Blocked, E::Rewind, S::Blocked),
    row(C::Any, S::Ready, E::Rewind, S::Blocked),
    row(C::Any, S::Queued, E::Rewind, S::Blocked),
    row(C::Any, S::Running, E::Rewind, S::Blocked),
    row(C::Any, S::Completed, E::Rewind, S::Blocked),
    row(C::Any, S::Error, E::Rewind, S::Blocked),
    row(C::Any, S::WaitingForHuman, E::Rewind, S::Blocked),
    row(C::Any, S::ReadyForReview, E::Rewind, S::Blocked),
    row(C::Any, S::Approved, E::Rewind, S::Blocked),
    row(C::Any, S::Rejected, E::Rewind, S::Blocked),
    row(C::Any, S::Skipped, E::Rewind, S::Blocked),
    row(C::Any, S::Cancelled, E::Rewind, S::Blocked),
];

/// A move the table refuses; the scheduler turns it into a failed-precondition error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("phase cannot {event} while {from}")]
pub struct InvalidTransition {
    /// The class of the phase.
    pub class: PhaseClass,
    /// The state the phase was in.
    pub from: PhaseState,
    /// The refused event.
    pub event: PhaseEvent,
}

/// Returns the state a phase of `class` moves to from `from` on `event`, or
/// the refusal when no row of [`TRANSITIONS`] allows it.
pub fn transition(
    class: PhaseClass,
    from: PhaseState,
    event: PhaseEvent,
) -> Result<PhaseState, InvalidTransition> {
    TRANSITIONS
        .iter()
        .find(|row| row.from == from && row.event == event && row.class.admits(class))
        .map(|row| row.to)
        .ok_or(InvalidTransition { class, from, event })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected grid, written out by hand from DESIGN.md rather than from
    /// the table: for each class, every legal (from, event, to). Everything
    /// else must be refused.
    fn expected(class: PhaseClass) -> Vec<(PhaseState, PhaseEvent, PhaseState)> {
        use PhaseEvent::*;
        use PhaseState::*;
        let mut legal = vec![
            (Blocked, DependenciesMet, Ready),
            (Blocked, Skip, Skipped),
            (Ready, Skip, Skipped),
            (Blocked, Cancel, Cancelled),
            (Ready, Cancel, Cancelled),
        ];
        for state in PhaseState::ALL {
            legal.push((state, Rewind, Blocked));
        }
        match class {
            PhaseClass::Machine => legal.extend([
                (Ready, Dispatch, Queued),
                (Queued, Start, Running),
                (Running, Requeue, Queued),
                (Running, Complete, Completed),
                (Running, Fail, Error),
                (Error, Retry, Ready),
                (Completed, Retry, Ready),
                (Error, Skip, Skipped),
                (Queued, Cancel, Cancelled),
                (Running, Cancel, Cancelled),
            ]),
            PhaseClass::HumanInput => legal.extend([
                (Ready, Dispatch, WaitingForHuman),
                (WaitingForHuman, Complete, Completed),
                (Completed, Retry, Ready),
                (WaitingForHuman, Skip, Skipped),
                (WaitingForHuman, Cancel, Cancelled),
            ]),
            PhaseClass::HumanReview => legal.extend([
                (Ready, Dispatch, WaitingForHuman),
                (WaitingForHuman, OpenReview, ReadyForReview),
                (ReadyForReview, Approve, Approved),
                (ReadyForReview, Reject, Rejected),
                (Rejected, Retry, Ready),
                (Approved, Retry, Ready),
                (WaitingForHuman, Skip, Skipped),
                (ReadyForReview, Skip, Skipped),
                (Rejected, Skip, Skipped),
                (WaitingForHuman, Cancel, Cancelled),
                (ReadyForReview, Cancel, Cancelled),
            ]),
        }
        legal
    }

    #[test]
    fn every_class_state_event_triple_matches_the_expected_grid() {
        let mut checked = 0;
        for class in PhaseClass::ALL {
            let legal = expected(class);
            for from in PhaseState::ALL {
                for event in PhaseEvent::ALL {
                    let want = legal
                        .iter()
                        .find(|(f, e, _)| *f == from && *e == event)
                        .map(|(_, _, to)| *to);
                    let got = transition(class, from, event).ok();
                    assert_eq!(got, want, "{class:?} {from} on {event}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 3 * 12 * 13);
    }

    #[test]
    fn the_table_has_no_two_rows_for_one_move() {
        for class in PhaseClass::ALL {
            for (i, a) in TRANSITIONS.iter().enumerate() {
                for b in &TRANSITIONS[i + 1..] {
                    let overlap = a.from == b.from
                        && a.event == b.event
                        && a.class.admits(class)
                        && b.class.admits(class);
                    assert!(!overlap, "rows {a:?} and {b:?} overlap for {class:?}");
                }
            }
        }
    }

    #[test]
    fn refusal_names_the_event_and_state() {
        let err = transition(
            PhaseClass::Machine,
            PhaseState::Queued,
            PhaseEvent::Complete,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "phase cannot Complete while QUEUED");
    }

    #[test]
    fn terminal_states() {
        use PhaseState::*;
        let terminal: Vec<_> = PhaseState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [Completed, Error, Approved, Rejected, Skipped, Cancelled]
        );
    }

    #[test]
    fn states_that_let_a_child_run() {
        use PhaseState::*;
        let satisfied: Vec<_> = PhaseState::ALL
            .into_iter()
            .filter(|s| s.satisfies_dependency())
            .collect();
        assert_eq!(satisfied, [Completed, Approved, Skipped]);
        assert!(satisfied.iter().all(|s| s.is_terminal()));
    }

    #[test]
    fn names_round_trip() {
        for state in PhaseState::ALL {
            assert_eq!(state.as_str().parse::<PhaseState>(), Ok(state));
        }
        assert_eq!(PhaseState::WaitingForHuman.as_str(), "WAITING_FOR_HUMAN");
        assert_eq!(PhaseState::ReadyForReview.to_string(), "READY_FOR_REVIEW");
        assert!("waiting_for_human".parse::<PhaseState>().is_err());
    }

    #[test]
    fn terminal_states_move_only_by_retry_skip_or_rewind() {
        for class in PhaseClass::ALL {
            for from in PhaseState::ALL.into_iter().filter(|s| s.is_terminal()) {
                for event in PhaseEvent::ALL {
                    if transition(class, from, event).is_ok() {
                        assert!(
                            matches!(
                                event,
                                PhaseEvent::Retry | PhaseEvent::Skip | PhaseEvent::Rewind
                            ),
                            "{class:?} {from} moves on {event}"
                        );
                    }
                }
            }
        }
    }
}
