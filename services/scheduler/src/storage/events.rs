//! Queries over `events`: each run's log, appended under consecutive
//! sequence numbers (by [`super::writes`]) and read back in order.

use std::future::Future;

use diesel::QueryResult;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::EventRow;
use super::schema::events;

/// Runs' event logs, on one connection.
pub trait EventStore: Send {
    /// A run's events after a sequence, in order.
    fn events_after(
        &mut self,
        run_id: &str,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = QueryResult<Vec<EventRow>>> + Send;
}

macro_rules! impl_event_store {
    ($conn:ty) => {
        impl EventStore for $conn {
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
        }
    };
}

orchestra_db::impl_for_connections!(impl_event_store);
