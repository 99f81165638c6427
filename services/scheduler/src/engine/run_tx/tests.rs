//! Units of work on both backends: a change reads only the phases it
//! touches, the tally and the unmet-needs counts keep the run's status and
//! its readiness right without the others, and a run stored before either
//! existed is counted in full on its first change.

use std::sync::Arc;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use orchestra_db::testing::TestDb;
use orchestra_db::{backend_tests, db_run, db_tx};
use orchestra_model::{PhaseEvent, PhaseState, RunStatus, Template};

use super::{RunTx, Scope};
use crate::engine::frozen::{Frozen, FrozenCache};
use crate::error::Result;
use crate::storage::models::{PhaseRow, RunRow, TemplateRow};
use crate::storage::runs::RunStore;
use crate::storage::schema::{phases, runs};
use crate::storage::templates::TemplateStore;

const CHILDREN: usize = 30;

/// root → c1 … c30 → join.
fn fanout() -> Template {
    let mut phases =
        vec![serde_json::json!({"id": "root", "kind": "function", "function": "json.merge"})];
    let children: Vec<String> = (1..=CHILDREN).map(|i| format!("c{i}")).collect();
    for child in &children {
        phases.push(serde_json::json!({
            "id": child, "kind": "function", "function": "json.merge", "needs": ["root"]
        }));
    }
    phases.push(serde_json::json!({
        "id": "join", "kind": "function", "function": "json.merge", "needs": children
    }));
    serde_json::from_value(serde_json::json!({"name": "fanout", "phases": phases}))
        .expect("template")
}

async fn create(db: &orchestra_db::Db, cache: &FrozenCache) -> Result<()> {
    let template = fanout();
    let spec_json = serde_json::to_string(&template).expect("json");
    let frozen: Arc<Frozen> = cache.insert("fanout-1", &spec_json)?;
    let run = RunRow {
        id: "run".into(),
        template_id: "fanout-1".into(),
        template_name: "fanout".into(),
        template_version: 1,
        spec_json,
        status: RunStatus::Pending.as_str().into(),
        seed: 1,
        auto_advance: true,
        cancelled: false,
        inputs_json: "{}".into(),
        request_id: None,
        last_seq: 0,
        created_at: 1,
        updated_at: 1,
        phase_tally: String::new(),
    };
    let rows = (0..frozen.len())
        .map(|idx| {
            let spec = frozen.spec(idx).expect("spec");
            PhaseRow {
                run_id: "run".into(),
                phase_id: spec.id.clone(),
                idx: idx as i32,
                kind: spec.kind.as_str().into(),
                state: PhaseState::Blocked.as_str().into(),
                attempt: 0,
                started_at: 0,
                finished_at: 0,
                error: String::new(),
                output_json: None,
                human_task_id: None,
                executor_id: None,
                feedback_json: "[]".into(),
                unmet_needs: 0,
            }
        })
        .collect();
    let template_row = TemplateRow {
        id: "fanout-1".into(),
        name: "fanout".into(),
        version: 1,
        description: String::new(),
        source: run.spec_json.clone(),
        format: "json".into(),
        spec_json: run.spec_json.clone(),
        content_sha256: "sha".into(),
        created_at: 1,
    };
    db_tx!(db, |c| -> Result<()> {
        c.insert_template(template_row).await?;
        let mut tx = RunTx::new(run, rows, frozen, 2)?;
        tx.advance()?;
        tx.save(c).await?;
        Ok(())
    })
}

/// Runs one queued phase to completion as its executor would, through a
/// change scoped to that phase; returns how many rows it loaded.
async fn run_phase(db: &orchestra_db::Db, cache: &FrozenCache, phase_id: &str) -> Result<usize> {
    db_tx!(db, |c| -> Result<usize> {
        let mut tx = RunTx::load(c, cache, "run", Scope::Phase(phase_id), 3).await?;
        let index = tx.index(phase_id)?;
        tx.apply(index, PhaseEvent::Start, "", None)?;
        tx.apply(index, PhaseEvent::Complete, "", None)?;
        tx.advance()?;
        let loaded = tx.loaded();
        tx.save(c).await?;
        Ok(loaded)
    })
}

/// A phase's id, state and unmet needs as stored.
type StoredPhase = (String, String, i32);

