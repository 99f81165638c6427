//! The storage suite, run on Postgres and SQLite.

use orchestra_db::Db;
use orchestra_db::testing::TestDb;
use orchestra_db::time::now_micros;
use orchestra_proto::v1::{HumanTaskKind, HumanTaskState};

use super::models::{StoredDecision, TaskRow};
use super::{SCHEMA, migrate, outbox, tasks};
use crate::Error;

async fn open_db(test: &TestDb) -> Db {
    let db = test.connect(SCHEMA).await;
    migrate(&db).await.expect("migrate");
    db
}

fn row(id: &str, kind: HumanTaskKind, created_at: i64) -> TaskRow {
    TaskRow {
        id: id.to_owned(),
        kind: kind as i32,
        state: HumanTaskState::Open as i32,
        run_id: "run-1".to_owned(),
        phase_id: id.to_owned(),
        attempt: 1,
        title: format!("task {id}"),
        template_name: "t".to_owned(),
        form_schema_json: String::new(),
        output_name: "out".to_owned(),
        inputs_json: "{}".to_owned(),
        show_json: "[]".to_owned(),
        claimed_by: String::new(),
        decision_json: None,
        created_at,
        updated_at: created_at,
    }
}

fn decision(person: &str) -> StoredDecision {
    StoredDecision {
        kind: 1,
        comment: "ok".to_owned(),
        decided_by: person.to_owned(),
        decided_at: now_micros(),
        ..StoredDecision::default()
    }
}

async fn opening_is_idempotent(test: &TestDb) {
    let db = open_db(test).await;
    let first = row("a", HumanTaskKind::Review, 10);
    let (stored, created) = tasks::open_task(&db, first.clone(), Some(vec![1]))
        .await
        .expect("open");
    assert!(created);
    assert_eq!(stored, first);
    let mut again = row("a", HumanTaskKind::Review, 20);
    again.title = "changed".to_owned();
    let (stored, created) = tasks::open_task(&db, again, Some(vec![2]))
        .await
        .expect("reopen");
    assert!(!created);
    assert_eq!(stored, first, "the first opening stands");
    let messages = outbox::list_for_task(&db, "a").await.expect("outbox");
    assert_eq!(messages.len(), 1, "announced once");
    assert_eq!(messages[0].payload, vec![1]);
}

async fn listing_orders_and_filters(test: &TestDb) {
    let db = open_db(test).await;
    for (id, at) in [("late", 30), ("early", 10), ("mid", 20)] {
        tasks::open_task(&db, row(id, HumanTaskKind::Input, at), None)
            .await
            .expect("open");
    }
    tasks::finish_task(&db, "mid", &decision("ann"), vec![])
        .await
        .expect("finish");
    let open: Vec<String> = tasks::list_tasks(&db, false, None)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(open, ["early", "late"]);
    let all = tasks::list_tasks(&db, true, Some("run-1"))
        .await
        .expect("all");
    assert_eq!(all.len(), 3);
    let none = tasks::list_tasks(&db, true, Some("other"))
        .await
        .expect("none");
    assert!(none.is_empty());
}

async fn claims_follow_the_rules(test: &TestDb) {
    let db = open_db(test).await;
    tasks::open_task(&db, row("c", HumanTaskKind::Review, 1), None)
        .await
        .expect("open");
    let claimed = tasks::claim_task(&db, "c", "ann", 5).await.expect("claim");
    assert_eq!(claimed.state, HumanTaskState::Claimed as i32);
    assert_eq!(claimed.claimed_by, "ann");
    tasks::claim_task(&db, "c", "ann", 6)
        .await
        .expect("claiming again is fine");
    let err = tasks::claim_task(&db, "c", "bob", 7)
        .await
        .expect_err("taken");
    assert!(
        matches!(&err, Error::FailedPrecondition(m) if m.contains("claimed by ann")),
        "{err:?}"
    );
    let err = tasks::finish_task(&db, "c", &decision("bob"), vec![])
        .await
        .expect_err("bob may not decide ann's task");
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
    tasks::finish_task(&db, "c", &decision("ann"), vec![9])
        .await
        .expect("ann decides");
    let err = tasks::claim_task(&db, "c", "ann", 8)
        .await
        .expect_err("closed");
    assert!(
        matches!(&err, Error::FailedPrecondition(m) if m.contains("already decided by ann")),
        "{err:?}"
    );
    let err = tasks::claim_task(&db, "nope", "ann", 8)
        .await
        .expect_err("missing");
    assert!(matches!(err, Error::TaskNotFound(_)), "{err:?}");
}

async fn finishing_twice_is_refused_and_enqueues_once(test: &TestDb) {
    let db = open_db(test).await;
    tasks::open_task(&db, row("f", HumanTaskKind::Review, 1), None)
        .await
        .expect("open");
    let done = tasks::finish_task(&db, "f", &decision("ann"), vec![7])
        .await
        .expect("finish");
    assert_eq!(done.state, HumanTaskState::Done as i32);
    assert_eq!(done.decision().expect("decided").decided_by, "ann");
    let err = tasks::finish_task(&db, "f", &decision("bob"), vec![8])
        .await
        .expect_err("twice");
    assert!(
        matches!(&err, Error::FailedPrecondition(m) if m.contains("already decided by ann")),
        "{err:?}"
    );
    let messages = outbox::list_for_task(&db, "f").await.expect("outbox");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].payload, vec![7]);
}

async fn outbox_rows_go_in_order_with_backoff(test: &TestDb) {
    let db = open_db(test).await;
    assert!(outbox::next_pending(&db).await.expect("empty").is_none());
    for id in ["x", "y"] {
        tasks::open_task(
            &db,
            row(id, HumanTaskKind::Review, 1),
            Some(id.as_bytes().to_vec()),
        )
        .await
        .expect("open");
    }
    let head = outbox::next_pending(&db)
        .await
        .expect("head")
        .expect("some");
    assert_eq!(head.task_id, "x");
    assert_eq!(head.attempts, 0);
    assert!(head.next_attempt_at <= now_micros(), "due at once");

    outbox::record_failure(
        &db,
        head.id,
        "Unavailable: down",
        head.next_attempt_at + 400,
    )
    .await
    .expect("fail");
    let retried = outbox::next_pending(&db)
        .await
        .expect("head")
        .expect("some");
    assert_eq!(
        retried.id, head.id,
        "a failed row still blocks those after it"
    );
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.next_attempt_at, head.next_attempt_at + 400);
    assert_eq!(retried.last_error.as_deref(), Some("Unavailable: down"));

    outbox::mark_delivered(&db, head.id, 50)
        .await
        .expect("deliver");
    let next = outbox::next_pending(&db)
        .await
        .expect("next")
        .expect("some");
    assert_eq!(next.task_id, "y");
    outbox::give_up(&db, next.id, "FailedPrecondition: no such phase", 60)
        .await
        .expect("give up");
    assert!(outbox::next_pending(&db).await.expect("drained").is_none());
    let delivered = outbox::list_for_task(&db, "x").await.expect("x");
    assert_eq!(delivered[0].delivered_at, Some(50));
    assert_eq!(delivered[0].last_error, None);
    let refused = outbox::list_for_task(&db, "y").await.expect("y");
    assert_eq!(refused[0].gave_up_at, Some(60));
    assert_eq!(refused[0].delivered_at, None);
}

orchestra_db::backend_tests!(
    opening_is_idempotent,
    listing_orders_and_filters,
    claims_follow_the_rules,
    finishing_twice_is_refused_and_enqueues_once,
    outbox_rows_go_in_order_with_backoff,
);
