//! The rows of each table, checked against both backends.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;

use super::schema::{artifact_versions, artifacts, contents, staged_outputs};

/// A stored content, by sha256.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = contents, check_for_backend(Pg, Sqlite))]
pub(crate) struct ContentRow {
    pub sha256: String,
    pub size_bytes: i64,
    /// The bytes, when small enough to keep in the database.
    pub inline_content: Option<Vec<u8>>,
    /// True when the bytes are a file in the blob store instead.
    pub in_blob_store: bool,
    pub created_at: i64,
}

/// An artifact: one phase's output name within one run.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = artifacts)]
pub(crate) struct ArtifactRow {
    pub id: String,
    pub run_id: String,
    pub phase_id: String,
    pub name: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// One version of an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = artifact_versions, check_for_backend(Pg, Sqlite))]
pub(crate) struct VersionRow {
    pub artifact_id: String,
    pub version: i32,
    pub phase_id: String,
    pub attempt: i32,
    pub media_type: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub valid: bool,
    pub is_latest: bool,
    /// The schema violations as a JSON array of `{field, description}`.
    pub violations_json: String,
    pub schema_sha256: String,
    pub created_by_kind: i32,
    pub created_by_id: String,
    pub created_at: i64,
}

/// A phase attempt's output awaiting the scheduler's acceptance.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = staged_outputs, check_for_backend(Pg, Sqlite))]
pub(crate) struct StagedRow {
    pub artifact_id: String,
    pub attempt: i32,
    pub media_type: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub valid: bool,
    pub violations_json: String,
    pub schema_sha256: String,
    pub created_by_kind: i32,
    pub created_by_id: String,
    pub created_at: i64,
}

/// How a write makes its version visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    /// Numbered at once (people's and the system's writes).
    Published,
    /// Kept unnumbered until the scheduler accepts the attempt.
    Staged,
}

/// A version with the run and name of its artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionRecord {
    pub run_id: String,
    pub name: String,
    pub row: VersionRow,
}

/// What a Put asks to store, before a version number is given.
#[derive(Debug, Clone)]
pub(crate) struct NewVersion {
    pub run_id: String,
    pub name: String,
    pub phase_id: String,
    pub attempt: i32,
    pub media_type: String,
    pub valid: bool,
    pub violations_json: String,
    pub schema_sha256: String,
    pub created_by_kind: i32,
    pub created_by_id: String,
}

/// The result of storing a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PutOutcome {
    pub record: VersionRecord,
    /// False when the attempt had already stored the same content.
    pub created: bool,
}
