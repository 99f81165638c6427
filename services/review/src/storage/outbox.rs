//! The outbox table: resolutions waiting for the scheduler, in order.

use diesel::prelude::*;
use diesel::query_builder::InsertStatement;
use diesel_async::methods::ExecuteDsl;
use diesel_async::{AsyncConnectionCore, RunQueryDsl};

use orchestra_db::{Db, db_run};

use super::models::{NewOutboxRow, OutboxRow};
use super::schema::outbox;
use crate::{Error, Result};

type InsertOutbox =
    InsertStatement<outbox::table, <NewOutboxRow as Insertable<outbox::table>>::Values>;

/// Adds a message inside the caller's transaction, so it is stored exactly
/// when the change it reports is.
pub async fn enqueue<C>(conn: &mut C, row: NewOutboxRow) -> QueryResult<usize>
where
    C: AsyncConnectionCore + Send,
    InsertOutbox: ExecuteDsl<C>,
{
    diesel::insert_into(outbox::table)
        .values(row)
        .execute(conn)
        .await
}

/// The oldest message neither delivered nor given up, due or not: messages
/// go out strictly in order, so a later one never overtakes it.
pub async fn next_pending(db: &Db) -> Result<Option<OutboxRow>> {
    db_run!(db, |conn| {
        outbox::table
            .filter(outbox::delivered_at.is_null())
            .filter(outbox::gave_up_at.is_null())
            .order(outbox::id.asc())
            .select(OutboxRow::as_select())
            .first(conn)
            .await
            .optional()
            .map_err(Error::from)
    })
}

/// Marks a message as accepted by the scheduler.
pub async fn mark_delivered(db: &Db, id: i64, now: i64) -> Result<()> {
    db_run!(db, |conn| {
        diesel::update(outbox::table.find(id))
            .set((
                outbox::delivered_at.eq(now),
                outbox::last_error.eq(None::<String>),
            ))
            .execute(conn)
            .await
            .map_err(Error::from)
    })?;
    Ok(())
}

/// Records a failed delivery and when to try again.
pub async fn record_failure(db: &Db, id: i64, error: &str, next_attempt_at: i64) -> Result<()> {
    let error = error.to_owned();
    db_run!(db, |conn| {
        diesel::update(outbox::table.find(id))
            .set((
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::next_attempt_at.eq(next_attempt_at),
                outbox::last_error.eq(Some(error)),
            ))
            .execute(conn)
            .await
            .map_err(Error::from)
    })?;
    Ok(())
}

/// Records a refusal no retry can change; the message is not tried again.
pub async fn give_up(db: &Db, id: i64, error: &str, now: i64) -> Result<()> {
    let error = error.to_owned();
    db_run!(db, |conn| {
        diesel::update(outbox::table.find(id))
            .set((
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::gave_up_at.eq(now),
                outbox::last_error.eq(Some(error)),
            ))
            .execute(conn)
            .await
            .map_err(Error::from)
    })?;
    Ok(())
}

/// Every message of a task, oldest first.
#[cfg(test)]
pub async fn list_for_task(db: &Db, task_id: &str) -> Result<Vec<OutboxRow>> {
    let task_id = task_id.to_owned();
    db_run!(db, |conn| {
        outbox::table
            .filter(outbox::task_id.eq(task_id))
            .order(outbox::id.asc())
            .select(OutboxRow::as_select())
            .load(conn)
            .await
            .map_err(Error::from)
    })
}
