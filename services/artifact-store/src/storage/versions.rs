//! Queries over `artifacts` and `artifact_versions`: storing one attempt's
//! output as the next version, and reading versions back.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use orchestra_db::prepared::PrepareDsl;
use orchestra_db::time::now_micros;
use orchestra_db::{Db, db_run, db_tx};

use super::contents::find_content;
use super::models::{
    ArtifactRow, ContentRow, NewVersion, PutOutcome, StagedRow, VersionRecord, VersionRow,
    Visibility,
};
use super::schema::{artifact_versions, artifacts, contents, staged_outputs};
use crate::error::{Error, Result};

/// Stores `new` as the next version of its artifact, or with
/// [`Visibility::Staged`] as an unnumbered output awaiting acceptance;
/// creates the artifact on its first write and the content row unless its
/// sha256 is known.
///
/// Idempotent on (run, phase, attempt, name): a repeat with the same content
/// returns what is stored with `created == false` (the version, once the
/// output is published); a repeat with other content is
/// [`Error::AlreadyExists`]. A valid version becomes the latest.
///
/// Race-free: the transaction takes the artifact row's lock (an UPDATE on
/// Postgres; SQLite's IMMEDIATE transaction locks the whole file) before it
/// reads the highest version, so concurrent Puts get consecutive numbers.
pub(crate) async fn put_version(
    db: &Db,
    new: NewVersion,
    content: ContentRow,
    visibility: Visibility,
) -> Result<PutOutcome> {
    db_tx!(db, |conn| -> Result<PutOutcome> {
        let now = now_micros();
        let artifact = ArtifactRow {
            id: uuid::Uuid::now_v7().to_string(),
            run_id: new.run_id.clone(),
            phase_id: new.phase_id.clone(),
            name: new.name.clone(),
            created_at: now,
            updated_at: now,
        };
        diesel::insert_into(artifacts::table)
            .values(&artifact)
            .on_conflict_do_nothing()
            .prepared()
            .execute(conn)
            .await?;
        let artifact_id: String = artifacts::table
            .filter(artifacts::run_id.eq(&new.run_id))
            .filter(artifacts::phase_id.eq(&new.phase_id))
            .filter(artifacts::name.eq(&new.name))
            .select(artifacts::id)
            .first(conn)
            .await?;
        // Lock the artifact until commit: the next Put of it waits here.
        diesel::update(artifacts::table.find(&artifact_id))
            .set(artifacts::updated_at.eq(now))
            .prepared()
            .execute(conn)
            .await?;

        let earlier: Option<VersionRow> = artifact_versions::table
            .filter(artifact_versions::artifact_id.eq(&artifact_id))
            .filter(artifact_versions::phase_id.eq(&new.phase_id))
            .filter(artifact_versions::attempt.eq(new.attempt))
            .select(VersionRow::as_select())
            .first(conn)
            .await
            .optional()?;
        if let Some(row) = earlier {
            if row.sha256 != content.sha256 {
                return Err(Error::AlreadyExists(format!(
                    "attempt {}/{}/{} already stored other content as `{}` version {}",
                    new.run_id, new.phase_id, new.attempt, new.name, row.version
                )));
            }
            let record = VersionRecord {
                run_id: new.run_id,
                name: new.name,
                row,
            };
            return Ok(PutOutcome {
                record,
                created: false,
            });
        }

        if visibility == Visibility::Staged {
            let staged: Option<StagedRow> = staged_outputs::table
                .find((&artifact_id, new.attempt))
                .select(StagedRow::as_select())
                .first(conn)
                .await
                .optional()?;
            let created = staged.is_none();
            let row = match staged {
                Some(row) if row.sha256 != content.sha256 => {
                    return Err(Error::AlreadyExists(format!(
                        "attempt {}/{}/{} already stored other content as `{}`",
                        new.run_id, new.phase_id, new.attempt, new.name
                    )));
                }
                Some(row) => row,
                None => {
                    diesel::insert_into(contents::table)
                        .values(&content)
                        .on_conflict_do_nothing()
                        .prepared()
                        .execute(conn)
                        .await?;
                    let row = StagedRow {
                        artifact_id,
                        attempt: new.attempt,
                        media_type: new.media_type.clone(),
                        sha256: content.sha256.clone(),
                        size_bytes: content.size_bytes,
                        valid: new.valid,
                        violations_json: new.violations_json.clone(),
                        schema_sha256: new.schema_sha256.clone(),
                        created_by_kind: new.created_by_kind,
                        created_by_id: new.created_by_id.clone(),
                        created_at: now,
                    };
                    diesel::insert_into(staged_outputs::table)
                        .values(&row)
                        .prepared()
                        .execute(conn)
                        .await?;
                    row
                }
            };
            return Ok(PutOutcome {
                record: staged_record(new.run_id, new.name, new.phase_id, row),
                created,
            });
        }

        let highest: Option<i32> = artifact_versions::table
            .filter(artifact_versions::artifact_id.eq(&artifact_id))
            .select(diesel::dsl::max(artifact_versions::version))
            .first(conn)
            .await?;
        diesel::insert_into(contents::table)
            .values(&content)
            .on_conflict_do_nothing()
            .prepared()
            .execute(conn)
            .await?;
        if new.valid {
            diesel::update(
                artifact_versions::table
                    .filter(artifact_versions::artifact_id.eq(&artifact_id))
                    .filter(artifact_versions::is_latest.eq(true)),
            )
            .set(artifact_versions::is_latest.eq(false))
            .prepared()
            .execute(conn)
            .await?;
        }
        let row = VersionRow {
            artifact_id,
            version: highest.unwrap_or(0) + 1,
            phase_id: new.phase_id,
            attempt: new.attempt,
            media_type: new.media_type,
            sha256: content.sha256,
            size_bytes: content.size_bytes,
            valid: new.valid,
            is_latest: new.valid,
            violations_json: new.violations_json,
            schema_sha256: new.schema_sha256,
            created_by_kind: new.created_by_kind,
            created_by_id: new.created_by_id,
            created_at: now,
        };
        diesel::insert_into(artifact_versions::table)
            .values(&row)
            .prepared()
            .execute(conn)
            .await?;
        // Published now: the output awaits acceptance no longer.
        diesel::delete(staged_outputs::table.find((&row.artifact_id, row.attempt)))
            .prepared()
            .execute(conn)
            .await?;
        let record = VersionRecord {
            run_id: new.run_id,
            name: new.name,
            row,
        };
        Ok(PutOutcome {
            record,
            created: true,
        })
    })
}

