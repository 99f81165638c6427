//! The status of a run, derived from the states of its phases.
//!
//! A run's status is never stored on its own: it is a function of its phase
//! states (and whether someone cancelled it), so it cannot drift from them.

use std::fmt;
use std::str::FromStr;

use crate::phase_state::{PhaseState, UnknownName};
use crate::phase_tally::PhaseTally;

/// The status of a whole run, as listed and shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Started, but no phase has moved yet.
    Pending,
    /// Some phase can still move without a person.
    Running,
    /// Nothing runs; the run waits for a form or a review.
    WaitingForHuman,
    /// Every phase completed, was approved or was skipped.
    Completed,
    /// A phase ended in error or was rejected.
    Failed,
    /// The run was cancelled.
    Cancelled,
}

impl RunStatus {
    /// Every status, in declaration order.
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Pending,
        RunStatus::Running,
        RunStatus::WaitingForHuman,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// Derives a run's status from its phase states.
    ///
    /// In order of precedence:
    /// 1. `Cancelled` when the run was cancelled, or when every phase is
    ///    terminal and one of them was cancelled (nothing else can happen).
    /// 2. `Failed` when any phase is in `ERROR` or `REJECTED`: those move again
    ///    only by a person's Retry, Skip or Rewind, which then changes the status.
    /// 3. `Pending` when every phase is still `BLOCKED` (or there are none).
    /// 4. `Completed` when every phase satisfies its dependents
    ///    (`COMPLETED`, `APPROVED`, `SKIPPED`).
    /// 5. `WaitingForHuman` when no phase is `QUEUED` or `RUNNING` and some
    ///    phase is `WAITING_FOR_HUMAN` or `READY_FOR_REVIEW`.
    /// 6. `Running` otherwise.
    pub fn derive(states: impl IntoIterator<Item = PhaseState>, cancelled: bool) -> RunStatus {
        PhaseTally::of(states).status(cancelled)
    }

    /// Says whether the run has ended: a Retry or Rewind may still reopen it.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    /// Returns the stable SCREAMING_SNAKE name used in storage and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "PENDING",
            RunStatus::Running => "RUNNING",
            RunStatus::WaitingForHuman => "WAITING_FOR_HUMAN",
            RunStatus::Completed => "COMPLETED",
            RunStatus::Failed => "FAILED",
            RunStatus::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
            .ok_or_else(|| UnknownName {
                what: "run status",
                name: name.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PhaseState::*;

    fn derive(states: &[PhaseState]) -> RunStatus {
        RunStatus::derive(states.iter().copied(), false)
    }

    #[test]
    fn a_run_nobody_has_touched_is_pending() {
        assert_eq!(derive(&[Blocked, Blocked]), RunStatus::Pending);
        assert_eq!(derive(&[]), RunStatus::Pending);
    }

    #[test]
    fn any_movement_makes_it_running() {
        assert_eq!(derive(&[Ready, Blocked]), RunStatus::Running);
        assert_eq!(derive(&[Completed, Queued]), RunStatus::Running);
        assert_eq!(
            derive(&[Completed, Running, WaitingForHuman]),
            RunStatus::Running
        );
    }

    #[test]
    fn waiting_for_human_only_when_no_machine_is_busy() {
        assert_eq!(
            derive(&[Completed, WaitingForHuman, Blocked]),
            RunStatus::WaitingForHuman
        );
        assert_eq!(
            derive(&[Completed, ReadyForReview]),
            RunStatus::WaitingForHuman
        );
        assert_eq!(derive(&[Queued, ReadyForReview]), RunStatus::Running);
    }

    #[test]
    fn error_or_rejection_fails_the_run() {
        assert_eq!(derive(&[Completed, Error, Running]), RunStatus::Failed);
        assert_eq!(derive(&[Completed, Rejected]), RunStatus::Failed);
    }

    #[test]
    fn completed_when_every_phase_satisfies_its_children() {
        assert_eq!(
            derive(&[Completed, Approved, Skipped]),
            RunStatus::Completed
        );
    }

    #[test]
    fn cancellation_wins() {
        assert_eq!(
            RunStatus::derive([Completed, Error], true),
            RunStatus::Cancelled
        );
        assert_eq!(derive(&[Completed, Cancelled]), RunStatus::Cancelled);
        // A cancelled phase while others still move does not end the run.
        assert_eq!(derive(&[Cancelled, Running]), RunStatus::Running);
    }

    #[test]
    fn names_round_trip() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(status));
        }
        assert!(RunStatus::Failed.is_finished());
        assert!(!RunStatus::WaitingForHuman.is_finished());
    }
}
