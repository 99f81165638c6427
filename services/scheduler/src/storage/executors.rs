//! Queries over `executors`: which executors hold a Lease stream (seen
//! recently by the replica serving it), which are suspended for letting a
//! lease expire, and the leases of executors that are gone.

use std::future::Future;

use diesel::QueryResult;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use orchestra_db::prepared::PrepareDsl;

use super::models::{ExecutorRow, TaskRow, task_state};
use super::schema::{executors, tasks};

/// The executors' presence and suspension, on one connection.
pub trait ExecutorStore: Send {
    /// Records a new Lease stream: the executor is present and, having
    /// reconnected, no longer suspended.
    fn register_executor(
        &mut self,
        executor_id: &str,
        session_id: &str,
        now: i64,
    ) -> impl Future<Output = QueryResult<()>> + Send;
    /// Marks the executor seen by its current stream; 0 when a newer stream
    /// of the same executor has taken over.
    fn touch_executor(
        &mut self,
        executor_id: &str,
        session_id: &str,
        now: i64,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// Marks the executor seen if its mark is older than `stale_before`
    /// (and it is not gone): it has just reported, whichever replica
    /// serves its stream.
    fn refresh_presence(
        &mut self,
        executor_id: &str,
        now: i64,
        stale_before: i64,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// Marks the executor gone when `session_id` is still its stream.
    fn forget_executor(
        &mut self,
        executor_id: &str,
        session_id: &str,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// One executor, if it ever leased (for tests: the engine reads it
    /// through [`ExecutorStore::lease_outlook`]).
    #[cfg(test)]
    fn get_executor(
        &mut self,
        executor_id: &str,
    ) -> impl Future<Output = QueryResult<Option<ExecutorRow>>> + Send;
    /// Sets or clears an executor's suspension.
    fn set_executor_suspended(
        &mut self,
        executor_id: &str,
        suspended: bool,
    ) -> impl Future<Output = QueryResult<usize>> + Send;
    /// What a Lease stream decides on, in one statement: whether its
    /// executor is suspended (`None` when it never leased), how many leases
    /// it holds, and when the next queued task of its kinds is due.
    fn lease_outlook(
        &mut self,
        executor_id: &str,
        kinds: &[String],
    ) -> impl Future<Output = QueryResult<(Option<bool>, i64, Option<i64>)>> + Send;
    /// Leases held by executors not seen since `seen_before`.
    fn leases_of_absent_executors(
        &mut self,
        seen_before: i64,
        limit: i64,
    ) -> impl Future<Output = QueryResult<Vec<TaskRow>>> + Send;
}

macro_rules! impl_executor_store {
    ($conn:ty) => {
        impl ExecutorStore for $conn {
            async fn register_executor(
                &mut self,
                executor_id: &str,
                session_id: &str,
                now: i64,
            ) -> QueryResult<()> {
                let row = ExecutorRow {
                    executor_id: executor_id.to_owned(),
                    session_id: session_id.to_owned(),
                    seen_at: now,
                    suspended: false,
                };
                diesel::insert_into(executors::table)
                    .values(&row)
                    .on_conflict(executors::executor_id)
                    .do_update()
                    .set((
                        executors::session_id.eq(session_id),
                        executors::seen_at.eq(now),
                        executors::suspended.eq(false),
                    ))
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn touch_executor(
                &mut self,
                executor_id: &str,
                session_id: &str,
                now: i64,
            ) -> QueryResult<usize> {
                diesel::update(
                    executors::table
                        .find(executor_id)
                        .filter(executors::session_id.eq(session_id)),
                )
                .set(executors::seen_at.eq(now))
                .execute(self)
                .await
            }

            async fn refresh_presence(
                &mut self,
                executor_id: &str,
                now: i64,
                stale_before: i64,
            ) -> QueryResult<usize> {
                diesel::update(
                    executors::table
                        .find(executor_id)
                        .filter(executors::seen_at.gt(0))
                        .filter(executors::seen_at.lt(stale_before)),
                )
                .set(executors::seen_at.eq(now))
                .prepared()
                .execute(self)
                .await
            }

            async fn forget_executor(
                &mut self,
                executor_id: &str,
                session_id: &str,
            ) -> QueryResult<usize> {
                diesel::update(
                    executors::table
                        .find(executor_id)
                        .filter(executors::session_id.eq(session_id)),
                )
                .set(executors::seen_at.eq(0))
                .execute(self)
                .await
            }

            #[cfg(test)]
            async fn get_executor(
                &mut self,
                executor_id: &str,
            ) -> QueryResult<Option<ExecutorRow>> {
                executors::table
                    .find(executor_id)
                    .select(ExecutorRow::as_select())
                    .first(self)
                    .await
                    .optional()
            }

            async fn lease_outlook(
                &mut self,
                executor_id: &str,
                kinds: &[String],
            ) -> QueryResult<(Option<bool>, i64, Option<i64>)> {
                let suspended = executors::table
                    .find(executor_id)
                    .select(executors::suspended)
                    .single_value();
                let held = tasks::table
                    .filter(tasks::state.eq(task_state::LEASED))
                    .filter(tasks::executor_id.eq(executor_id))
                    .count()
                    .single_value();
                // One kind reads the first entry of the `tasks_due` index;
                // several are scanned.
                let (suspended, held, next_due) = if let [kind] = kinds {
                    let next_due = tasks::table
                        .filter(tasks::state.eq(task_state::QUEUED))
                        .filter(tasks::kind.eq(kind))
                        .select(diesel::dsl::min(tasks::available_at))
                        .single_value();
                    diesel::select((suspended, held, next_due))
                        .get_result::<(Option<bool>, Option<i64>, Option<i64>)>(self)
                        .await?
                } else {
                    let next_due = tasks::table
                        .filter(tasks::state.eq(task_state::QUEUED))
                        .filter(tasks::kind.eq_any(kinds.to_vec()))
                        .select(diesel::dsl::min(tasks::available_at))
                        .single_value();
                    diesel::select((suspended, held, next_due))
                        .get_result::<(Option<bool>, Option<i64>, Option<i64>)>(self)
                        .await?
                };
                Ok((suspended, held.unwrap_or(0), next_due))
            }

            async fn set_executor_suspended(
                &mut self,
                executor_id: &str,
                suspended: bool,
            ) -> QueryResult<usize> {
                diesel::update(executors::table.find(executor_id))
                    .set(executors::suspended.eq(suspended))
                    .execute(self)
                    .await
            }

            async fn leases_of_absent_executors(
                &mut self,
                seen_before: i64,
                limit: i64,
            ) -> QueryResult<Vec<TaskRow>> {
                let absent = executors::table
                    .filter(executors::seen_at.lt(seen_before))
                    .select(executors::executor_id.nullable());
                tasks::table
                    .filter(tasks::state.eq(task_state::LEASED))
                    .filter(tasks::executor_id.eq_any(absent))
                    .order(tasks::lease_deadline.asc())
                    .limit(limit)
                    .select(TaskRow::as_select())
                    .load(self)
                    .await
            }
        }
    };
}

orchestra_db::impl_for_connections!(impl_executor_store);
