//! The scheduler's queries on both backends: the conditional updates that
//! leases and idempotency rest on, paging, and the executors' presence and
//! suspension with the lease queries that rest on them (leases of executors
//! gone unseen, the lease clock paused across a database outage). The
//! outbox's suite is orchestra-db's.

use orchestra_db::testing::TestDb;
use orchestra_db::{backend_tests, db_run};

use super::events::EventStore;
use super::executors::ExecutorStore;
use super::models::{EventRow, PhaseRow, RunRow, TaskRow, TemplateRow, task_state};
use super::runs::{RunFilter, RunLock, RunStore};
use super::tasks::{TaskKey, TaskStore};
use super::templates::TemplateStore;
use super::writes::{RunWrite, WriteRun};
use crate::error::Result;

fn template(name: &str, version: i32) -> TemplateRow {
    TemplateRow {
        id: format!("{name}-{version}"),
        name: name.into(),
        version,
        description: String::new(),
        source: "{}".into(),
        format: "json".into(),
        spec_json: "{}".into(),
        content_sha256: format!("sha-{version}"),
        created_at: 1,
    }
}

fn run(id: &str, template_name: &str, status: &str, created_at: i64) -> RunRow {
    RunRow {
        id: id.into(),
        template_id: format!("{template_name}-1"),
        template_name: template_name.into(),
        template_version: 1,
        spec_json: "{}".into(),
        status: status.into(),
        seed: 7,
        auto_advance: true,
        cancelled: false,
        inputs_json: "{}".into(),
        request_id: Some(format!("req-{id}")),
        last_seq: 0,
        created_at,
        updated_at: created_at,
        phase_tally: String::new(),
    }
}

fn task(run_id: &str, phase_id: &str, kind: &str, available_at: i64) -> TaskRow {
    TaskRow {
        run_id: run_id.into(),
        phase_id: phase_id.into(),
        attempt: 1,
        kind: kind.into(),
        state: task_state::QUEUED.into(),
        available_at,
        lease_id: None,
        executor_id: None,
        lease_deadline: 0,
        created_at: available_at,
    }
}

fn key(run_id: &str, phase_id: &str) -> TaskKey {
    TaskKey {
        run_id: run_id.into(),
        phase_id: phase_id.into(),
        attempt: 1,
    }
}

async fn templates_have_versions_and_pages(db: &TestDb) {
    let db = super::open(&db.url_for("scheduler"))
        .await
        .expect("storage");
    let checked: Result<()> = db_run!(&db, |c| -> Result<()> {
        for row in [
            template("b", 1),
            template("b", 2),
            template("a", 1),
            template("c", 1),
        ] {
            c.insert_template(row).await?;
        }
        assert_eq!(c.latest_template("b").await?.map(|t| t.version), Some(2));
        assert_eq!(
            c.template_version("b", 1).await?.map(|t| t.version),
            Some(1)
        );
        assert!(c.template_version("b", 3).await?.is_none());
        assert_eq!(c.template_names("", 2).await?, ["a", "b"]);
        assert_eq!(c.template_names("b", 10).await?, ["c"]);
        // A second version 1 of a name is refused by the unique index.
        assert!(c.insert_template(template("a", 1)).await.is_err());
        Ok(())
    });
    checked.expect("templates");
}

async fn runs_lock_filter_and_page(db: &TestDb) {
    let db = super::open(&db.url_for("scheduler"))
        .await
        .expect("storage");
    let checked: Result<()> = db_run!(&db, |c| -> Result<()> {
        c.insert_template(template("t", 1)).await?;
        c.insert_template(template("u", 1)).await?;
        c.write_run(RunWrite {
            created: Some(run("r1", "t", "COMPLETED", 10)),
            ..RunWrite::default()
        })
        .await?;
        c.write_run(RunWrite {
            created: Some(run("r2", "t", "RUNNING", 20)),
            ..RunWrite::default()
        })
        .await?;
        c.write_run(RunWrite {
            created: Some(run("r3", "u", "RUNNING", 30)),
            ..RunWrite::default()
        })
        .await?;
        let head = c.lock_run_head("r1").await?.expect("r1 exists");
        assert_eq!(
            (head.id.as_str(), head.status.as_str()),
            ("r1", "COMPLETED")
        );
        assert!(
            c.lock_run_head("nope").await?.is_none(),
            "a missing run locks nothing"
        );
        assert_eq!(
            c.run_by_request_id("req-r2").await?.map(|r| r.id),
            Some("r2".into())
        );
        let ids = |rows: Vec<RunRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let all = RunFilter {
            limit: 10,
            ..RunFilter::default()
        };
        assert_eq!(ids(c.list_runs(&all).await?), ["r3", "r2", "r1"]);
        let running = RunFilter {
            statuses: vec!["RUNNING".into()],
            limit: 10,
            ..RunFilter::default()
        };
        assert_eq!(ids(c.list_runs(&running).await?), ["r3", "r2"]);
        let of_t = RunFilter {
            template_name: Some("t".into()),
            before: Some((20, "r2".into())),
            limit: 10,
            ..RunFilter::default()
        };
        assert_eq!(ids(c.list_runs(&of_t).await?), ["r1"]);
        Ok(())
    });
    checked.expect("runs");
}

