//! Queries over `runs`: the row lock every change to a run takes first
//! ([`RunLock`]), and reading runs back one at a time or a page at a time
//! (a run is created and saved by [`super::writes`]).

use std::future::Future;

use diesel::QueryResult;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::{RunHead, RunRow};
use super::schema::runs;

/// Filters and paging for [`RunStore::list_runs`].
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

/// Runs, on one connection.
pub trait RunStore: Send {
    /// One run.
    fn get_run(&mut self, id: &str) -> impl Future<Output = QueryResult<Option<RunRow>>> + Send;
    /// The run a StartRun request id made.
    fn run_by_request_id(
        &mut self,
        request_id: &str,
    ) -> impl Future<Output = QueryResult<Option<RunRow>>> + Send;
    /// Runs newest first.
    fn list_runs(
        &mut self,
        filter: &RunFilter,
    ) -> impl Future<Output = QueryResult<Vec<RunRow>>> + Send;
}

macro_rules! impl_run_store {
    ($conn:ty) => {
        impl RunStore for $conn {
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
        }
    };
}

orchestra_db::impl_for_connections!(impl_run_store);

/// The row lock every change to a run takes first, read in the same
/// statement. Written per backend: Postgres locks the row as an update
/// would (`FOR NO KEY UPDATE`, so foreign-key checks do not wait on it);
/// SQLite's write transactions are `IMMEDIATE`, so the database is locked
/// already and a read is enough.
pub trait RunLock: Send {
    /// Locks a run for the rest of the transaction and reads it without
    /// its frozen template; `None` when it does not exist.
    fn lock_run_head(
        &mut self,
        id: &str,
    ) -> impl Future<Output = QueryResult<Option<RunHead>>> + Send;
}

impl RunLock for diesel_async::AsyncPgConnection {
    async fn lock_run_head(&mut self, id: &str) -> QueryResult<Option<RunHead>> {
        runs::table
            .find(id)
            .select(RunHead::as_select())
            .for_no_key_update()
            .first(self)
            .await
            .optional()
    }
}

impl RunLock
    for diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>
{
    async fn lock_run_head(&mut self, id: &str) -> QueryResult<Option<RunHead>> {
        runs::table
            .find(id)
            .select(RunHead::as_select())
            .first(self)
            .await
            .optional()
    }
}
