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
    pub fn inputs(&self) -> BTreeMap<String, ArtifactRef> {
        // Written by this crate only; unreadable text means no inputs rather
        // than a task nobody can open.
        serde_json::from_str(&self.inputs_json).unwrap_or_default()
    }

    /// REVIEW: the input names an approval may select, in template order.
    pub fn candidates(&self) -> Vec<String> {
        // Written by this crate only, from a validated request.
        serde_json::from_str(&self.candidates_json).unwrap_or_default()
    }

    /// The decision, once made.
    pub fn decision(&self) -> Option<StoredDecision> {
        self.decision_json
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
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
    pub fn to_proto(&self) -> HumanTask {
        let items = self
            .inputs()
            .into_iter()
            .map(|(name, r)| ReviewItem {
                name,
                artifact: Some(r),
                content: String::new(),
            })
            .collect();
        HumanTask {
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
            show: serde_json::from_str(&self.show_json).unwrap_or_default(),
            claimed_by: self.claimed_by.clone(),
            created_at: timestamp(self.created_at),
            updated_at: timestamp(self.updated_at),
            decision: self.decision().map(|d| d.to_proto()),
            candidates: self.candidates(),
            selection: self.selection,
            closed_reason: self.closed_reason.clone(),
        }
    }
}
