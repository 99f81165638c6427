//! The scheduler's storage: its tables ([`schema`]), their rows
//! ([`models`]) and the queries it runs ([`Store`]; the executors' presence
//! and suspension in [`executors::ExecutorStore`]).
//!
//! [`Store`] is implemented for both backends' connections by one macro that
//! pastes the same diesel code into each impl, so each query is written once
//! and compiled for Postgres and for SQLite, and the engine above stays
//! generic over `C: Store` with no diesel bounds at all.

pub mod executors;
pub mod models;
pub mod schema;

use std::future::Future;

use diesel::QueryResult;

use models::{EventRow, PhaseRow, RunRow, TaskRow, TemplateRow};

/// Identifies one attempt's task row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskKey {
    /// The run.
    pub run_id: String,
    /// The phase within the run.
    pub phase_id: String,
    /// The attempt, from 1.
    pub attempt: i32,
}

/// Filters and paging for [`Store::list_runs`].
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only these statuses (any when empty).
    pub statuses: Vec<String>,
    /// Only this template (any when `None`).
    pub template_name: Option<String>,
    /// Only runs older than this `(created_at, id)`, newest first.
    pub before: Option<(i64, String)>,
    /// At most this many.
    pub limit: i64,
}

/// The channel other scheduler replicas listen on for commits.
pub const CHANGES_CHANNEL: &str = "orchestra_scheduler_changes";

/// Tells other replicas that a transaction changed runs or the queue.
/// Postgres sends a NOTIFY, delivered when the transaction commits; SQLite
/// is embedded in one process, so there is nobody to tell.
pub trait Notify: Send {
    /// Queues a notification for commit.
    fn notify_changed(&mut self) -> impl Future<Output = QueryResult<()>> + Send;
}

impl Notify for diesel_async::AsyncPgConnection {
    async fn notify_changed(&mut self) -> QueryResult<()> {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(format!("NOTIFY {CHANGES_CHANNEL}"))
            .execute(self)
            .await
            .map(drop)
    }
}

impl Notify
    for diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>
{
    async fn notify_changed(&mut self) -> QueryResult<()> {
        Ok(())
    }
}

/// Every query the scheduler runs, on one connection.
pub trait Store: Notify + orchestra_db::outbox::OutboxStore {
    /// Stores a template version.
    fn insert_template(&mut self, row: TemplateRow)
    -> impl Future<Output = QueryResult<()>> + Send;
    /// A template's newest version.
    fn latest_template(
        &mut self,
        name: &str,
    ) -> impl Future<Output = QueryResult<Option<TemplateRow>>> + Send;
    /// One version of a template.
    fn template_version(
        &mut self,
        name: &str,
        version: i32,
    ) -> impl Future<Output = QueryResult<Option<TemplateRow>>> + Send;
    /// Template names after `after`, alphabetically.
    fn template_names(
        &mut self,
        after: &str,
        limit: i64,
    ) -> impl Future<Output = QueryResult<Vec<String>>> + Send;

    /// Stores a new run.
    fn insert_run(&mut self, row: RunRow) -> impl Future<Output = QueryResult<()>> + Send;
    /// One run.
    fn get_run(&mut self, id: &str) -> impl Future<Output = QueryResult<Option<RunRow>>> + Send;
    /// The run a StartRun request id made.
    fn run_by_request_id(
        &mut self,
        request_id: &str,
    ) -> impl Future<Output = QueryResult<Option<RunRow>>> + Send;
    /// Takes the run's row lock for the rest of the transaction (a write on
    /// both backends): every change to a run is serialized on it. Returns
    /// the rows touched (0 when the run does not exist).
    fn lock_run(&mut self, id: &str, now: i64) -> impl Future<Output = QueryResult<usize>> + Send;
    /// Saves a run's status, cancel flag and last sequence.
    fn update_run(&mut self, row: &RunRow) -> impl Future<Output = QueryResult<()>> + Send;
    /// Runs newest first.
    fn list_runs(
        &mut self,
        filter: &RunFilter,
    ) -> impl Future<Output = QueryResult<Vec<RunRow>>> + Send;

