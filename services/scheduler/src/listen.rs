//! Wake-ups from other scheduler replicas: on Postgres, every transaction
//! that changes runs or the queue sends a NOTIFY on commit
//! ([`crate::storage::changes::Notify`]); this loop LISTENs on a connection of its
//! own and wakes this replica's watchers, lease streams and outbox.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::StreamExt;

use crate::bus::Bus;
use crate::storage::changes::CHANGES_CHANNEL;

/// Listens until the task is aborted, reconnecting after failures.
pub async fn run(database_url: String, bus: Bus) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match listen(&database_url, &bus).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(error) => tracing::warn!(%error, "LISTEN connection lost; reconnecting"),
        }
        // Whatever was missed while reconnecting, look now.
        bus.everything_changed();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen(database_url: &str, bus: &Bus) -> Result<(), diesel::result::Error> {
    let mut conn = AsyncPgConnection::establish(database_url)
        .await
        .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e)))?;
    diesel::sql_query(format!("LISTEN {CHANGES_CHANNEL}"))
        .execute(&mut conn)
        .await?;
    let mut notifications = std::pin::pin!(conn.notifications_stream());
    while let Some(notification) = notifications.next().await {
        notification?;
        bus.everything_changed();
    }
    Ok(())
}