/// The run's stored status and tally, and its phases.
type Stored = (String, String, Vec<StoredPhase>);

async fn status_and_states(db: &orchestra_db::Db) -> Result<Stored> {
    db_run!(db, |c| -> Result<Stored> {
        let run = c.get_run("run").await?.expect("run");
        let rows = phases::table
            .filter(phases::run_id.eq("run"))
            .order(phases::idx.asc())
            .select((phases::phase_id, phases::state, phases::unmet_needs))
            .load::<StoredPhase>(c)
            .await?;
        Ok((run.status, run.phase_tally, rows))
    })
}

fn state_of(rows: &[StoredPhase], id: &str) -> (String, i32) {
    let (_, state, unmet) = rows.iter().find(|(p, ..)| p == id).expect("phase");
    (state.clone(), *unmet)
}

async fn a_change_loads_only_the_phases_it_touches(db: &TestDb) {
    let db = crate::storage::open(&db.url_for("scheduler"))
        .await
        .expect("db");
    let cache = FrozenCache::default();
    create(&db, &cache).await.expect("create");

    // The root's completion reads the root and its children, not the join.
    assert_eq!(
        run_phase(&db, &cache, "root").await.expect("root"),
        1 + CHILDREN
    );
    let (status, tally, rows) = status_and_states(&db).await.expect("read");
    assert_eq!(status, "RUNNING");
    assert_eq!(
        tally,
        format!(r#"{{"BLOCKED":1,"COMPLETED":1,"QUEUED":{CHILDREN}}}"#)
    );
    assert_eq!(state_of(&rows, "join"), ("BLOCKED".into(), CHILDREN as i32));

    // Each child's completion reads the child and the join: two rows, however wide.
    for i in 1..=CHILDREN {
        let loaded = run_phase(&db, &cache, &format!("c{i}"))
            .await
            .expect("child");
        assert_eq!(loaded, 2, "c{i}");
        let (_, _, rows) = status_and_states(&db).await.expect("read");
        let (state, unmet) = state_of(&rows, "join");
        assert_eq!(unmet, (CHILDREN - i) as i32, "after c{i}");
        let expected = if i == CHILDREN { "QUEUED" } else { "BLOCKED" };
        assert_eq!(state, expected, "after c{i}");
    }

    run_phase(&db, &cache, "join").await.expect("join");
    let (status, tally, _) = status_and_states(&db).await.expect("read");
    assert_eq!(status, "COMPLETED");
    assert_eq!(tally, format!(r#"{{"COMPLETED":{}}}"#, CHILDREN + 2));
}

async fn a_run_stored_before_tallies_is_counted_on_its_first_change(db: &TestDb) {
    let db = crate::storage::open(&db.url_for("scheduler"))
        .await
        .expect("db");
    let cache = FrozenCache::default();
    create(&db, &cache).await.expect("create");
    run_phase(&db, &cache, "root").await.expect("root");
    // What a run written by an earlier version looks like.
    db_run!(&db, |c| -> Result<()> {
        diesel::update(runs::table)
            .set(runs::phase_tally.eq(""))
            .execute(c)
            .await?;
        diesel::update(phases::table)
            .set(phases::unmet_needs.eq(-1))
            .execute(c)
            .await?;
        Ok(())
    })
    .expect("age the run");

    // A fresh cache too, as after a restart: the template is read from the run.
    let cache = FrozenCache::default();
    let loaded = run_phase(&db, &cache, "c1").await.expect("c1");
    assert_eq!(loaded, CHILDREN + 2, "counted in full once");
    let (status, tally, rows) = status_and_states(&db).await.expect("read");
    assert_eq!(status, "RUNNING");
    assert_eq!(
        tally,
        format!(r#"{{"BLOCKED":1,"COMPLETED":2,"QUEUED":{}}}"#, CHILDREN - 1)
    );
    assert!(rows.iter().all(|(_, _, unmet)| *unmet >= 0), "{rows:?}");
    assert_eq!(state_of(&rows, "join").1, (CHILDREN - 1) as i32);
    // Then back to reading only what a change touches.
    assert_eq!(run_phase(&db, &cache, "c2").await.expect("c2"), 2);
}

backend_tests!(
    a_change_loads_only_the_phases_it_touches,
    a_run_stored_before_tallies_is_counted_on_its_first_change,
);
