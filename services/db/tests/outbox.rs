//! The shared outbox on both backends: messages stored with a transaction
//! (and only if it commits), delivered in order, retried with backoff while
//! the receiver fails, set aside when it refuses for good, and a dispatcher
//! that stops when told.

use std::sync::{Arc, Mutex};
use std::time::Duration;

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

backend_tests!(messages_go_out_in_order_until_accepted);
