//! The shared outbox on both backends: messages stored with a transaction
//! (and only if it commits), delivered in order, retried with backoff while
//! the receiver fails, set aside when it refuses for good, and a dispatcher
//! that stops when told. The dispatcher finds work by wake-ups and timers,
//! not by polling: an enqueue is delivered when its commit wakes it, a retry
//! at its time, rows left from before it started at once, and anything no
//! wake-up announced at the (slow) safety sweep, and not before.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use orchestra_db::diesel_migrations::{EmbeddedMigrations, embed_migrations};
use orchestra_db::outbox::{Deliver, Delivery, Dispatcher, Message, OutboxStore};
use orchestra_db::testing::TestDb;
use orchestra_db::time::now_micros;
use orchestra_db::{Db, backend_tests, db_run, db_tx};
use tokio::sync::{Notify, oneshot};

const PG: EmbeddedMigrations = embed_migrations!("tests/migrations_outbox/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("tests/migrations_outbox/sqlite");

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error(transparent)]
    Db(#[from] orchestra_db::Error),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("rolled back on purpose")]
    Abort,
}

/// A receiver that answers from a script, by message key, and records
/// every call in order.
#[derive(Clone, Default)]
struct Scripted {
    calls: Arc<Mutex<Vec<String>>>,
}

impl Deliver for Scripted {
    async fn deliver(&self, message: &Message) -> Delivery {
        let mut calls = self.calls.lock().expect("calls");
        calls.push(message.key.clone());
        let tries = calls.iter().filter(|k| **k == message.key).count();
        match message.key.as_str() {
            "flaky" if tries < 3 => Delivery::Retry(format!("Unavailable: try {tries}")),
            "refused" => Delivery::GiveUp("FailedPrecondition: no such task".to_owned()),
            _ => Delivery::Delivered,
        }
    }
}

async fn enqueue(db: &Db, keys: &[&str], commit: bool) -> Result<(), TestError> {
    let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    db_tx!(db, |conn| -> Result<(), TestError> {
        for key in &keys {
            conn.enqueue(Message::new(
                "test",
                key,
                key.as_bytes().to_vec(),
                now_micros(),
            ))
            .await?;
        }
        if commit {
            Ok(())
        } else {
            Err(TestError::Abort)
        }
    })
}

async fn all(db: &Db) -> Vec<Message> {
    db_run!(db, |conn| -> Result<Vec<Message>, TestError> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        Ok(orchestra_db::outbox::outbox::table
            .order(orchestra_db::outbox::outbox::id.asc())
            .select(Message::as_select())
            .load(conn)
            .await?)
    })
    .expect("read the outbox")
}

async fn messages_go_out_in_order_until_accepted(test: &TestDb) {
    let db = test.connect("outbox").await;
    db.run_migrations(PG, SQLITE).await.expect("migrate");
    enqueue(&db, &["flaky", "refused", "last"], true)
        .await
        .expect("commit");
    let rolled_back = enqueue(&db, &["never"], false).await;
    assert!(matches!(rolled_back, Err(TestError::Abort)));

    let receiver = Scripted::default();
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = oneshot::channel::<()>();
    let dispatcher = tokio::spawn(
        Dispatcher::new(db.clone(), receiver.clone(), wake.clone(), "test").run(async {
            let _ = stopped.await;
        }),
    );
    wake.notify_one();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while receiver.calls.lock().expect("calls").len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls so far: {:?}",
            receiver.calls.lock().expect("calls")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).expect("dispatcher running");
    tokio::time::timeout(Duration::from_secs(5), dispatcher)
        .await
        .expect("stops when told")
        .expect("no panic");

    assert_eq!(
        *receiver.calls.lock().expect("calls"),
        ["flaky", "flaky", "flaky", "refused", "last"],
        "a failing message holds back those after it; a refusal does not"
    );
    let stored = all(&db).await;
    let keys: Vec<&str> = stored.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(
        keys,
        ["flaky", "refused", "last"],
        "the rolled-back one is not stored"
    );
    assert_eq!(stored[0].attempts, 2);
    assert!(stored[0].delivered_at.is_some());
    assert_eq!(stored[0].last_error, "Unavailable: try 2");
    assert!(stored[1].gave_up_at.is_some() && stored[1].delivered_at.is_none());
    assert_eq!(stored[1].last_error, "FailedPrecondition: no such task");
    assert!(stored[2].delivered_at.is_some());
    let pending = db_run!(&db, |conn| -> Result<Vec<Message>, TestError> {
        Ok(conn.pending(10).await?)
    })
    .expect("pending");
    assert!(pending.is_empty(), "{pending:?}");
}

/// A receiver that records when each message arrived, and fails the first
/// delivery of those whose key starts with `flaky`.
#[derive(Clone, Default)]
struct Timed {
    calls: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl Deliver for Timed {
    async fn deliver(&self, message: &Message) -> Delivery {
        let mut calls = self.calls.lock().expect("calls");
        calls.push((message.key.clone(), Instant::now()));
        let tries = calls.iter().filter(|(k, _)| *k == message.key).count();
        if message.key.starts_with("flaky") && tries == 1 {
            return Delivery::Retry("Unavailable: first try".to_owned());
        }
        Delivery::Delivered
    }
}

impl Timed {
    fn calls(&self) -> Vec<(String, Instant)> {
        self.calls.lock().expect("calls").clone()
    }

    fn keys(&self) -> Vec<String> {
        self.calls().into_iter().map(|(key, _)| key).collect()
    }

