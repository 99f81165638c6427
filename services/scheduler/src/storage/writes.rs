//! What one change to a run writes, sent to the database in one go. A
//! change touches a handful of tables (its phases, the run's head, the
//! event log, the task queue); written one statement after another that is
//! a round trip each on Postgres and a hand-off to SQLite's blocking thread
//! each. Here Postgres gets the statements pipelined (sent together,
//! answered together) and SQLite runs them in one hand-off, and the changed
//! phases of a change go in one statement however many there are.

use std::future::Future;

use diesel::QueryResult;
use diesel::SqliteConnection;
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::AsyncPgConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use futures::future::{BoxFuture, try_join_all};
use orchestra_db::outbox::{Message, OutboxStore};
use orchestra_db::prepared::PrepareDsl;

use super::changes::{CHANGES_CHANNEL, Change};
use super::models::{EventRow, PhaseRow, RunHead, RunRow, TaskRow, task_state};
use super::schema::{events, phases, runs, tasks};
use super::tasks::TaskKey;

/// Rows per statement, inside both backends' limits on bound values
/// (SQLite's is 32,766; a phase row binds 14).
const CHUNK: usize = 1000;

/// Up to how many rows a Postgres insert stays prepared: the few rows of
/// an ordinary change repeat, a fan-out's thousand do not.
const PREPARED_ROWS: usize = 8;

/// Everything one change writes, in the order it must land.
#[derive(Debug, Default)]
pub struct RunWrite {
    /// A run being created: inserted first, as every other row names it.
    pub created: Option<RunRow>,
    /// Phase rows to insert (a run being created).
    pub new_phases: Vec<PhaseRow>,
    /// Phase rows changed, saved whole.
    pub phases: Vec<PhaseRow>,
    /// The head of an existing run, changed.
    pub run: Option<RunHead>,
    /// Events appended to the run's log.
    pub events: Vec<EventRow>,
    /// Attempts whose tasks are done.
    pub finished: Vec<TaskKey>,
    /// The run and the phases whose queued or leased tasks are withdrawn,
    /// before the new tasks below go in.
    pub withdrawn: Vec<(String, String)>,
    /// Tasks queued (or leased at once).
    pub tasks: Vec<TaskRow>,
    /// Hand-offs for the outbox.
    pub outbox: Vec<Message>,
    /// The notification other replicas get on commit.
    pub change: Option<Change>,
}

/// Writes a [`RunWrite`] inside the caller's transaction.
pub trait WriteRun: Send {
    /// Writes everything in `write`, in as few round trips as the backend
    /// allows.
    fn write_run(&mut self, write: RunWrite) -> impl Future<Output = QueryResult<()>> + Send;
}

type Pending<'a> = BoxFuture<'a, QueryResult<usize>>;

impl WriteRun for AsyncPgConnection {
    async fn write_run(&mut self, write: RunWrite) -> QueryResult<()> {
        let RunWrite {
            created,
            new_phases,
            phases: changed,
            run,
            events: new_events,
            finished,
            withdrawn,
            tasks: new_tasks,
            outbox,
            change,
        } = write;
        {
            // Shared, so that the statements of each stage are pipelined.
            // Postgres runs them in the order sent; a statement whose text
            // is not yet prepared may be sent after a later one, so rows
            // that depend on others go in a later stage.
            let conn: &AsyncPgConnection = self;
            if let Some(row) = &created {
                diesel_async::RunQueryDsl::execute(
                    diesel::insert_into(runs::table).values(row),
                    &mut &*conn,
                )
                .await?;
            }
            let mut first: Vec<Pending<'_>> = Vec::new();
            for chunk in new_phases.chunks(CHUNK) {
                first.push(pg_insert(
                    conn,
                    diesel::insert_into(phases::table).values(chunk),
                    chunk.len(),
                ));
            }
            match changed.as_slice() {
                [] => {}
                [one] => first.push(Box::pin(diesel_async::RunQueryDsl::execute(
                    diesel::update(phases::table.find((&one.run_id, &one.phase_id)))
                        .set(one)
                        .prepared(),
                    &mut &*conn,
                ))),
                many => {
                    for chunk in many.chunks(CHUNK) {
                        first.push(pg_insert(conn, upsert_phases(chunk), chunk.len()));
                    }
                }
            }
            if let Some(head) = &run {
                first.push(Box::pin(diesel_async::RunQueryDsl::execute(
                    update_run(head).prepared(),
                    &mut &*conn,
                )));
            }
            for chunk in new_events.chunks(CHUNK) {
                first.push(pg_insert(
                    conn,
                    diesel::insert_into(events::table).values(chunk),
                    chunk.len(),
                ));
            }
            for key in &finished {
                first.push(Box::pin(diesel_async::RunQueryDsl::execute(
                    finish(key).prepared(),
                    &mut &*conn,
                )));
            }
            for (run_id, phase_id) in &withdrawn {
                first.push(Box::pin(diesel_async::RunQueryDsl::execute(
                    withdraw(run_id, phase_id).prepared(),
                    &mut &*conn,
                )));
            }
            try_join_all(first).await?;

            let mut second: Vec<Pending<'_>> = Vec::new();
            for chunk in new_tasks.chunks(CHUNK) {
                second.push(pg_insert(
                    conn,
                    diesel::insert_into(tasks::table).values(chunk),
                    chunk.len(),
                ));
            }
            if let Some(change) = &change {
                use diesel::sql_types::Text;
                second.push(Box::pin(diesel_async::RunQueryDsl::execute(
                    diesel::sql_query("SELECT pg_notify($1, $2)")
                        .bind::<Text, _>(CHANGES_CHANNEL)
                        .bind::<Text, _>(change.payload())
                        .prepared(),
                    &mut &*conn,
                )));
            }
            try_join_all(second).await?;
        }
        // Hand-offs are rare (human phases): one statement each.
        for message in outbox {
            self.enqueue(message).await?;
        }
        Ok(())
    }
}

