//! The outbox: hand-offs to another service that must not be lost, stored
//! in the same transaction as the change that causes them and delivered
//! afterwards, in order, until the other side accepts them.
//!
//! Every service that hands off keeps an `outbox` table of the shape below
//! in its own schema (its migrations create it), calls [`OutboxStore::enqueue`]
//! inside its transaction, and runs one [`Dispatcher`] with a [`Deliver`]
//! implementation that makes the call. Deliveries are at least once: a crash
//! after the other side accepted and before the row is marked delivered sends
//! it again, so every receiving RPC is idempotent.
//!
//! Messages go out strictly in order: a failed delivery holds back those
//! after it until it succeeds, so a "close" never overtakes its "open". A
//! refusal no retry can change ([`Delivery::GiveUp`]) is recorded and set
//! aside, so it does not block the queue.
//!
//! The dispatcher finds work by wake-ups, not by polling: the service
//! notifies it after each commit that enqueued, it sleeps until a failed
//! message's retry is due, and it looks on its own only at a slow safety
//! sweep ([`DEFAULT_SWEEP`], or the service's own interval) for messages
//! no wake-up announced (stored by another replica). An idle dispatcher
//! sends its database one small read per sweep.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use tokio::sync::Notify;

use crate::time::now_micros;
use crate::{Db, db_run};

diesel::table! {
    /// The outbox table every handing-off service keeps in its own schema.
    outbox (id) {
        /// A UUIDv7: ordered by creation.
        id -> Text,
        /// What the payload is, for the service's [`Deliver`].
        kind -> Text,
        /// What the message is about (a task or run id), for logs.
        key -> Text,
        /// The encoded request.
        payload -> Binary,
        /// Failed deliveries so far.
        attempts -> Integer,
        /// Epoch microseconds before which it is not tried again.
        next_attempt_at -> BigInt,
        /// Set once the other side accepted it.
        delivered_at -> Nullable<BigInt>,
        /// Set when the other side refused it for good.
        gave_up_at -> Nullable<BigInt>,
        /// The last failure, for operators.
        last_error -> Text,
        /// Epoch microseconds.
        created_at -> BigInt,
    }
}

/// One stored hand-off.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox, check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
pub struct Message {
    /// A UUIDv7, so that ordering by id is ordering by creation.
    pub id: String,
    /// What the payload is.
    pub kind: String,
    /// What it is about (a task or run id), for logs.
    pub key: String,
    /// The encoded request.
    pub payload: Vec<u8>,
    /// Failed deliveries so far.
    pub attempts: i32,
    /// Epoch microseconds before which it is not tried again.
    pub next_attempt_at: i64,
    /// Set once delivered.
    pub delivered_at: Option<i64>,
    /// Set once refused for good.
    pub gave_up_at: Option<i64>,
    /// The last failure.
    pub last_error: String,
    /// Epoch microseconds.
    pub created_at: i64,
}

impl Message {
    /// A new message, due at once.
    pub fn new(kind: &str, key: &str, payload: Vec<u8>, now: i64) -> Message {
        Message {
            id: uuid::Uuid::now_v7().to_string(),
            kind: kind.to_owned(),
            key: key.to_owned(),
            payload,
            attempts: 0,
            next_attempt_at: now,
            delivered_at: None,
            gave_up_at: None,
            last_error: String::new(),
            created_at: now,
        }
    }
}

/// The outbox queries, on one connection: `enqueue` runs inside the caller's
/// transaction; the others serve the [`Dispatcher`].
pub trait OutboxStore: Send {
    /// Stores a message; commits or rolls back with the caller's transaction.
    fn enqueue(&mut self, message: Message) -> impl Future<Output = QueryResult<()>> + Send;
    /// The oldest messages neither delivered nor given up, due or not.
    fn pending(&mut self, limit: i64) -> impl Future<Output = QueryResult<Vec<Message>>> + Send;
    /// Marks a message accepted.
    fn mark_delivered(
        &mut self,
        id: &str,
        now: i64,
    ) -> impl Future<Output = QueryResult<()>> + Send;
    /// Records a failed delivery and when to try again.
    fn record_failure(
        &mut self,
        id: &str,
        error: &str,
        next_attempt_at: i64,
    ) -> impl Future<Output = QueryResult<()>> + Send;
    /// Records a refusal for good; the message is not tried again.
    fn give_up(
        &mut self,
        id: &str,
        error: &str,
        now: i64,
    ) -> impl Future<Output = QueryResult<()>> + Send;
}

