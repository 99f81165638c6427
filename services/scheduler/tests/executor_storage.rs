//! The executors' presence and suspension on both backends, and the lease
//! queries that rest on them: leases of executors gone unseen, and the
//! lease clock paused across a database outage.

use orchestra_db::testing::TestDb;
use orchestra_db::{backend_tests, db_run};
use orchestra_scheduler::storage::executors::ExecutorStore;
use orchestra_scheduler::storage::models::{PhaseRow, RunRow, TaskRow, TemplateRow, task_state};
use orchestra_scheduler::storage::{Store, TaskKey};
use orchestra_scheduler::{Error, open_storage};

type Result<T> = std::result::Result<T, Error>;

async fn seed<C: Store>(c: &mut C) -> Result<()> {
    c.insert_template(TemplateRow {
        id: "t-1".into(),
        name: "t".into(),
        version: 1,
        description: String::new(),
        source: "{}".into(),
        format: "json".into(),
        spec_json: "{}".into(),
        content_sha256: "sha".into(),
        created_at: 1,
    })
    .await?;
    c.insert_run(RunRow {
        id: "r".into(),
        template_id: "t-1".into(),
        template_name: "t".into(),
        template_version: 1,
        spec_json: "{}".into(),
        status: "RUNNING".into(),
        seed: 7,
        auto_advance: true,
        cancelled: false,
        inputs_json: "{}".into(),
        request_id: None,
        last_seq: 0,
        created_at: 1,
        updated_at: 1,
    })
    .await?;
    for phase in ["a", "b"] {
        c.insert_phases(vec![PhaseRow {
            run_id: "r".into(),
            phase_id: phase.into(),
            idx: 0,
            kind: "function".into(),
            state: "QUEUED".into(),
            attempt: 1,
            started_at: 0,
            finished_at: 0,
            error: String::new(),
            output_json: None,
            human_task_id: None,
            executor_id: None,
            feedback_json: "[]".into(),
        }])
        .await?;
        c.insert_task(TaskRow {
            run_id: "r".into(),
            phase_id: phase.into(),
            attempt: 1,
            kind: "function".into(),
            state: task_state::QUEUED.into(),
            available_at: 1,
            lease_id: None,
            executor_id: None,
            lease_deadline: 0,
            created_at: 1,
        })
        .await?;
    }
    Ok(())
}

fn key(phase_id: &str) -> TaskKey {
    TaskKey {
        run_id: "r".into(),
        phase_id: phase_id.into(),
        attempt: 1,
    }
}

async fn gone_executors_and_their_leases(db: &TestDb) {
    let db = open_storage(&db.url_for("scheduler"))
        .await
        .expect("storage");
    let checked: Result<()> = db_run!(&db, |c| -> Result<()> {
        seed(c).await?;
        c.register_executor("e1", "s1", 100).await?;
        c.register_executor("e2", "s2", 100).await?;
        c.lease_task(&key("a"), "l1", "e1", 1_000).await?;
        c.lease_task(&key("b"), "l2", "e2", 1_000).await?;

        assert_eq!(c.touch_executor("e1", "s1", 500).await?, 1);
        assert_eq!(
            c.touch_executor("e2", "old", 500).await?,
            0,
            "a stale stream"
        );
        let absent = c.leases_of_absent_executors(300, 10).await?;
        assert_eq!(
            absent
                .iter()
                .map(|t| t.phase_id.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );

        // A closed stream is gone at once, unless a newer one took over.
        assert_eq!(c.forget_executor("e1", "s0").await?, 0);
        assert_eq!(c.forget_executor("e1", "s1").await?, 1);
        assert_eq!(c.leases_of_absent_executors(300, 10).await?.len(), 2);

        // Suspension is set and cleared; a reconnect clears it too.
        assert_eq!(c.set_executor_suspended("e2", true).await?, 1);
        assert!(c.get_executor("e2").await?.is_some_and(|e| e.suspended));
        c.register_executor("e2", "s3", 600).await?;
        let e2 = c.get_executor("e2").await?.expect("e2");
        assert!(!e2.suspended);
        assert_eq!((e2.session_id.as_str(), e2.seen_at), ("s3", 600));
        assert!(c.get_executor("nobody").await?.is_none());
        Ok(())
    });
    checked.expect("executors");
}

async fn an_outage_pauses_the_lease_clock(db: &TestDb) {
    let db = open_storage(&db.url_for("scheduler"))
        .await
        .expect("storage");
    let checked: Result<()> = db_run!(&db, |c| -> Result<()> {
        seed(c).await?;
        c.lease_task(&key("a"), "l1", "e1", 1_000).await?;
        c.lease_task(&key("b"), "l2", "e1", 9_000).await?;
        // The outage ended at 2_000; leases get until 5_000 at least.
        assert_eq!(c.pause_leases(5_000).await?, 1, "only the one due sooner");
        assert!(c.expired_leases(4_000, 10).await?.is_empty());
        assert_eq!(c.extend_lease(&key("a"), "l1", 4_000, 7_000).await?, 1);
        assert_eq!(
            c.get_task(&key("b")).await?.map(|t| t.lease_deadline),
            Some(9_000)
        );
        Ok(())
    });
    checked.expect("pause");
}

backend_tests!(
    gone_executors_and_their_leases,
    an_outage_pauses_the_lease_clock
);