async fn events_come_back_in_order_after_a_sequence(db: &TestDb) {
    let db = super::open(&db.url_for("scheduler"))
        .await
        .expect("storage");
    let checked: Result<()> = db_run!(&db, |c| -> Result<()> {
        c.insert_template(template("t", 1)).await?;
        c.write_run(RunWrite {
            created: Some(run("r", "t", "RUNNING", 1)),
            ..RunWrite::default()
        })
        .await?;
        let rows = (1..=5)
            .map(|seq| EventRow {
                run_id: "r".into(),
                seq,
                at: seq,
                body: vec![u8::try_from(seq).unwrap_or(0)],
            })
            .collect();
        c.write_run(RunWrite {
            events: rows,
            ..RunWrite::default()
        })
        .await?;
        let seqs = |rows: Vec<EventRow>| rows.into_iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(seqs(c.events_after("r", 2, 2).await?), [3, 4]);
        assert_eq!(seqs(c.events_after("r", 5, 10).await?), Vec::<i64>::new());
        // A sequence number is taken once.
        let again = EventRow {
            run_id: "r".into(),
            seq: 3,
            at: 9,
            body: Vec::new(),
        };
        assert!(
            c.write_run(RunWrite {
                events: vec![again],
                ..RunWrite::default()
            })
            .await
            .is_err()
        );
        Ok(())
    });
    checked.expect("events");
}

async fn a_task_is_leased_once_and_its_lease_ends(db: &TestDb) {
    let db = super::open(&db.url_for("scheduler"))
        .await
        .expect("storage");
    let checked: Result<()> = db_run!(&db, |c| -> Result<()> {
        c.insert_template(template("t", 1)).await?;
        c.write_run(RunWrite {
            created: Some(run("r", "t", "RUNNING", 1)),
            ..RunWrite::default()
        })
        .await?;
        c.write_run(RunWrite {
            new_phases: vec![PhaseRow {
                run_id: "r".into(),
                phase_id: "p".into(),
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
                unmet_needs: 0,
            }],
            ..RunWrite::default()
        })
        .await?;
        c.write_run(RunWrite {
            tasks: vec![
                task("r", "p", "function", 100),
                task("r", "later", "function", 500),
                task("r", "model", "llm", 100),
            ],
            ..RunWrite::default()
        })
        .await?;

        let due = c.due_tasks(&["function".into()], 200, 10).await?;
        assert_eq!(
            due.iter().map(|t| t.phase_id.as_str()).collect::<Vec<_>>(),
            ["p"]
        );
        let p = key("r", "p");
        assert_eq!(c.lease_task(&p, "lease-1", "e1", 1_000).await?, 1);
        assert_eq!(
            c.lease_task(&p, "lease-2", "e2", 1_000).await?,
            0,
            "leased once"
        );
        let functions = ["function".to_owned()];
        assert_eq!(
            c.lease_outlook("e1", &functions).await?,
            (None, 1, Some(500)),
            "e1 holds p; the next function is due at 500"
        );
        assert_eq!(c.lease_outlook("e2", &functions).await?.1, 0);
        assert_eq!(
            c.lease_outlook("e2", &["llm".to_owned()]).await?.2,
            Some(100)
        );
        assert_eq!(c.lease_outlook("e2", &["other".to_owned()]).await?.2, None);
        assert_eq!(c.extend_lease(&p, "lease-1", 900, 2_000).await?, 1);
        assert_eq!(
            c.extend_lease(&p, "lease-2", 900, 2_000).await?,
            0,
            "not its lease"
        );
        assert_eq!(
            c.extend_lease(&p, "lease-1", 2_001, 3_000).await?,
            0,
            "expired"
        );
        let expired = c.expired_leases(2_001, 10).await?;
        assert_eq!(expired.len(), 1);
        c.write_run(RunWrite {
            withdrawn: vec![("r".into(), "later".into())],
            ..RunWrite::default()
        })
        .await?;
        assert!(
            c.due_tasks(&["function".into()], 10_000, 10)
                .await?
                .is_empty()
        );
        c.write_run(RunWrite {
            finished: vec![p.clone()],
            ..RunWrite::default()
        })
        .await?;
        assert!(c.expired_leases(10_000, 10).await?.is_empty());
        Ok(())
    });
    checked.expect("tasks");
}