macro_rules! impl_outbox_store {
    ($conn:ty) => {
        impl OutboxStore for $conn {
            async fn enqueue(&mut self, message: Message) -> QueryResult<()> {
                diesel::insert_into(outbox::table)
                    .values(message)
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn pending(&mut self, limit: i64) -> QueryResult<Vec<Message>> {
                outbox::table
                    .filter(outbox::delivered_at.is_null())
                    .filter(outbox::gave_up_at.is_null())
                    .order(outbox::id.asc())
                    .limit(limit)
                    .select(Message::as_select())
                    .load(self)
                    .await
            }

            async fn mark_delivered(&mut self, id: &str, now: i64) -> QueryResult<()> {
                diesel::update(outbox::table.find(id))
                    .set(outbox::delivered_at.eq(Some(now)))
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn record_failure(
                &mut self,
                id: &str,
                error: &str,
                next_attempt_at: i64,
            ) -> QueryResult<()> {
                diesel::update(outbox::table.find(id))
                    .set((
                        outbox::attempts.eq(outbox::attempts + 1),
                        outbox::next_attempt_at.eq(next_attempt_at),
                        outbox::last_error.eq(error),
                    ))
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn give_up(&mut self, id: &str, error: &str, now: i64) -> QueryResult<()> {
                diesel::update(outbox::table.find(id))
                    .set((
                        outbox::attempts.eq(outbox::attempts + 1),
                        outbox::gave_up_at.eq(Some(now)),
                        outbox::last_error.eq(error),
                    ))
                    .execute(self)
                    .await
                    .map(drop)
            }
        }
    };
}

crate::impl_for_connections!(impl_outbox_store);

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The other side accepted it.
    Delivered,
    /// It failed in a way a later try may not (the peer is down, overloaded).
    Retry(String),
    /// The other side refused it, and would refuse it again.
    GiveUp(String),
}

impl Delivery {
    /// A failed delivery: given up when `permanent` (the other side would
    /// refuse it again), retried otherwise.
    pub fn failed(permanent: bool, error: String) -> Delivery {
        if permanent {
            Delivery::GiveUp(error)
        } else {
            Delivery::Retry(error)
        }
    }
}

/// Makes the call a message stands for. One implementation per service.
pub trait Deliver: Send + Sync + 'static {
    /// Delivers one message; must be safe to repeat (at least once).
    fn deliver(&self, message: &Message) -> impl Future<Output = Delivery> + Send;
}

/// How long an idle dispatcher waits, by default, before it looks at the
/// table without a wake-up: the safety sweep. Work is found by wake-ups and
/// timers; the sweep only bounds how long a message can wait that no
/// wake-up announced (one enqueued by another replica of the service).
pub const DEFAULT_SWEEP: Duration = Duration::from_secs(10);
/// The shortest sweep a dispatcher accepts, so a mistaken setting cannot
/// turn it into a busy loop.
const MIN_SWEEP: Duration = Duration::from_millis(10);
/// The wait before reading the table again after a read failed (the
/// database is away): not idle, so not the sweep.
const READ_RETRY: Duration = Duration::from_secs(1);
/// The wait after the first failed delivery; it doubles with each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between tries of one message.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How many messages one look at the table takes.
const BATCH: i64 = 32;

/// The wait before the next try of a message that has failed `failures` times.
pub fn backoff(failures: i32) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// What one look at the table leaves to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// More may be due already (a full batch went out): look again now.
    Now,
    /// The head of the queue is due after this wait (a retry's time).
    After(Duration),
    /// Nothing is pending: wait for a wake-up or the sweep.
    Idle,
}

/// Delivers one service's outbox, in order, until stopped.
///
/// It reads the table only when there may be something to do: at start (rows
/// a crash left), when woken after a commit that enqueued, when the head of
/// the queue comes due (a retry's time), and at the slow safety sweep. An
/// idle dispatcher sends the database nothing between sweeps.
pub struct Dispatcher<D> {
    db: Db,
    deliver: D,
    wake: Arc<Notify>,
    name: &'static str,
    sweep: Duration,
}

