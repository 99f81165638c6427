//! The storage suite, run on Postgres and on SQLite.

use orchestra_db::testing::TestDb;
use orchestra_db::{Db, backend_tests};

use super::contents::find_content;
use super::models::{ContentRow, NewVersion, PutOutcome, Visibility};
use super::versions::{find_version, list_current, list_history, publish_staged, put_version};
use crate::error::Error;
use crate::validation::sha256_hex;

async fn open(test_db: &TestDb) -> Db {
    super::open(&test_db.url_for(super::SCHEMA))
        .await
        .expect("connect and migrate")
}

fn new_version(run: &str, name: &str, attempt: i32, valid: bool) -> NewVersion {
    NewVersion {
        run_id: run.to_owned(),
        name: name.to_owned(),
        phase_id: "draft".to_owned(),
        attempt,
        media_type: "application/json".to_owned(),
        valid,
        violations_json: "[]".to_owned(),
        schema_sha256: String::new(),
        created_by_kind: 1,
        created_by_id: format!("{run}/draft/{attempt}"),
    }
}

fn content(body: &str) -> ContentRow {
    ContentRow {
        sha256: sha256_hex(body.as_bytes()),
        size_bytes: body.len() as i64,
        inline_content: Some(body.as_bytes().to_vec()),
        in_blob_store: false,
        created_at: 1,
    }
}

async fn put(db: &Db, run: &str, name: &str, attempt: i32, valid: bool, body: &str) -> PutOutcome {
    put_version(
        db,
        new_version(run, name, attempt, valid),
        content(body),
        Visibility::Published,
    )
    .await
    .expect("put")
}

async fn stage(db: &Db, phase: &str, attempt: i32, body: &str) -> PutOutcome {
    let new = NewVersion {
        phase_id: phase.to_owned(),
        ..new_version("run1", "variant", attempt, true)
    };
    put_version(db, new, content(body), Visibility::Staged)
        .await
        .expect("stage")
}

async fn publish(db: &Db, phase: &str, attempt: i32) -> Option<PutOutcome> {
    publish_staged(db, "run1", phase, attempt, "variant")
        .await
        .expect("publish")
}

