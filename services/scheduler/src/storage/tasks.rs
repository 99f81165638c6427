//! Queries over `tasks`: the queue of machine-phase attempts and their
//! leases. The conditional updates here are what make a task leased once
//! and a lost lease's report refused.

use orchestra_db::prepared::PrepareDsl;
use std::future::Future;

use diesel::QueryResult;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{TaskRow, task_state};
use super::schema::tasks;

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

/// The task queue, on one connection.
pub trait TaskStore: Send {
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
    /// The tasks of a run an executor holds.
    fn leased_in_run(
        &mut self,
        run_id: &str,
        executor_id: &str,
    ) -> impl Future<Output = QueryResult<Vec<TaskRow>>> + Send;
    /// Leases a queued task; 0 when another executor got it first.
    fn lease_task(
        &mut self,
        key: &TaskKey,
        lease_id: &str,
        executor_id: &str,
        deadline: i64,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// Moves a live lease's deadline; 0 when the lease is gone or expired.
    fn extend_lease(
        &mut self,
        key: &TaskKey,
        lease_id: &str,
        now: i64,
        deadline: i64,
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
    /// The earliest deadline of a live lease; `None` when no lease is live.
    fn next_lease_deadline(&mut self) -> impl Future<Output = QueryResult<Option<i64>>> + Send;
}

macro_rules! impl_task_store {
    ($conn:ty) => {
        impl TaskStore for $conn {
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
                // One kind (every stream of Orchestra's executor) reads the
                // `tasks_due` index in order; several are merged by a sort.
                if let [kind] = kinds {
                    return tasks::table
                        .filter(tasks::state.eq(task_state::QUEUED))
                        .filter(tasks::kind.eq(kind))
                        .filter(tasks::available_at.le(now))
                        .order((tasks::available_at.asc(), tasks::created_at.asc()))
                        .limit(limit)
                        .select(TaskRow::as_select())
                        .load(self)
                        .await;
                }
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

            async fn leased_in_run(
                &mut self,
                run_id: &str,
                executor_id: &str,
            ) -> QueryResult<Vec<TaskRow>> {
                tasks::table
                    .filter(tasks::run_id.eq(run_id))
                    .filter(tasks::state.eq(task_state::LEASED))
                    .filter(tasks::executor_id.eq(executor_id))
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
                .prepared()
                .execute(self)
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
                .prepared()
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
                .prepared()
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

            async fn next_lease_deadline(&mut self) -> QueryResult<Option<i64>> {
                tasks::table
                    .filter(tasks::state.eq(task_state::LEASED))
                    .select(diesel::dsl::min(tasks::lease_deadline))
                    .get_result(self)
                    .await
            }
        }
    };
}

orchestra_db::impl_for_connections!(impl_task_store);