/// Publishes an attempt's staged output as the next version of its
/// artifact (see [`put_version`]). Repeating it returns the version the
/// output already is; `None` when the attempt stored nothing by that name.
pub(crate) async fn publish_staged(
    db: &Db,
    run_id: &str,
    phase_id: &str,
    attempt: i32,
    name: &str,
) -> Result<Option<PutOutcome>> {
    let staged: Option<StagedRow> = db_run!(db, |conn| {
        staged_outputs::table
            .inner_join(artifacts::table)
            .filter(artifacts::run_id.eq(run_id))
            .filter(artifacts::phase_id.eq(phase_id))
            .filter(artifacts::name.eq(name))
            .filter(staged_outputs::attempt.eq(attempt))
            .select(StagedRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(Error::from)
    })?;
    let Some(staged) = staged else {
        let published: Vec<(VersionRow, String, String)> = db_run!(db, |conn| {
            artifact_versions::table
                .inner_join(artifacts::table)
                .filter(artifacts::run_id.eq(run_id))
                .filter(artifacts::phase_id.eq(phase_id))
                .filter(artifacts::name.eq(name))
                .filter(artifact_versions::attempt.eq(attempt))
                .select((VersionRow::as_select(), artifacts::run_id, artifacts::name))
                .limit(1)
                .load(conn)
                .await
                .map_err(Error::from)
        })?;
        return Ok(published.into_iter().next().map(|row| PutOutcome {
            record: record(row),
            created: false,
        }));
    };
    let content = find_content(db, &staged.sha256).await?.ok_or_else(|| {
        Error::Corrupt(format!(
            "a staged output names missing content {}",
            staged.sha256
        ))
    })?;
    let new = NewVersion {
        run_id: run_id.to_owned(),
        name: name.to_owned(),
        phase_id: phase_id.to_owned(),
        attempt,
        media_type: staged.media_type,
        valid: staged.valid,
        violations_json: staged.violations_json,
        schema_sha256: staged.schema_sha256,
        created_by_kind: staged.created_by_kind,
        created_by_id: staged.created_by_id,
    };
    put_version(db, new, content, Visibility::Published)
        .await
        .map(Some)
}

/// A staged output as a record: version 0, never the latest.
fn staged_record(run_id: String, name: String, phase_id: String, row: StagedRow) -> VersionRecord {
    VersionRecord {
        run_id,
        name,
        row: VersionRow {
            artifact_id: row.artifact_id,
            version: 0,
            phase_id,
            attempt: row.attempt,
            media_type: row.media_type,
            sha256: row.sha256,
            size_bytes: row.size_bytes,
            valid: row.valid,
            is_latest: false,
            violations_json: row.violations_json,
            schema_sha256: row.schema_sha256,
            created_by_kind: row.created_by_kind,
            created_by_id: row.created_by_id,
            created_at: row.created_at,
        },
    }
}

/// One version of an artifact; `version == 0` is the latest valid one.
pub(crate) async fn find_version(
    db: &Db,
    artifact_id: &str,
    version: i32,
) -> Result<Option<VersionRecord>> {
    let rows: Vec<(VersionRow, String, String)> = db_run!(db, |conn| {
        let mut query = artifact_versions::table
            .inner_join(artifacts::table)
            .filter(artifact_versions::artifact_id.eq(artifact_id))
            .select((VersionRow::as_select(), artifacts::run_id, artifacts::name))
            .into_boxed();
        query = if version == 0 {
            query.filter(artifact_versions::is_latest.eq(true))
        } else {
            query.filter(artifact_versions::version.eq(version))
        };
        query.limit(1).load(conn).await.map_err(Error::from)
    })?;
    Ok(rows.into_iter().next().map(record))
}

/// Every version of an artifact, oldest first; empty when it does not exist.
pub(crate) async fn list_history(db: &Db, artifact_id: &str) -> Result<Vec<VersionRecord>> {
    let rows: Vec<(VersionRow, String, String)> = db_run!(db, |conn| {
        artifact_versions::table
            .inner_join(artifacts::table)
            .filter(artifact_versions::artifact_id.eq(artifact_id))
            .select((VersionRow::as_select(), artifacts::run_id, artifacts::name))
            .order(artifact_versions::version.asc())
            .load(conn)
            .await
            .map_err(Error::from)
    })?;
    Ok(rows.into_iter().map(record).collect())
}

/// The current version of each artifact of a run, one per (phase, name):
/// the latest valid one, or the newest when none is valid. With a phase, only that phase's
/// versions count.
pub(crate) async fn list_current(
    db: &Db,
    run_id: &str,
    phase_id: Option<&str>,
) -> Result<Vec<VersionRecord>> {
    let rows: Vec<(VersionRow, String, String)> = db_run!(db, |conn| {
        let mut query = artifact_versions::table
            .inner_join(artifacts::table)
            .filter(artifacts::run_id.eq(run_id))
            .select((VersionRow::as_select(), artifacts::run_id, artifacts::name))
            // Two phases may share an output name: group by artifact, so each
            // (phase, name) yields exactly its own current version.
            .order((
                artifacts::name.asc(),
                artifacts::phase_id.asc(),
                artifact_versions::version.asc(),
            ))
            .into_boxed();
        if let Some(phase_id) = phase_id {
            query = query.filter(artifact_versions::phase_id.eq(phase_id));
        }
        query.load(conn).await.map_err(Error::from)
    })?;
    Ok(pick_current(rows.into_iter().map(record)))
}

/// From versions sorted by artifact then version, the newest valid version
/// of each artifact, else its newest.
fn pick_current(records: impl Iterator<Item = VersionRecord>) -> Vec<VersionRecord> {
    let mut current: Vec<VersionRecord> = Vec::new();
    for record in records {
        match current.last_mut() {
            Some(last) if last.row.artifact_id == record.row.artifact_id => {
                if record.row.valid || !last.row.valid {
                    *last = record;
                }
            }
            _ => current.push(record),
        }
    }
    current
}

fn record((row, run_id, name): (VersionRow, String, String)) -> VersionRecord {
    VersionRecord { run_id, name, row }
}
