//! Telling other scheduler replicas what a transaction changed: the run,
//! and the sequences of the events it appended, so that a replica whose
//! watchers follow that run reads just those events. Postgres sends it as
//! a NOTIFY with the change's writes ([`super::writes`]), delivered when
//! the transaction commits; SQLite is embedded in one process, so there is
//! nobody to tell.

/// The channel other scheduler replicas listen on for commits.
pub const CHANGES_CHANNEL: &str = "orchestra_scheduler_changes";

/// What one committed transaction changed, as its notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The run changed.
    pub run_id: String,
    /// The first and last sequence of the events appended, if any.
    pub events: Option<(i64, i64)>,
}

impl Change {
    /// The notification's payload: the run id, then the first and last
    /// sequence appended (run ids hold no spaces).
    pub fn payload(&self) -> String {
        match self.events {
            Some((first, last)) => format!("{} {first} {last}", self.run_id),
            None => self.run_id.clone(),
        }
    }

    /// Reads a payload; `None` when it is not one (sent by another version:
    /// the listener then treats everything as changed).
    pub fn parse(payload: &str) -> Option<Change> {
        let mut parts = payload.split(' ');
        let run_id = parts.next().filter(|id| !id.is_empty())?.to_owned();
        let events = match (parts.next(), parts.next()) {
            (None, None) => None,
            (Some(first), Some(last)) => {
                let first: i64 = first.parse().ok()?;
                let last: i64 = last.parse().ok()?;
                if first > last {
                    return None;
                }
                Some((first, last))
            }
            _ => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Change { run_id, events })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_reads_back_as_the_change_it_names() {
        for change in [
            Change {
                run_id: "0193a5c2-7d1e-7f00-8000-000000000001".into(),
                events: Some((4, 9)),
            },
            Change {
                run_id: "r".into(),
                events: None,
            },
        ] {
            assert_eq!(Change::parse(&change.payload()), Some(change));
        }
        for foreign in ["", " 1 2", "r 1", "r 1 x", "r 3 2", "r 1 2 3"] {
            assert_eq!(Change::parse(foreign), None, "{foreign:?}");
        }
    }
}
