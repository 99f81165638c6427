//! How many of a run's phases are in each state.
//!
//! A run's status is a function of the multiset of its phase states
//! ([`RunStatus::derive`]), so a tally kept beside the run, moved with each
//! transition, gives the status without reading every phase: what keeps a
//! transition's cost independent of the run's size.

use std::collections::BTreeMap;

use crate::phase_state::PhaseState;
use crate::run_status::RunStatus;

/// Counts of phases per state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhaseTally {
    counts: [u32; PhaseState::ALL.len()],
}

fn slot(state: PhaseState) -> usize {
    // ALL lists every state once, so the search always succeeds.
    PhaseState::ALL
        .iter()
        .position(|s| *s == state)
        .unwrap_or_default()
}

impl PhaseTally {
    /// The tally of the given states.
    pub fn of(states: impl IntoIterator<Item = PhaseState>) -> PhaseTally {
        let mut tally = PhaseTally::default();
        for state in states {
            tally.counts[slot(state)] += 1;
        }
        tally
    }

    /// Moves one phase from `from` to `to`.
    pub fn moved(&mut self, from: PhaseState, to: PhaseState) {
        let count = &mut self.counts[slot(from)];
        *count = count.saturating_sub(1);
        self.counts[slot(to)] += 1;
    }

    /// How many phases are in `state`.
    pub fn count(&self, state: PhaseState) -> u32 {
        self.counts[slot(state)]
    }

    /// How many phases there are.
    pub fn total(&self) -> u32 {
        self.counts.iter().sum()
    }

    fn count_where(&self, wanted: impl Fn(PhaseState) -> bool) -> u32 {
        PhaseState::ALL
            .iter()
            .filter(|s| wanted(**s))
            .map(|s| self.count(*s))
            .sum()
    }

    /// The run's status: the rules are written out on [`RunStatus::derive`],
    /// which is tested against them.
    pub fn status(&self, cancelled: bool) -> RunStatus {
        use PhaseState::*;
        let total = self.total();
        let all_terminal = self.count_where(PhaseState::is_terminal) == total;
        if cancelled || (all_terminal && self.count(Cancelled) > 0) {
            return RunStatus::Cancelled;
        }
        if self.count(Error) + self.count(Rejected) > 0 {
            return RunStatus::Failed;
        }
        if self.count(Blocked) == total {
            return RunStatus::Pending;
        }
        if self.count_where(PhaseState::satisfies_dependency) == total {
            return RunStatus::Completed;
        }
        let machine_busy = self.count(Queued) + self.count(Running) > 0;
        let person_awaited = self.count(WaitingForHuman) + self.count(ReadyForReview) > 0;
        if !machine_busy && person_awaited {
            return RunStatus::WaitingForHuman;
        }
        RunStatus::Running
    }

    /// The stored form: `{"BLOCKED":3,"COMPLETED":2}`, states with none left out.
    pub fn to_json(&self) -> String {
        let map: BTreeMap<&str, u32> = PhaseState::ALL
            .iter()
            .filter(|s| self.count(**s) > 0)
            .map(|s| (s.as_str(), self.count(*s)))
            .collect();
        serde_json::to_string(&map).unwrap_or_default()
    }

    /// Reads the stored form; an unknown state name or a bad count is an
    /// error, never a silent zero.
    pub fn from_json(text: &str) -> Result<PhaseTally, String> {
        let map: BTreeMap<String, u32> =
            serde_json::from_str(text).map_err(|e| format!("phase tally does not parse: {e}"))?;
        let mut tally = PhaseTally::default();
        for (name, count) in map {
            let state: PhaseState = name
                .parse()
                .map_err(|_| format!("phase tally names an unknown state `{name}`"))?;
            tally.counts[slot(state)] = count;
        }
        Ok(tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PhaseState::*;

    #[test]
    fn moves_keep_the_total_and_follow_the_phases() {
        let mut tally = PhaseTally::of([Blocked, Blocked, Ready]);
        assert_eq!(tally.status(false), RunStatus::Running);
        tally.moved(Ready, Queued);
        tally.moved(Queued, Running);
        tally.moved(Running, Completed);
        tally.moved(Blocked, Skipped);
        tally.moved(Blocked, Completed);
        assert_eq!(tally.total(), 3);
        assert_eq!(tally.count(Completed), 2);
        assert_eq!(tally.status(false), RunStatus::Completed);
        assert_eq!(tally.status(true), RunStatus::Cancelled);
    }

    #[test]
    fn stored_form_round_trips_and_refuses_what_it_cannot_read() {
        let tally = PhaseTally::of([Blocked, Completed, Completed, WaitingForHuman]);
        let json = tally.to_json();
        assert_eq!(json, r#"{"BLOCKED":1,"COMPLETED":2,"WAITING_FOR_HUMAN":1}"#);
        assert_eq!(PhaseTally::from_json(&json), Ok(tally));
        assert!(PhaseTally::from_json(r#"{"DONE":1}"#).is_err());
        assert!(PhaseTally::from_json(r#"{"BLOCKED":-1}"#).is_err());
        assert!(PhaseTally::from_json("").is_err());
    }
}