async fn a_staged_output_is_a_version_only_once_published(test_db: &TestDb) {
    let db = open(test_db).await;
    // Attempt 1 is lost (its lease expired); attempt 2 is accepted.
    let lost = stage(&db, "variant_a", 1, "{\"lost\":1}").await;
    assert_eq!(
        (lost.record.row.version, lost.record.row.is_latest),
        (0, false)
    );
    let id = lost.record.row.artifact_id.clone();
    assert_eq!(find_version(&db, &id, 0).await.expect("find"), None);
    assert!(
        list_current(&db, "run1", None)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(list_history(&db, &id).await.expect("history").is_empty());

    let kept = stage(&db, "variant_a", 2, "{\"kept\":2}").await;
    assert!(kept.created);
    let accepted = publish(&db, "variant_a", 2).await.expect("published");
    assert_eq!(
        (accepted.record.row.version, accepted.record.row.attempt),
        (1, 2),
        "numbered by acceptance, not by arrival"
    );
    assert!(accepted.record.row.is_latest);
    let again = publish(&db, "variant_a", 2).await.expect("published");
    assert_eq!(
        again.record, accepted.record,
        "publishing twice is idempotent"
    );
    assert!(!again.created);
    let restaged = stage(&db, "variant_a", 2, "{\"kept\":2}").await;
    assert_eq!(
        restaged.record.row.version, 1,
        "a repeat returns the version"
    );

    // The lost attempt writes late: still not a version, never the latest.
    stage(&db, "variant_a", 1, "{\"lost\":1}").await;
    let history = list_history(&db, &id).await.expect("history");
    let numbers: Vec<(i32, i32)> = history
        .iter()
        .map(|r| (r.row.version, r.row.attempt))
        .collect();
    assert_eq!(numbers, vec![(1, 2)]);
    let latest = find_version(&db, &id, 0)
        .await
        .expect("find")
        .expect("latest");
    assert_eq!(latest.row.attempt, 2);
    assert!(
        publish(&db, "variant_a", 3).await.is_none(),
        "nothing staged"
    );
}

async fn a_run_lists_one_current_version_per_phase_and_name(test_db: &TestDb) {
    let db = open(test_db).await;
    // Two phases share the output name `variant`, each with several versions.
    for (phase, attempts) in [("variant_a", 3), ("variant_b", 2)] {
        for attempt in 1..=attempts {
            stage(&db, phase, attempt, &format!("{{\"{phase}\":{attempt}}}")).await;
            publish(&db, phase, attempt).await.expect("published");
        }
    }
    let current = list_current(&db, "run1", None).await.expect("list");
    let summary: Vec<(&str, i32, bool)> = current
        .iter()
        .map(|r| (r.row.phase_id.as_str(), r.row.version, r.row.is_latest))
        .collect();
    assert_eq!(
        summary,
        vec![("variant_a", 3, true), ("variant_b", 2, true)]
    );
}

async fn versions_count_up_across_attempts(test_db: &TestDb) {
    let db = open(test_db).await;
    let first = put(&db, "run1", "plan", 1, true, "{\"n\":1}").await;
    let second = put(&db, "run1", "plan", 2, true, "{\"n\":2}").await;
    let other_name = put(&db, "run1", "notes", 1, true, "{\"n\":1}").await;
    let other_run = put(&db, "run2", "plan", 1, true, "{\"n\":1}").await;
    assert!(first.created && second.created);
    assert_eq!(
        (first.record.row.version, second.record.row.version),
        (1, 2)
    );
    assert_eq!(first.record.row.artifact_id, second.record.row.artifact_id);
    assert_ne!(
        other_name.record.row.artifact_id,
        first.record.row.artifact_id
    );
    assert_ne!(
        other_run.record.row.artifact_id,
        first.record.row.artifact_id
    );
    assert_eq!(other_name.record.row.version, 1);
    assert_eq!(other_run.record.row.version, 1);
    assert!(uuid::Uuid::parse_str(&first.record.row.artifact_id).is_ok());

    let history = list_history(&db, &first.record.row.artifact_id)
        .await
        .expect("history");
    let numbers: Vec<(i32, i32)> = history
        .iter()
        .map(|r| (r.row.version, r.row.attempt))
        .collect();
    assert_eq!(numbers, vec![(1, 1), (2, 2)]);
    assert_eq!(history[0].name, "plan");
    assert_eq!(history[0].run_id, "run1");
    // Same bytes in two artifacts: one content row.
    let shared = find_content(&db, &first.record.row.sha256)
        .await
        .expect("find");
    assert_eq!(shared.map(|c| c.size_bytes), Some(7));
}

async fn a_repeated_attempt_returns_its_version(test_db: &TestDb) {
    let db = open(test_db).await;
    let first = put(&db, "run1", "plan", 1, true, "{}").await;
    let repeat = put(&db, "run1", "plan", 1, true, "{}").await;
    assert!(first.created);
    assert!(!repeat.created);
    assert_eq!(repeat.record, first.record);
    let history = list_history(&db, &first.record.row.artifact_id)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
}

async fn a_repeated_attempt_with_other_content_is_refused(test_db: &TestDb) {
    let db = open(test_db).await;
    let first = put(&db, "run1", "plan", 1, true, "{\"a\":1}").await;
    let err = put_version(
        &db,
        new_version("run1", "plan", 1, true),
        content("{\"a\":2}"),
        Visibility::Published,
    )
    .await
    .expect_err("other content for the same attempt");
    match err {
        Error::AlreadyExists(message) => {
            assert!(
                message.contains("already stored other content"),
                "{message}"
            );
            assert!(message.contains("run1/draft/1"), "{message}");
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let history = list_history(&db, &first.record.row.artifact_id)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    let refused = find_content(&db, &sha256_hex(b"{\"a\":2}"))
        .await
        .expect("find");
    assert_eq!(refused, None, "the refused content was rolled back");
}

async fn concurrent_attempts_get_distinct_versions(test_db: &TestDb) {
    let db = open(test_db).await;
    let puts = (1..=10).map(|attempt| {
        let db = db.clone();
        tokio::spawn(async move {
            put_version(
                &db,
                new_version("run1", "plan", attempt, true),
                content(&format!("{{\"attempt\":{attempt}}}")),
                Visibility::Published,
            )
            .await
        })
    });
    let mut outcomes = Vec::new();
    for put in futures::future::join_all(puts).await {
        outcomes.push(put.expect("task").expect("put"));
    }
    let ids: std::collections::BTreeSet<_> = outcomes
        .iter()
        .map(|o| o.record.row.artifact_id.clone())
        .collect();
    assert_eq!(ids.len(), 1, "one artifact for one name");
    let mut versions: Vec<i32> = outcomes.iter().map(|o| o.record.row.version).collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=10).collect::<Vec<_>>());

    let artifact_id = ids.into_iter().next().expect("one id");
    let history = list_history(&db, &artifact_id).await.expect("history");
    assert_eq!(history.len(), 10);
    let latest: Vec<i32> = history
        .iter()
        .filter(|r| r.row.is_latest)
        .map(|r| r.row.version)
        .collect();
    assert_eq!(latest, vec![10], "exactly the highest version is latest");
}

async fn latest_moves_and_skips_invalid_versions(test_db: &TestDb) {
    let db = open(test_db).await;
    let v1 = put(&db, "run1", "plan", 1, true, "{\"v\":1}").await;
    let id = v1.record.row.artifact_id.clone();
    assert!(v1.record.row.is_latest);

    let v2 = put(&db, "run1", "plan", 2, false, "{\"v\":2}").await;
    assert!(!v2.record.row.is_latest && !v2.record.row.valid);
    let latest = find_version(&db, &id, 0)
        .await
        .expect("find")
        .expect("latest");
    assert_eq!(
        latest.row.version, 1,
        "an invalid version never becomes latest"
    );

    let v3 = put(&db, "run1", "plan", 3, true, "{\"v\":3}").await;
    assert!(v3.record.row.is_latest);
    let latest = find_version(&db, &id, 0)
        .await
        .expect("find")
        .expect("latest");
    assert_eq!(latest.row.version, 3);
    let v1_now = find_version(&db, &id, 1).await.expect("find").expect("v1");
    assert!(!v1_now.row.is_latest, "the previous latest was cleared");
    assert_eq!(find_version(&db, &id, 9).await.expect("find"), None);

    // Only invalid versions: no latest, and the list falls back to the newest.
    put(&db, "run1", "broken", 1, false, "1").await;
    put(&db, "run1", "broken", 2, false, "2").await;
    let current = list_current(&db, "run1", None).await.expect("list");
    let summary: Vec<(&str, i32, bool)> = current
        .iter()
        .map(|r| (r.name.as_str(), r.row.version, r.row.is_latest))
        .collect();
    assert_eq!(summary, vec![("broken", 2, false), ("plan", 3, true)]);
    let broken_id = &current[0].row.artifact_id;
    assert_eq!(find_version(&db, broken_id, 0).await.expect("find"), None);

    assert!(
        list_current(&db, "run1", Some("other"))
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        list_current(&db, "run1", Some("draft"))
            .await
            .expect("list")
            .len(),
        2
    );
}

backend_tests!(
    versions_count_up_across_attempts,
    a_repeated_attempt_returns_its_version,
    a_repeated_attempt_with_other_content_is_refused,
    concurrent_attempts_get_distinct_versions,
    latest_moves_and_skips_invalid_versions,
    a_staged_output_is_a_version_only_once_published,
    a_run_lists_one_current_version_per_phase_and_name,
);