async fn seed<C>(c: &mut C) -> Result<()>
where
    C: TemplateStore + WriteRun,
{
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
    c.write_run(RunWrite {
        created: Some(RunRow {
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
            phase_tally: String::new(),
        }),
        ..RunWrite::default()
    })
    .await?;
    for phase in ["a", "b"] {
        c.write_run(RunWrite {
            new_phases: vec![PhaseRow {
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
                unmet_needs: 0,
            }],
            ..RunWrite::default()
        })
        .await?;
        c.write_run(RunWrite {
            tasks: vec![TaskRow {
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
            }],
            ..RunWrite::default()
        })
        .await?;
    }
    Ok(())
}

async fn gone_executors_and_their_leases(db: &TestDb) {
    let db = super::open(&db.url_for("scheduler"))
        .await
        .expect("storage");
    let checked: Result<()> = db_run!(&db, |c| -> Result<()> {
        seed(c).await?;
        c.register_executor("e1", "s1", 100).await?;
        c.register_executor("e2", "s2", 100).await?;
        c.lease_task(&key("r", "a"), "l1", "e1", 1_000).await?;
        c.lease_task(&key("r", "b"), "l2", "e2", 1_000).await?;

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
        assert_eq!(c.lease_outlook("e2", &[]).await?.0, Some(true));
        c.register_executor("e2", "s3", 600).await?;
        let e2 = c.get_executor("e2").await?.expect("e2");
        assert!(!e2.suspended);
        assert_eq!((e2.session_id.as_str(), e2.seen_at), ("s3", 600));
        assert!(c.get_executor("nobody").await?.is_none());

        // A report refreshes a stale mark, not a fresh one nor a gone one.
        assert_eq!(c.refresh_presence("e2", 700, 650).await?, 1);
        assert_eq!(c.refresh_presence("e2", 800, 650).await?, 0, "fresh");
        assert_eq!(c.get_executor("e2").await?.map(|e| e.seen_at), Some(700));
        assert_eq!(c.refresh_presence("e1", 900, 850).await?, 0, "gone");
        Ok(())
    });
    checked.expect("executors");
}

async fn an_outage_pauses_the_lease_clock(db: &TestDb) {
    let db = super::open(&db.url_for("scheduler"))
        .await
        .expect("storage");
    let checked: Result<()> = db_run!(&db, |c| -> Result<()> {
        seed(c).await?;
        c.lease_task(&key("r", "a"), "l1", "e1", 1_000).await?;
        c.lease_task(&key("r", "b"), "l2", "e1", 9_000).await?;
        // The outage ended at 2_000; leases get until 5_000 at least.
        assert_eq!(c.pause_leases(5_000).await?, 1, "only the one due sooner");
        assert!(c.expired_leases(4_000, 10).await?.is_empty());
        assert_eq!(c.extend_lease(&key("r", "a"), "l1", 4_000, 7_000).await?, 1);
        assert_eq!(
            c.get_task(&key("r", "b")).await?.map(|t| t.lease_deadline),
            Some(9_000)
        );
        Ok(())
    });
    checked.expect("pause");
}

backend_tests!(
    templates_have_versions_and_pages,
    runs_lock_filter_and_page,
    events_come_back_in_order_after_a_sequence,
    a_task_is_leased_once_and_its_lease_ends,
    gone_executors_and_their_leases,
    an_outage_pauses_the_lease_clock,
);
