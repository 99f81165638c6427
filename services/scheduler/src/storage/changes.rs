//! Telling other scheduler replicas that a transaction changed runs or the
//! queue. The one query whose SQL differs by backend, so it is written
//! once per connection type rather than pasted.

use std::future::Future;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;

/// The channel other scheduler replicas listen on for commits.
pub const CHANGES_CHANNEL: &str = "orchestra_scheduler_changes";

/// Tells other replicas that a transaction changed runs or the queue.
/// Postgres sends a NOTIFY, delivered when the transaction commits; SQLite
/// is embedded in one process, so there is nobody to tell.
pub trait Notify: Send {
    /// Queues a notification for commit.
    fn notify_changed(&mut self) -> impl Future<Output = QueryResult<()>> + Send;
}

impl Notify for AsyncPgConnection {
    async fn notify_changed(&mut self) -> QueryResult<()> {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(format!("NOTIFY {CHANGES_CHANNEL}"))
            .execute(self)
            .await
            .map(drop)
    }
}

impl Notify for SyncConnectionWrapper<diesel::SqliteConnection> {
    async fn notify_changed(&mut self) -> QueryResult<()> {
        Ok(())
    }
}