    /// Waits until `count` deliveries were made, at most `limit`.
    async fn wait_for(&self, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.calls.lock().expect("calls").len() < count {
            assert!(
                Instant::now() < deadline,
                "{count} deliveries expected within {limit:?}; so far {:?}",
                self.keys()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A dispatcher running with the given sweep, and the means to stop it.
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    fn start(db: &Db, receiver: &Timed, wake: &Arc<Notify>, sweep: Duration) -> Running {
        let (stop, stopped) = oneshot::channel::<()>();
        let dispatcher =
            Dispatcher::new(db.clone(), receiver.clone(), wake.clone(), "test").sweep_every(sweep);
        let task = tokio::spawn(dispatcher.run(async {
            let _ = stopped.await;
        }));
        Running { stop, task }
    }

    async fn stop(self) {
        self.stop.send(()).expect("dispatcher running");
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("stops when told")
            .expect("no panic");
    }
}

/// Longer than any test here runs: a delivery seen is not the sweep's.
const NO_SWEEP: Duration = Duration::from_secs(600);

async fn migrated(test: &TestDb) -> Db {
    let db = test.connect("outbox").await;
    db.run_migrations(PG, SQLITE).await.expect("migrate");
    db
}

async fn an_enqueue_goes_out_when_its_commit_wakes_the_dispatcher(test: &TestDb) {
    let db = migrated(test).await;
    // Left by a previous process: delivered at start, with no wake-up.
    enqueue(&db, &["left"], true).await.expect("commit");
    let receiver = Timed::default();
    let wake = Arc::new(Notify::new());
    let running = Running::start(&db, &receiver, &wake, NO_SWEEP);
    receiver.wait_for(1, Duration::from_secs(5)).await;

    // Committed, but nobody wakes the dispatcher: it does not poll, so the
    // message waits (for the sweep, ten minutes away).
    enqueue(&db, &["unannounced"], true).await.expect("commit");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(receiver.keys(), ["left"], "delivered without a wake-up");

    // The wake-up a commit sends delivers it, and the next one too.
    let woken = Instant::now();
    wake.notify_one();
    receiver.wait_for(2, Duration::from_secs(1)).await;
    enqueue(&db, &["announced"], true).await.expect("commit");
    wake.notify_one();
    receiver.wait_for(3, Duration::from_secs(1)).await;
    assert!(
        woken.elapsed() < Duration::from_secs(1),
        "{:?}",
        woken.elapsed()
    );
    running.stop().await;
    assert_eq!(receiver.keys(), ["left", "unannounced", "announced"]);
}

async fn the_sweep_finds_what_no_wake_up_announced(test: &TestDb) {
    let db = migrated(test).await;
    let receiver = Timed::default();
    let wake = Arc::new(Notify::new());
    let sweep = Duration::from_millis(700);
    let running = Running::start(&db, &receiver, &wake, sweep);
    // Its first look found nothing; then one comes in as another replica's
    // would, with no wake-up here.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stored = Instant::now();
    enqueue(&db, &["from elsewhere"], true)
        .await
        .expect("commit");
    receiver.wait_for(1, Duration::from_secs(3)).await;
    let waited = receiver.calls()[0].1 - stored;
    // The sweep that finds it comes ~0.6 s after this store.
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_millis(1_500),
        "found after {waited:?}, with a sweep every {sweep:?}"
    );
    running.stop().await;
}

async fn a_failed_delivery_is_retried_at_its_time(test: &TestDb) {
    let db = migrated(test).await;
    enqueue(&db, &["flaky", "after"], true)
        .await
        .expect("commit");
    let receiver = Timed::default();
    let wake = Arc::new(Notify::new());
    let running = Running::start(&db, &receiver, &wake, NO_SWEEP);
    receiver.wait_for(1, Duration::from_secs(5)).await;
    // A wake-up meanwhile (another enqueue) neither hurries the retry nor
    // lets a later message overtake it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    wake.notify_one();
    receiver.wait_for(3, Duration::from_secs(2)).await;
    let calls = receiver.calls();
    let keys: Vec<&str> = calls.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys, ["flaky", "flaky", "after"], "in order");
    let retried_after = calls[1].1 - calls[0].1;
    let first = orchestra_db::outbox::backoff(1);
    assert!(
        retried_after >= first - Duration::from_millis(5)
            && retried_after < first + Duration::from_millis(500),
        "retried after {retried_after:?}; its backoff is {first:?}"
    );
    running.stop().await;
}

async fn a_retry_left_by_a_previous_process_waits_for_its_time(test: &TestDb) {
    let db = migrated(test).await;
    let due_in = Duration::from_millis(800);
    let message = Message {
        attempts: 1,
        next_attempt_at: now_micros() + i64::try_from(due_in.as_micros()).expect("micros"),
        ..Message::new("test", "due later", Vec::new(), now_micros())
    };
    let stored = Instant::now();
    db_run!(&db, |conn| -> Result<(), TestError> {
        Ok(conn.enqueue(message).await?)
    })
    .expect("stored");
    let receiver = Timed::default();
    let wake = Arc::new(Notify::new());
    let running = Running::start(&db, &receiver, &wake, NO_SWEEP);
    receiver.wait_for(1, Duration::from_secs(3)).await;
    let waited = receiver.calls()[0].1 - stored;
    assert!(
        waited >= due_in - Duration::from_millis(5) && waited < due_in + Duration::from_millis(500),
        "delivered after {waited:?}; it was due after {due_in:?}"
    );
    running.stop().await;
}

backend_tests!(
    messages_go_out_in_order_until_accepted,
    an_enqueue_goes_out_when_its_commit_wakes_the_dispatcher,
    the_sweep_finds_what_no_wake_up_announced,
    a_failed_delivery_is_retried_at_its_time,
    a_retry_left_by_a_previous_process_waits_for_its_time,
);