/// An insert of `rows` rows, kept prepared when it is small.
fn pg_insert<'a, Q>(conn: &'a AsyncPgConnection, insert: Q, rows: usize) -> Pending<'a>
where
    Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>
        + diesel::query_builder::QueryId
        + Send
        + 'a,
{
    if rows <= PREPARED_ROWS {
        Box::pin(diesel_async::RunQueryDsl::execute(
            insert.prepared(),
            &mut &*conn,
        ))
    } else {
        Box::pin(diesel_async::RunQueryDsl::execute(insert, &mut &*conn))
    }
}

impl WriteRun for SyncConnectionWrapper<SqliteConnection> {
    async fn write_run(&mut self, mut write: RunWrite) -> QueryResult<()> {
        let outbox = std::mem::take(&mut write.outbox);
        // One hand-off to the blocking thread for the whole change.
        self.spawn_blocking(move |conn| write_sqlite(conn, write))
            .await?;
        for message in outbox {
            self.enqueue(message).await?;
        }
        Ok(())
    }
}

/// The statements of a change, in order, on SQLite's blocking thread (no
/// notification: SQLite is embedded in one process).
fn write_sqlite(conn: &mut SqliteConnection, write: RunWrite) -> QueryResult<()> {
    use diesel::RunQueryDsl as _;
    if let Some(row) = &write.created {
        diesel::insert_into(runs::table).values(row).execute(conn)?;
    }
    for chunk in write.new_phases.chunks(CHUNK) {
        diesel::insert_into(phases::table)
            .values(chunk)
            .execute(conn)?;
    }
    for row in &write.phases {
        diesel::update(phases::table.find((&row.run_id, &row.phase_id)))
            .set(row)
            .prepared()
            .execute(conn)?;
    }
    if let Some(head) = &write.run {
        update_run(head).prepared().execute(conn)?;
    }
    for chunk in write.events.chunks(CHUNK) {
        diesel::insert_into(events::table)
            .values(chunk)
            .execute(conn)?;
    }
    for key in &write.finished {
        finish(key).prepared().execute(conn)?;
    }
    for (run_id, phase_id) in &write.withdrawn {
        withdraw(run_id, phase_id).prepared().execute(conn)?;
    }
    for chunk in write.tasks.chunks(CHUNK) {
        diesel::insert_into(tasks::table)
            .values(chunk)
            .execute(conn)?;
    }
    Ok(())
}

/// Saves a run's status, cancel flag, last sequence and phase tally.
fn update_run(
    head: &RunHead,
) -> impl diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
+ diesel::query_builder::QueryId
+ Send
+ '_ {
    diesel::update(runs::table.find(&head.id)).set((
        runs::status.eq(&head.status),
        runs::cancelled.eq(head.cancelled),
        runs::last_seq.eq(head.last_seq),
        runs::updated_at.eq(head.updated_at),
        runs::phase_tally.eq(&head.phase_tally),
    ))
}

/// Marks an attempt's task done.
fn finish(
    key: &TaskKey,
) -> impl diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
+ diesel::query_builder::QueryId
+ Send
+ '_ {
    diesel::update(tasks::table.find((&key.run_id, &key.phase_id, key.attempt)))
        .set(tasks::state.eq(task_state::DONE))
}

/// Withdraws a phase's queued or leased tasks.
fn withdraw<'a>(
    run_id: &'a str,
    phase_id: &'a str,
) -> impl diesel::query_builder::QueryFragment<diesel::pg::Pg>
+ diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>
+ diesel::query_builder::QueryId
+ Send
+ 'a {
    diesel::update(
        tasks::table
            .filter(tasks::run_id.eq(run_id))
            .filter(tasks::phase_id.eq(phase_id))
            .filter(tasks::state.eq_any([task_state::QUEUED, task_state::LEASED])),
    )
    .set(tasks::state.eq(task_state::CANCELLED))
}

/// Saves several phase rows in one statement on Postgres: each row is
/// inserted, conflicts with the row it replaces, and overwrites it.
fn upsert_phases(
    rows: &[PhaseRow],
) -> impl diesel::query_builder::QueryFragment<diesel::pg::Pg> + diesel::query_builder::QueryId + Send + '_
{
    diesel::insert_into(phases::table)
        .values(rows)
        .on_conflict((phases::run_id, phases::phase_id))
        .do_update()
        .set((
            phases::idx.eq(excluded(phases::idx)),
            phases::kind.eq(excluded(phases::kind)),
            phases::state.eq(excluded(phases::state)),
            phases::attempt.eq(excluded(phases::attempt)),
            phases::started_at.eq(excluded(phases::started_at)),
            phases::finished_at.eq(excluded(phases::finished_at)),
            phases::error.eq(excluded(phases::error)),
            phases::output_json.eq(excluded(phases::output_json)),
            phases::human_task_id.eq(excluded(phases::human_task_id)),
            phases::executor_id.eq(excluded(phases::executor_id)),
            phases::feedback_json.eq(excluded(phases::feedback_json)),
            phases::unmet_needs.eq(excluded(phases::unmet_needs)),
        ))
}
