//! Rows of the scheduler's tables. Enums and JSON are stored as text so one
//! schema serves Postgres and SQLite.

use diesel::prelude::*;

use super::schema::{events, executors, phases, runs, tasks, templates};

/// One stored template version.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = templates, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct TemplateRow {
    pub id: String,
    pub name: String,
    pub version: i32,
    pub description: String,
    pub source: String,
    pub format: String,
    pub spec_json: String,
    pub content_sha256: String,
    pub created_at: i64,
}

/// One run.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = runs, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct RunRow {
    pub id: String,
    pub template_id: String,
    pub template_name: String,
    pub template_version: i32,
    pub spec_json: String,
    pub status: String,
    pub seed: i64,
    pub auto_advance: bool,
    pub cancelled: bool,
    pub inputs_json: String,
    pub request_id: Option<String>,
    pub last_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Phases per state ([`orchestra_model::PhaseTally`]); '' for a run
    /// stored before the tally existed.
    pub phase_tally: String,
}

/// A run's row without its frozen template: what a change to the run reads
/// and writes. The template is read once per version and cached.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = runs, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct RunHead {
    pub id: String,
    pub template_id: String,
    pub template_name: String,
    pub template_version: i32,
    pub status: String,
    pub seed: i64,
    pub auto_advance: bool,
    pub cancelled: bool,
    pub inputs_json: String,
    pub request_id: Option<String>,
    pub last_seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub phase_tally: String,
}

impl RunRow {
    /// The row without its template.
    pub fn head(&self) -> RunHead {
        RunHead {
            id: self.id.clone(),
            template_id: self.template_id.clone(),
            template_name: self.template_name.clone(),
            template_version: self.template_version,
            status: self.status.clone(),
            seed: self.seed,
            auto_advance: self.auto_advance,
            cancelled: self.cancelled,
            inputs_json: self.inputs_json.clone(),
            request_id: self.request_id.clone(),
            last_seq: self.last_seq,
            created_at: self.created_at,
            updated_at: self.updated_at,
            phase_tally: self.phase_tally.clone(),
        }
    }
}

/// One phase of one run.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = phases, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
#[diesel(treat_none_as_null = true)]
pub struct PhaseRow {
    pub run_id: String,
    pub phase_id: String,
    pub idx: i32,
    pub kind: String,
    pub state: String,
    pub attempt: i32,
    pub started_at: i64,
    pub finished_at: i64,
    pub error: String,
    pub output_json: Option<String>,
    pub human_task_id: Option<String>,
    pub executor_id: Option<String>,
    pub feedback_json: String,
    /// How many of the phase's needs are not yet satisfied; -1 for a run
    /// stored before this was counted.
    pub unmet_needs: i32,
}

/// One event of a run's log.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct EventRow {
    pub run_id: String,
    pub seq: i64,
    pub at: i64,
    pub body: Vec<u8>,
}

/// One attempt of a machine phase in the queue.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(treat_none_as_default_value = false)]
#[diesel(table_name = tasks, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct TaskRow {
    pub run_id: String,
    pub phase_id: String,
    pub attempt: i32,
    pub kind: String,
    pub state: String,
    pub available_at: i64,
    pub lease_id: Option<String>,
    pub executor_id: Option<String>,
    pub lease_deadline: i64,
    pub created_at: i64,
}

/// An executor that leases tasks: when its stream was last seen, and
/// whether it is suspended for letting a lease expire.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = executors, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct ExecutorRow {
    pub executor_id: String,
    pub session_id: String,
    pub seen_at: i64,
    pub suspended: bool,
}

/// Task states in the `tasks.state` column.
pub mod task_state {
    /// Waiting for a lease.
    pub const QUEUED: &str = "queued";
    /// Leased by an executor until `lease_deadline`.
    pub const LEASED: &str = "leased";
    /// Completed or failed by its executor, or expired.
    pub const DONE: &str = "done";
    /// Withdrawn: the run was cancelled or the phase rewound.
    pub const CANCELLED: &str = "cancelled";
}