    /// Stores a run's phases.
    fn insert_phases(
        &mut self,
        rows: Vec<PhaseRow>,
    ) -> impl Future<Output = QueryResult<()>> + Send;
    /// A run's phases in declaration order.
    fn load_phases(
        &mut self,
        run_id: &str,
    ) -> impl Future<Output = QueryResult<Vec<PhaseRow>>> + Send;
    /// Saves one phase.
    fn update_phase(&mut self, row: &PhaseRow) -> impl Future<Output = QueryResult<()>> + Send;

    /// Appends events.
    fn insert_events(
        &mut self,
        rows: Vec<EventRow>,
    ) -> impl Future<Output = QueryResult<()>> + Send;
    /// A run's events after a sequence, in order.
    fn events_after(
        &mut self,
        run_id: &str,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = QueryResult<Vec<EventRow>>> + Send;

    /// Queues an attempt.
    fn insert_task(&mut self, row: TaskRow) -> impl Future<Output = QueryResult<()>> + Send;
    /// One attempt's task.
    fn get_task(
        &mut self,
        key: &TaskKey,
    ) -> impl Future<Output = QueryResult<Option<TaskRow>>> + Send;
    /// Queued tasks of the given kinds that are due, oldest first.
    fn due_tasks(
        &mut self,
        kinds: &[String],
        now: i64,
        limit: i64,
    ) -> impl Future<Output = QueryResult<Vec<TaskRow>>> + Send;
    /// Leases a queued task; 0 when another executor got it first.
    fn lease_task(
        &mut self,
        key: &TaskKey,
        lease_id: &str,
        executor_id: &str,
        deadline: i64,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// How many tasks an executor holds.
    fn count_leased(&mut self, executor_id: &str) -> impl Future<Output = QueryResult<i64>> + Send;
    /// Moves a live lease's deadline; 0 when the lease is gone or expired.
    fn extend_lease(
        &mut self,
        key: &TaskKey,
        lease_id: &str,
        now: i64,
        deadline: i64,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// Sets a task's state.
    fn set_task_state(
        &mut self,
        key: &TaskKey,
        state: &str,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// Withdraws a phase's queued or leased tasks.
    fn cancel_phase_tasks(
        &mut self,
        run_id: &str,
        phase_id: &str,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// Moves every live lease's deadline to at least `until`: the time a
    /// database outage took does not count against leases, whose executors
    /// could not heartbeat meanwhile. Returns how many moved.
    fn pause_leases(&mut self, until: i64) -> impl Future<Output = QueryResult<usize>> + Send;
    /// Leases whose deadline has passed.
    fn expired_leases(
        &mut self,
        now: i64,
        limit: i64,
    ) -> impl Future<Output = QueryResult<Vec<TaskRow>>> + Send;
}

macro_rules! impl_store {
    ($conn:ty) => {
        impl Store for $conn {
            async fn insert_template(&mut self, row: TemplateRow) -> QueryResult<()> {
                diesel::insert_into(templates::table)
                    .values(row)
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn latest_template(&mut self, name: &str) -> QueryResult<Option<TemplateRow>> {
                templates::table
                    .filter(templates::name.eq(name))
                    .order(templates::version.desc())
                    .select(TemplateRow::as_select())
                    .first(self)
                    .await
                    .optional()
            }

            async fn template_version(
                &mut self,
                name: &str,
                version: i32,
            ) -> QueryResult<Option<TemplateRow>> {
                templates::table
                    .filter(templates::name.eq(name))
                    .filter(templates::version.eq(version))
                    .select(TemplateRow::as_select())
                    .first(self)
                    .await
                    .optional()
            }

            async fn template_names(
                &mut self,
                after: &str,
                limit: i64,
            ) -> QueryResult<Vec<String>> {
                templates::table
                    .filter(templates::name.gt(after))
                    .filter(templates::version.eq(1))
                    .order(templates::name.asc())
                    .select(templates::name)
                    .limit(limit)
                    .load(self)
                    .await
            }

            async fn insert_run(&mut self, row: RunRow) -> QueryResult<()> {
                diesel::insert_into(runs::table)
                    .values(row)
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn get_run(&mut self, id: &str) -> QueryResult<Option<RunRow>> {
                runs::table
                    .find(id)
                    .select(RunRow::as_select())
                    .first(self)
                    .await
                    .optional()
            }

            async fn run_by_request_id(&mut self, request_id: &str) -> QueryResult<Option<RunRow>> {
                runs::table
                    .filter(runs::request_id.eq(request_id))
                    .select(RunRow::as_select())
                    .first(self)
                    .await
                    .optional()
            }

            async fn lock_run(&mut self, id: &str, now: i64) -> QueryResult<usize> {
                diesel::update(runs::table.find(id))
                    .set(runs::updated_at.eq(now))
                    .execute(self)
                    .await
            }

            async fn update_run(&mut self, row: &RunRow) -> QueryResult<()> {
                diesel::update(runs::table.find(&row.id))
                    .set((
                        runs::status.eq(&row.status),
                        runs::cancelled.eq(row.cancelled),
                        runs::last_seq.eq(row.last_seq),
                        runs::updated_at.eq(row.updated_at),
                    ))
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn list_runs(&mut self, filter: &RunFilter) -> QueryResult<Vec<RunRow>> {
                let mut query = runs::table.select(RunRow::as_select()).into_boxed();
                if !filter.statuses.is_empty() {
                    query = query.filter(runs::status.eq_any(filter.statuses.clone()));
                }
                if let Some(name) = &filter.template_name {
                    query = query.filter(runs::template_name.eq(name.clone()));
                }
                if let Some((created_at, id)) = &filter.before {
                    query = query.filter(
                        runs::created_at.lt(*created_at).or(runs::created_at
                            .eq(*created_at)
                            .and(runs::id.lt(id.clone()))),
                    );
                }
                query
                    .order((runs::created_at.desc(), runs::id.desc()))
                    .limit(filter.limit)
                    .load(self)
                    .await
            }

            async fn insert_phases(&mut self, rows: Vec<PhaseRow>) -> QueryResult<()> {
                for row in rows {
                    diesel::insert_into(phases::table)
                        .values(row)
                        .execute(self)
                        .await?;
                }
                Ok(())
            }

            async fn load_phases(&mut self, run_id: &str) -> QueryResult<Vec<PhaseRow>> {
                phases::table
                    .filter(phases::run_id.eq(run_id))
                    .order(phases::idx.asc())
                    .select(PhaseRow::as_select())
                    .load(self)
                    .await
            }

            async fn update_phase(&mut self, row: &PhaseRow) -> QueryResult<()> {
                diesel::update(phases::table.find((&row.run_id, &row.phase_id)))
                    .set(row)
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn insert_events(&mut self, rows: Vec<EventRow>) -> QueryResult<()> {
                for row in rows {
                    diesel::insert_into(events::table)
                        .values(row)
                        .execute(self)
                        .await?;
                }
                Ok(())
            }

            async fn events_after(
                &mut self,
                run_id: &str,
                after: i64,
                limit: i64,
            ) -> QueryResult<Vec<EventRow>> {
                events::table
                    .filter(events::run_id.eq(run_id))
                    .filter(events::seq.gt(after))
                    .order(events::seq.asc())
                    .limit(limit)
                    .select(EventRow::as_select())
                    .load(self)
                    .await
            }

            async fn insert_task(&mut self, row: TaskRow) -> QueryResult<()> {
                diesel::insert_into(tasks::table)
                    .values(row)
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn get_task(&mut self, key: &TaskKey) -> QueryResult<Option<TaskRow>> {
                tasks::table
                    .find((&key.run_id, &key.phase_id, key.attempt))
                    .select(TaskRow::as_select())
                    .first(self)
                    .await
                    .optional()
            }

            async fn due_tasks(
                &mut self,
                kinds: &[String],
                now: i64,
                limit: i64,
            ) -> QueryResult<Vec<TaskRow>> {
                tasks::table
                    .filter(tasks::state.eq(task_state::QUEUED))
                    .filter(tasks::available_at.le(now))
                    .filter(tasks::kind.eq_any(kinds.to_vec()))
                    .order((tasks::available_at.asc(), tasks::created_at.asc()))
                    .limit(limit)
                    .select(TaskRow::as_select())
                    .load(self)
                    .await
            }

            async fn lease_task(
                &mut self,
                key: &TaskKey,
                lease_id: &str,
                executor_id: &str,
                deadline: i64,
            ) -> QueryResult<usize> {
                diesel::update(
                    tasks::table
                        .find((&key.run_id, &key.phase_id, key.attempt))
                        .filter(tasks::state.eq(task_state::QUEUED)),
                )
                .set((
                    tasks::state.eq(task_state::LEASED),
                    tasks::lease_id.eq(lease_id),
                    tasks::executor_id.eq(executor_id),
                    tasks::lease_deadline.eq(deadline),
                ))
                .execute(self)
                .await
            }

            async fn count_leased(&mut self, executor_id: &str) -> QueryResult<i64> {
                tasks::table
                    .filter(tasks::state.eq(task_state::LEASED))
                    .filter(tasks::executor_id.eq(executor_id))
                    .count()
                    .get_result(self)
                    .await
            }

            async fn extend_lease(
                &mut self,
                key: &TaskKey,
                lease_id: &str,
                now: i64,
                deadline: i64,
            ) -> QueryResult<usize> {
                diesel::update(
                    tasks::table
                        .find((&key.run_id, &key.phase_id, key.attempt))
                        .filter(tasks::state.eq(task_state::LEASED))
                        .filter(tasks::lease_id.eq(lease_id))
                        .filter(tasks::lease_deadline.ge(now)),
                )
                .set(tasks::lease_deadline.eq(deadline))
                .execute(self)
                .await
            }

            async fn set_task_state(&mut self, key: &TaskKey, state: &str) -> QueryResult<usize> {
                diesel::update(tasks::table.find((&key.run_id, &key.phase_id, key.attempt)))
                    .set(tasks::state.eq(state))
                    .execute(self)
                    .await
            }

            async fn cancel_phase_tasks(
                &mut self,
                run_id: &str,
                phase_id: &str,
            ) -> QueryResult<usize> {
                diesel::update(
                    tasks::table
                        .filter(tasks::run_id.eq(run_id))
                        .filter(tasks::phase_id.eq(phase_id))
                        .filter(tasks::state.eq_any([task_state::QUEUED, task_state::LEASED])),
                )
                .set(tasks::state.eq(task_state::CANCELLED))
                .execute(self)
                .await
            }

            async fn pause_leases(&mut self, until: i64) -> QueryResult<usize> {
                diesel::update(
                    tasks::table
                        .filter(tasks::state.eq(task_state::LEASED))
                        .filter(tasks::lease_deadline.lt(until)),
                )
                .set(tasks::lease_deadline.eq(until))
                .execute(self)
                .await
            }

            async fn expired_leases(&mut self, now: i64, limit: i64) -> QueryResult<Vec<TaskRow>> {
                tasks::table
                    .filter(tasks::state.eq(task_state::LEASED))
                    .filter(tasks::lease_deadline.lt(now))
                    .order(tasks::lease_deadline.asc())
                    .limit(limit)
                    .select(TaskRow::as_select())
                    .load(self)
                    .await
            }
        }
    };
}

mod backends {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;

    use super::models::{EventRow, PhaseRow, RunRow, TaskRow, TemplateRow, task_state};
    use super::schema::{events, phases, runs, tasks, templates};
    use super::{RunFilter, Store, TaskKey};

    orchestra_db::impl_for_connections!(impl_store);
}
