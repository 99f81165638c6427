//! Rows as stored, and their conversion to the contract's messages.
//!
//! Enums are stored as their protobuf numbers; artifact refs, views and
//! decisions as JSON text, which both backends hold as `TEXT`.

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use orchestra_kit::time::timestamp;
use orchestra_proto::v1::{
    ArtifactRef, AttemptKey, Decision, HumanTask, HumanTaskState, ReviewItem,
};

use super::schema::tasks;
use crate::{Error, Result};

/// One human task as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = tasks, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct TaskRow {
    /// Chosen by the scheduler.
    pub id: String,
    /// A `HumanTaskKind` number.
    pub kind: i32,
    /// A `HumanTaskState` number.
    pub state: i32,
    /// The attempt this task resolves.
    pub run_id: String,
    /// The phase this task resolves.
    pub phase_id: String,
    /// The attempt number.
    pub attempt: i32,
    /// What the inbox shows.
    pub title: String,
    /// The run's template.
    pub template_name: String,
    /// INPUT: the form as JSON Schema.
    pub form_schema_json: String,
    /// The name of the phase's output artifact.
    pub output_name: String,
    /// JSON object of input name to artifact reference (proto3 JSON).
    pub inputs_json: String,
    /// JSON array of view names.
    pub show_json: String,
    /// The person working on it (empty when nobody).
    pub claimed_by: String,
    /// JSON [`StoredDecision`], once decided or submitted.
    pub decision_json: Option<String>,
    /// Epoch microseconds.
    pub created_at: i64,
    /// Epoch microseconds of the last change.
    pub updated_at: i64,
    /// REVIEW: JSON array of the input names an approval may select.
    pub candidates_json: String,
    /// REVIEW: a `Selection` number.
    pub selection: i32,
    /// CANCELLED: why the run closed the task.
    pub closed_reason: String,
}

/// A decision as stored inside a task row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredDecision {
    /// A `DecisionKind` number.
    pub kind: i32,
    /// The reviewer's comment ("submitted" for a form).
    pub comment: String,
    /// APPROVE: the chosen item names.
    pub selected: Vec<String>,
    /// RETRY: the phases to run again.
    pub retry_phases: Vec<String>,
    /// The person who decided or submitted.
    pub decided_by: String,
    /// Epoch microseconds.
    pub decided_at: i64,
}

impl StoredDecision {
    /// The contract's form.
    pub fn to_proto(&self) -> Decision {
        Decision {
            kind: self.kind,
            comment: self.comment.clone(),
            selected: self.selected.clone(),
            retry_phases: self.retry_phases.clone(),
            decided_by: self.decided_by.clone(),
            decided_at: timestamp(self.decided_at),
        }
    }
}

impl TaskRow {
    /// The inputs by name, in name order.
    pub fn inputs(&self) -> Result<BTreeMap<String, ArtifactRef>> {
        parse(&self.id, "inputs_json", &self.inputs_json)
    }

    /// REVIEW: the input names an approval may select, in template order.
    pub fn candidates(&self) -> Result<Vec<String>> {
        parse(&self.id, "candidates_json", &self.candidates_json)
    }

    /// The decision, once made.
    pub fn decision(&self) -> Result<Option<StoredDecision>> {
        self.decision_json
            .as_deref()
            .map(|json| parse(&self.id, "decision_json", json))
            .transpose()
    }

    /// True while a person can still act on it.
    pub fn is_open(&self) -> bool {
        self.state == HumanTaskState::Open as i32 || self.state == HumanTaskState::Claimed as i32
    }

    /// The attempt key of the phase this task resolves.
    pub fn key(&self) -> AttemptKey {
        AttemptKey {
            run_id: self.run_id.clone(),
            phase_id: self.phase_id.clone(),
            attempt: self.attempt,
        }
    }

    /// The contract's form, with items holding refs but no content.
    pub fn to_proto(&self) -> Result<HumanTask> {
        let items = self
            .inputs()?
            .into_iter()
            .map(|(name, r)| ReviewItem {
                name,
                artifact: Some(r),
                content: String::new(),
            })
            .collect();
        Ok(HumanTask {
            id: self.id.clone(),
            kind: self.kind,
            state: self.state,
            key: Some(self.key()),
            title: self.title.clone(),
            template_name: self.template_name.clone(),
            form_schema_json: self.form_schema_json.clone(),
            output_name: self.output_name.clone(),
            items,
            diffs: Vec::new(),
            show: parse(&self.id, "show_json", &self.show_json)?,
            claimed_by: self.claimed_by.clone(),
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
            decision: self.decision()?.map(|d| d.to_proto()),
            candidates: self.candidates()?,
            selection: self.selection,
            closed_reason: self.closed_reason.clone(),
        })
    }
}

/// Reads a JSON column this crate wrote; text that does not parse is a
/// corrupt row, reported as such rather than shown as empty.
fn parse<T: serde::de::DeserializeOwned>(task: &str, column: &str, json: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|error| Error::Corrupt(format!("task {task}: {column} does not parse: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_that_does_not_parse_is_corrupt_not_empty() {
        let row = TaskRow {
            id: "t1".into(),
            kind: 2,
            state: 1,
            run_id: "r".into(),
            phase_id: "p".into(),
            attempt: 1,
            title: String::new(),
            template_name: String::new(),
            form_schema_json: String::new(),
            output_name: String::new(),
            inputs_json: "{not json".into(),
            show_json: "[]".into(),
            claimed_by: String::new(),
            decision_json: None,
            created_at: 0,
            updated_at: 0,
            candidates_json: "[]".into(),
            selection: 0,
            closed_reason: String::new(),
        };
        let error = row.to_proto().expect_err("corrupt");
        assert!(
            matches!(&error, Error::Corrupt(m) if m.starts_with("task t1: inputs_json does not parse")),
            "{error:?}"
        );
        let fine = TaskRow {
            inputs_json: "{}".into(),
            ..row
        };
        assert!(fine.to_proto().is_ok());
    }
}
