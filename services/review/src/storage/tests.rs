//! The storage suite, run on Postgres and SQLite.

use orchestra_db::Db;
use orchestra_db::testing::TestDb;
use orchestra_db::time::now_micros;
use orchestra_proto::v1::{HumanTaskKind, HumanTaskState};

use super::models::{StoredDecision, TaskRow};
use super::{SCHEMA, open, tasks};
use crate::Error;

async fn open_db(test: &TestDb) -> Db {
    open(&test.url_for(SCHEMA))
        .await
        .expect("connect and migrate")
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
        candidates_json: "[]".to_owned(),
        selection: 0,
        closed_reason: String::new(),
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
    let (stored, created) = tasks::open_task(&db, first.clone()).await.expect("open");
    assert!(created);
    assert_eq!(stored, first);
    let mut again = row("a", HumanTaskKind::Review, 20);
    again.title = "changed".to_owned();
    let (stored, created) = tasks::open_task(&db, again).await.expect("reopen");
    assert!(!created);
    assert_eq!(stored, first, "the first opening stands");
}

async fn listing_orders_and_filters(test: &TestDb) {
    let db = open_db(test).await;
    for (id, at) in [("late", 30), ("early", 10), ("mid", 20)] {
        tasks::open_task(&db, row(id, HumanTaskKind::Input, at))
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
    tasks::open_task(&db, row("c", HumanTaskKind::Review, 1))
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
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
}

async fn finishing_twice_is_refused_and_enqueues_once(test: &TestDb) {
    let db = open_db(test).await;
    tasks::open_task(&db, row("f", HumanTaskKind::Review, 1))
        .await
        .expect("open");
    let done = tasks::finish_task(&db, "f", &decision("ann"), vec![7])
        .await
        .expect("finish");
    assert_eq!(done.state, HumanTaskState::Done as i32);
    assert_eq!(
        done.decision()
            .expect("readable")
            .expect("decided")
            .decided_by,
        "ann"
    );
    let err = tasks::finish_task(&db, "f", &decision("bob"), vec![8])
        .await
        .expect_err("twice");
    assert!(
        matches!(&err, Error::FailedPrecondition(m) if m.contains("already decided by ann")),
        "{err:?}"
    );
}

async fn closing_cancels_open_tasks_only(test: &TestDb) {
    let db = open_db(test).await;
    tasks::open_task(&db, row("open", HumanTaskKind::Review, 1))
        .await
        .expect("open");
    tasks::open_task(&db, row("done", HumanTaskKind::Review, 2))
        .await
        .expect("open");
    tasks::finish_task(&db, "done", &decision("ann"), vec![1])
        .await
        .expect("finish");

    let (closed, changed) = tasks::close_task(&db, "open", "the run was cancelled", 5)
        .await
        .expect("close")
        .expect("exists");
    assert!(changed);
    assert_eq!(closed.state, HumanTaskState::Cancelled as i32);
    assert_eq!(closed.closed_reason, "the run was cancelled");
    let (again, changed) = tasks::close_task(&db, "open", "other", 6)
        .await
        .expect("close again")
        .expect("exists");
    assert!(!changed, "closing twice changes nothing");
    assert_eq!(again.closed_reason, "the run was cancelled");

    let (decided, changed) = tasks::close_task(&db, "done", "too late", 7)
        .await
        .expect("close decided")
        .expect("exists");
    assert!(!changed, "a decided task stays decided");
    assert_eq!(decided.state, HumanTaskState::Done as i32);
    assert!(
        tasks::close_task(&db, "nope", "x", 8)
            .await
            .expect("query")
            .is_none()
    );

    let err = tasks::finish_task(&db, "open", &decision("ann"), vec![2])
        .await
        .expect_err("closed");
    assert!(
        matches!(&err, Error::FailedPrecondition(m) if m.contains("the run was cancelled")),
        "{err:?}"
    );
    let open = tasks::list_tasks(&db, false, None).await.expect("list");
    assert!(open.is_empty(), "a closed task leaves the inbox");
}

orchestra_db::backend_tests!(
    opening_is_idempotent,
    listing_orders_and_filters,
    claims_follow_the_rules,
    finishing_twice_is_refused_and_enqueues_once,
    closing_cancels_open_tasks_only,
);
