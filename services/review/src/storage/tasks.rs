//! The tasks table: opening, reading, claiming and finishing human tasks.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use orchestra_db::{Db, db_run, db_tx};
use orchestra_proto::v1::HumanTaskState;

use orchestra_db::outbox::{Message, OutboxStore};

use super::models::{StoredDecision, TaskRow};
use super::schema::tasks;
use crate::{Error, Result};

/// The outbox kind that carries a `ResolveHumanPhaseRequest` to the scheduler.
pub const RESOLVE_HUMAN_PHASE: &str = "resolve_human_phase";

const OPEN: i32 = HumanTaskState::Open as i32;
const CLAIMED: i32 = HumanTaskState::Claimed as i32;
const DONE: i32 = HumanTaskState::Done as i32;
const CANCELLED: i32 = HumanTaskState::Cancelled as i32;

/// Stores a new task. When the id exists already nothing changes and the
/// stored task is returned with `false`.
pub async fn open_task(db: &Db, row: TaskRow) -> Result<(TaskRow, bool)> {
    db_tx!(db, |conn| -> Result<(TaskRow, bool)> {
        let id = row.id.clone();
        // ON CONFLICT keeps a concurrent second OpenTask from failing.
        let inserted = diesel::insert_into(tasks::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        let stored = tasks::table
            .find(&id)
            .select(TaskRow::as_select())
            .first(conn)
            .await?;
        Ok((stored, inserted == 1))
    })
}

/// One task, if it exists.
pub async fn get_task(db: &Db, id: &str) -> Result<Option<TaskRow>> {
    let id = id.to_owned();
    db_run!(db, |conn| {
        tasks::table
            .find(id)
            .select(TaskRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(Error::from)
    })
}

/// Tasks oldest first: open and claimed ones, or all with `include_closed`;
/// only one run's when `run_id` is given.
pub async fn list_tasks(
    db: &Db,
    include_closed: bool,
    run_id: Option<&str>,
) -> Result<Vec<TaskRow>> {
    let run_id = run_id.map(str::to_owned);
    db_run!(db, |conn| {
        let mut query = tasks::table
            .select(TaskRow::as_select())
            .order((tasks::created_at.asc(), tasks::id.asc()))
            .into_boxed();
        if !include_closed {
            query = query.filter(tasks::state.eq_any([OPEN, CLAIMED]));
        }
        if let Some(run_id) = run_id {
            query = query.filter(tasks::run_id.eq(run_id));
        }
        query.load(conn).await.map_err(Error::from)
    })
}

/// Records that `person` works on the task. Claiming again by the same
/// person changes nothing; a claim by someone else, or on a closed task,
/// is refused.
pub async fn claim_task(db: &Db, id: &str, person: &str, now: i64) -> Result<TaskRow> {
    let id = id.to_owned();
    let person = person.to_owned();
    db_tx!(db, |conn| -> Result<TaskRow> {
        let task = tasks::table
            .find(&id)
            .select(TaskRow::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or_else(|| Error::task_not_found(&id))?;
        refuse_unless_actionable(&task, &person)?;
        diesel::update(tasks::table.find(&id))
            .filter(tasks::state.eq_any([OPEN, CLAIMED]))
            .set((
                tasks::state.eq(CLAIMED),
                tasks::claimed_by.eq(&person),
                tasks::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        Ok(tasks::table
            .find(&id)
            .select(TaskRow::as_select())
            .first(conn)
            .await?)
    })
}

/// Closes the task as DONE with its decision and puts `resolution` (an
/// encoded request for the scheduler) in the outbox, in one transaction.
/// Refused when the task is closed already or claimed by someone else.
pub async fn finish_task(
    db: &Db,
    id: &str,
    decision: &StoredDecision,
    resolution: Vec<u8>,
) -> Result<TaskRow> {
    let id = id.to_owned();
    let now = decision.decided_at;
    let person = decision.decided_by.clone();
    let decision_json = serde_json::to_string(decision)?;
    db_tx!(db, |conn| -> Result<TaskRow> {
        let task = tasks::table
            .find(&id)
            .select(TaskRow::as_select())
            .first(conn)
            .await
            .optional()?
            .ok_or_else(|| Error::task_not_found(&id))?;
        refuse_unless_actionable(&task, &person)?;
        let updated = diesel::update(tasks::table.find(&id))
            .filter(tasks::state.eq_any([OPEN, CLAIMED]))
            .set((
                tasks::state.eq(DONE),
                tasks::decision_json.eq(Some(decision_json)),
                tasks::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        if updated != 1 {
            // Another decision committed between our read and our write.
            return Err(Error::FailedPrecondition(format!(
                "task {id} was decided meanwhile"
            )));
        }
        conn.enqueue(Message::new(RESOLVE_HUMAN_PHASE, &id, resolution, now))
            .await?;
        Ok(tasks::table
            .find(&id)
            .select(TaskRow::as_select())
            .first(conn)
            .await?)
    })
}

/// Closes an open or claimed task as CANCELLED with the reason the run gave.
/// A task already decided or closed is left as it is; `None` when there is no
/// such task. Returns the task and whether this call closed it.
pub async fn close_task(
    db: &Db,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<Option<(TaskRow, bool)>> {
    let id = id.to_owned();
    let reason = reason.to_owned();
    db_tx!(db, |conn| -> Result<Option<(TaskRow, bool)>> {
        let closed = diesel::update(tasks::table.find(&id))
            .filter(tasks::state.eq_any([OPEN, CLAIMED]))
            .set((
                tasks::state.eq(CANCELLED),
                tasks::closed_reason.eq(&reason),
                tasks::updated_at.eq(now),
            ))
            .execute(conn)
            .await?;
        let task = tasks::table
            .find(&id)
            .select(TaskRow::as_select())
            .first(conn)
            .await
            .optional()?;
        Ok(task.map(|task| (task, closed == 1)))
    })
}

/// Refuses an action on a closed task or one claimed by someone else.
pub fn refuse_unless_actionable(task: &TaskRow, person: &str) -> Result<()> {
    if let Some(decision) = task.decision()? {
        let at = orchestra_kit::time::timestamp(decision.decided_at)
            .map(|t| orchestra_kit::time::rfc3339(&t))
            .unwrap_or_default();
        let verb = if task.kind == orchestra_proto::v1::HumanTaskKind::Input as i32 {
            "submitted"
        } else {
            "decided"
        };
        return Err(Error::FailedPrecondition(format!(
            "task {} was already {verb} by {} at {at}",
            task.id, decision.decided_by
        )));
    }
    if !task.is_open() {
        let why = if task.closed_reason.is_empty() {
            "it is closed".to_owned()
        } else {
            format!("it was closed: {}", task.closed_reason)
        };
        return Err(Error::FailedPrecondition(format!(
            "task {} cannot be acted on: {why}",
            task.id
        )));
    }
    if !task.claimed_by.is_empty() && task.claimed_by != person {
        return Err(Error::FailedPrecondition(format!(
            "task {} is claimed by {}",
            task.id, task.claimed_by
        )));
    }
    Ok(())
}
