//! Inserting many rows at once: a run's phases when it starts, and the
//! events and tasks of a change that readies a whole fan-out. Written once
//! per connection type because the backends do it differently: Postgres
//! takes multi-row statements; on SQLite the rows are written on the
//! blocking thread in one hand-off instead of one hand-off per row.

use std::future::Future;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use orchestra_db::prepared::PrepareDsl;

use super::models::{EventRow, PhaseRow, TaskRow};
use super::schema::{events, phases, tasks};

/// Rows per statement, inside both backends' limits on bound values
/// (SQLite's is 32,766; a phase row binds 14).
const CHUNK: usize = 1000;

/// Up to how many rows a Postgres insert stays prepared: the few rows of
/// an ordinary change repeat, a fan-out's thousand do not.
const PREPARED_ROWS: usize = 8;

/// Many rows of one table in as few round trips as the backend allows.
pub trait BulkInsert: Send {
    /// Stores phase rows.
    fn insert_phase_rows(
        &mut self,
        rows: Vec<PhaseRow>,
    ) -> impl Future<Output = QueryResult<()>> + Send;
    /// Stores event rows.
    fn insert_event_rows(
        &mut self,
        rows: Vec<EventRow>,
    ) -> impl Future<Output = QueryResult<()>> + Send;
    /// Stores task rows.
    fn insert_task_rows(
        &mut self,
        rows: Vec<TaskRow>,
    ) -> impl Future<Output = QueryResult<()>> + Send;
}

impl BulkInsert for AsyncPgConnection {
    async fn insert_phase_rows(&mut self, rows: Vec<PhaseRow>) -> QueryResult<()> {
        for chunk in rows.chunks(CHUNK) {
            let insert = diesel::insert_into(phases::table).values(chunk);
            if chunk.len() <= PREPARED_ROWS {
                diesel_async::RunQueryDsl::execute(insert.prepared(), self).await?;
            } else {
                diesel_async::RunQueryDsl::execute(insert, self).await?;
            }
        }
        Ok(())
    }

    async fn insert_event_rows(&mut self, rows: Vec<EventRow>) -> QueryResult<()> {
        for chunk in rows.chunks(CHUNK) {
            let insert = diesel::insert_into(events::table).values(chunk);
            if chunk.len() <= PREPARED_ROWS {
                diesel_async::RunQueryDsl::execute(insert.prepared(), self).await?;
            } else {
                diesel_async::RunQueryDsl::execute(insert, self).await?;
            }
        }
        Ok(())
    }

    async fn insert_task_rows(&mut self, rows: Vec<TaskRow>) -> QueryResult<()> {
        for chunk in rows.chunks(CHUNK) {
            let insert = diesel::insert_into(tasks::table).values(chunk);
            if chunk.len() <= PREPARED_ROWS {
                diesel_async::RunQueryDsl::execute(insert.prepared(), self).await?;
            } else {
                diesel_async::RunQueryDsl::execute(insert, self).await?;
            }
        }
        Ok(())
    }
}

impl BulkInsert for SyncConnectionWrapper<diesel::SqliteConnection> {
    async fn insert_phase_rows(&mut self, rows: Vec<PhaseRow>) -> QueryResult<()> {
        self.spawn_blocking(move |conn| {
            for chunk in rows.chunks(CHUNK) {
                diesel::RunQueryDsl::execute(
                    diesel::insert_into(phases::table).values(chunk),
                    conn,
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn insert_event_rows(&mut self, rows: Vec<EventRow>) -> QueryResult<()> {
        self.spawn_blocking(move |conn| {
            for chunk in rows.chunks(CHUNK) {
                diesel::RunQueryDsl::execute(
                    diesel::insert_into(events::table).values(chunk),
                    conn,
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn insert_task_rows(&mut self, rows: Vec<TaskRow>) -> QueryResult<()> {
        self.spawn_blocking(move |conn| {
            for chunk in rows.chunks(CHUNK) {
                diesel::RunQueryDsl::execute(
                    diesel::insert_into(tasks::table).values(chunk),
                    conn,
                )?;
            }
            Ok(())
        })
        .await
    }
}