impl<D: Deliver> Dispatcher<D> {
    /// A dispatcher over `db`'s outbox; `wake` is notified after a commit
    /// that enqueued; `name` (the receiving service) labels its logs. It
    /// sweeps every [`DEFAULT_SWEEP`] unless [`Dispatcher::sweep_every`]
    /// says otherwise.
    pub fn new(db: Db, deliver: D, wake: Arc<Notify>, name: &'static str) -> Dispatcher<D> {
        Dispatcher {
            db,
            deliver,
            wake,
            name,
            sweep: DEFAULT_SWEEP,
        }
    }

    /// Sets the safety sweep: the longest an idle dispatcher goes without
    /// looking at the table (at least 10 ms). A service whose other loops
    /// sweep on a configured interval passes the same one here.
    pub fn sweep_every(mut self, sweep: Duration) -> Dispatcher<D> {
        self.sweep = sweep.max(MIN_SWEEP);
        self
    }

    /// Delivers until `stop` resolves. A delivery in flight when it does is
    /// finished first, so its outcome is recorded.
    pub async fn run(self, stop: impl Future<Output = ()> + Send) {
        let mut stop = std::pin::pin!(stop);
        loop {
            // Listen before looking, so a commit that lands while the table
            // is read still wakes the wait below.
            let notified = self.wake.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            let wait = match self.deliver_due().await {
                Ok(Next::Now) => continue,
                Ok(Next::After(due)) => due.min(self.sweep),
                Ok(Next::Idle) => self.sweep,
                Err(error) => {
                    tracing::warn!(to = self.name, %error, "outbox: cannot read the outbox");
                    READ_RETRY.min(self.sweep)
                }
            };
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(wait) => {}
                () = &mut stop => break,
            }
        }
        tracing::debug!(to = self.name, "outbox dispatcher stopped");
    }

    /// Delivers the due head of the queue, and says when to look again.
    async fn deliver_due(&self) -> crate::Result<Next> {
        let messages = db_run!(&self.db, |conn| {
            conn.pending(BATCH).await.map_err(crate::Error::from)
        })?;
        let full = messages.len() == usize::try_from(BATCH).unwrap_or(usize::MAX);
        for message in messages {
            let now = now_micros();
            if message.next_attempt_at > now {
                let micros = u64::try_from(message.next_attempt_at - now).unwrap_or(0);
                return Ok(Next::After(Duration::from_micros(micros)));
            }
            match self.deliver.deliver(&message).await {
                Delivery::Delivered => {
                    tracing::debug!(to = self.name, id = %message.id, kind = %message.kind,
                        key = %message.key, "outbox: delivered");
                    let id = message.id.clone();
                    db_run!(&self.db, |conn| {
                        conn.mark_delivered(&id, now_micros())
                            .await
                            .map_err(crate::Error::from)
                    })?;
                }
                Delivery::GiveUp(error) => {
                    tracing::warn!(to = self.name, id = %message.id, kind = %message.kind,
                        key = %message.key, %error, "outbox: refused; not retrying");
                    let id = message.id.clone();
                    db_run!(&self.db, |conn| {
                        conn.give_up(&id, &error, now_micros())
                            .await
                            .map_err(crate::Error::from)
                    })?;
                }
                Delivery::Retry(error) => {
                    let wait = backoff(message.attempts + 1);
                    let next = now_micros() + i64::try_from(wait.as_micros()).unwrap_or(i64::MAX);
                    tracing::warn!(to = self.name, id = %message.id, kind = %message.kind,
                        key = %message.key, attempts = message.attempts + 1,
                        retry_in_ms = wait.as_millis(), %error, "outbox: delivery failed");
                    let id = message.id.clone();
                    db_run!(&self.db, |conn| {
                        conn.record_failure(&id, &error, next)
                            .await
                            .map_err(crate::Error::from)
                    })?;
                    return Ok(Next::After(wait));
                }
            }
        }
        // Whatever was enqueued meanwhile woke `notified`: no need to look.
        Ok(if full { Next::Now } else { Next::Idle })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_200ms_to_30s() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(4), Duration::from_millis(1600));
        assert_eq!(backoff(8), Duration::from_millis(25_600));
        assert_eq!(backoff(9), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
    }
}
