//! Other scheduler replicas' commits. On Postgres, every transaction that
//! changes a run or the queue sends a NOTIFY on commit naming the run and
//! the sequences of the events it appended
//! ([`crate::storage::changes::Change`]). This loop LISTENs on a connection
//! of its own, reads the new events of the runs watched on this replica
//! (once per commit, however many watch) for their watchers, and wakes its
//! lease streams, lease sweeper and outbox. Notifications of this replica's
//! own commits are skipped: those woke everything in-process already.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::StreamExt;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::storage::changes::{CHANGES_CHANNEL, Change};

/// Notifications taken together when several are waiting: each watched
/// run among them is read once.
const BATCH: usize = 256;

/// Listens until the task is aborted, reconnecting after failures.
pub async fn run(database_url: String, engine: Engine) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match listen(&database_url, &engine, &mut backoff).await {
            Ok(()) => tracing::warn!("LISTEN connection closed; reconnecting"),
            Err(error) => tracing::warn!(%error, "LISTEN connection lost; reconnecting"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen(database_url: &str, engine: &Engine, backoff: &mut Duration) -> Result<()> {
    let mut conn = AsyncPgConnection::establish(database_url)
        .await
        .map_err(|e| Error::Unavailable(format!("cannot connect to LISTEN: {e}")))?;
    diesel::sql_query(format!("LISTEN {CHANGES_CHANNEL}"))
        .execute(&mut conn)
        .await?;
    *backoff = Duration::from_millis(200);
    // Whatever was committed while nobody listened, look at now.
    engine.bus().everything_changed();
    engine.publish_changes(None).await?;
    let mut notifications = std::pin::pin!(conn.notifications_stream().ready_chunks(BATCH));
    while let Some(batch) = notifications.next().await {
        let mut changes = Vec::with_capacity(batch.len());
        let mut unreadable = false;
        for notification in batch {
            match Change::parse(&notification?.payload) {
                Some(change) if is_own(engine, &change) => {}
                Some(change) => changes.push(change),
                None => unreadable = true,
            }
        }
        if changes.is_empty() && !unreadable {
            continue;
        }
        engine.bus().everything_changed();
        // A failed read ends the connection: reconnecting reads again
        // everything the watchers here have not seen.
        engine
            .publish_changes((!unreadable).then_some(changes))
            .await?;
    }
    Ok(())
}

/// Whether this replica made the commit (known by its last event).
fn is_own(engine: &Engine, change: &Change) -> bool {
    change
        .events
        .is_some_and(|(_, last)| engine.bus().is_own_commit(&change.run_id, last))
}
