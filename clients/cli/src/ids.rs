//! Ids as a person types them: a whole id, any unique prefix of one (as git
//! takes commit hashes), or `--latest` for the newest run.
//!
//! A prefix is matched against what the server lists: every run, every human
//! task (closed ones included), and for artifacts the artifacts of every run.
//! A whole id (a UUID) is passed on unchanged, without listing, except for
//! tasks, whose listing also tells the task's kind. No match and more than
//! one match are errors; the second lists the matches.

use futures::{StreamExt, TryStreamExt};
use orchestra_proto::v1 as pb;

use crate::cli::RunSelector;
use crate::connect::Connection;
use crate::error::{Error, Result};
use crate::output;

/// Runs listed per page while resolving a prefix (the server's maximum).
const RUN_PAGE: i32 = 500;
/// ListArtifacts calls in flight at once while resolving an artifact prefix.
const PARALLEL_LISTS: usize = 8;

/// Whether `text` is a whole UUID (`8-4-4-4-12` hex digits), which needs no
/// lookup to be used as an id.
pub fn is_whole_id(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// The one id among `candidates` that equals `given` or starts with it.
/// `candidates` pairs each id with a short description, shown when the
/// prefix is ambiguous.
pub fn pick(
    what: &'static str,
    given: &str,
    candidates: impl IntoIterator<Item = (String, String)>,
) -> Result<String> {
    let given = given.trim();
    if given.is_empty() {
        return Err(Error::NoSuchId {
            what,
            given: given.to_owned(),
        });
    }
    let mut matches: Vec<(String, String)> = candidates
        .into_iter()
        .filter(|(id, _)| id.starts_with(given))
        .collect();
    matches.sort();
    matches.dedup_by(|a, b| a.0 == b.0);
    if let Some((id, _)) = matches.iter().find(|(id, _)| id == given) {
        return Ok(id.clone());
    }
    match matches.len() {
        0 => Err(Error::NoSuchId {
            what,
            given: given.to_owned(),
        }),
        1 => Ok(matches.remove(0).0),
        _ => Err(Error::AmbiguousId {
            what,
            given: given.to_owned(),
            matches: matches
                .into_iter()
                .map(|(id, about)| format!("{id}  {about}"))
                .collect(),
        }),
    }
}

/// Every run, newest first, following pages.
pub async fn all_runs(connection: &Connection) -> Result<Vec<pb::Run>> {
    let mut runs = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = connection
            .runs()
            .list_runs(pb::ListRunsRequest {
                statuses: Vec::new(),
                template_name: String::new(),
                page_size: RUN_PAGE,
                page_token,
            })
            .await?
            .into_inner();
        runs.extend(page.runs);
        if page.next_page_token.is_empty() {
            return Ok(runs);
        }
        page_token = page.next_page_token;
    }
}

/// A run's short description: template, status and age.
fn describe_run(run: &pb::Run) -> String {
    format!(
        "{} v{}  {}  {} ago",
        run.template_name,
        run.template_version,
        output::run_status(run.status),
        output::age(run.created_at.as_ref())
    )
}

/// The run a command names: the newest with `--latest`, else the one whose
/// id is or starts with RUN.
pub async fn run(connection: &Connection, selector: &RunSelector) -> Result<String> {
    match (&selector.run, selector.latest) {
        (_, true) => latest_run(connection).await,
        (Some(given), false) => run_id(connection, given).await,
        (None, false) => Err(Error::Usage(
            "name a run: give its id (or a unique prefix of it), or --latest for the newest"
                .to_owned(),
        )),
    }
}

/// The newest run's id.
pub async fn latest_run(connection: &Connection) -> Result<String> {
    let page = connection
        .runs()
        .list_runs(pb::ListRunsRequest {
            statuses: Vec::new(),
            template_name: String::new(),
            page_size: 1,
            page_token: String::new(),
        })
        .await?
        .into_inner();
    page.runs
        .into_iter()
        .next()
        .map(|run| run.id)
        .ok_or_else(|| {
            Error::Usage(
                "there is no run yet: start one with `orchestra run start TEMPLATE`".to_owned(),
            )
        })
}

/// The run whose id is or starts with `given`.
pub async fn run_id(connection: &Connection, given: &str) -> Result<String> {
    if is_whole_id(given) {
        return Ok(given.to_owned());
    }
    let runs = all_runs(connection).await?;
    pick(
        "run",
        given,
        runs.iter().map(|r| (r.id.clone(), describe_run(r))),
    )
}

/// The human task whose id is or starts with `given`, as the inbox lists it
/// (closed tasks included), so callers also learn its kind and state.
pub async fn task(connection: &Connection, given: &str) -> Result<pb::HumanTask> {
    let tasks = connection
        .review()
        .list_inbox(pb::ListInboxRequest {
            include_closed: true,
            run_id: String::new(),
        })
        .await?
        .into_inner()
        .tasks;
    let id = pick(
        "task",
        given,
        tasks.iter().map(|t| {
            let key = t.key.clone().unwrap_or_default();
            (
                t.id.clone(),
                format!(
                    "{} {} of run {}  {}",
                    output::task_kind(t.kind),
                    key.phase_id,
                    key.run_id,
                    output::task_state(t.state)
                ),
            )
        }),
    )?;
    tasks
        .into_iter()
        .find(|t| t.id == id)
        .ok_or(Error::Incomplete("task"))
}

/// The artifact whose id is or starts with `given`, looked for among the
/// artifacts of every run (the store lists artifacts per run only).
pub async fn artifact_id(connection: &Connection, given: &str) -> Result<String> {
    if is_whole_id(given) {
        return Ok(given.to_owned());
    }
    let runs = all_runs(connection).await?;
    let lists: Vec<Vec<pb::ArtifactVersion>> = futures::stream::iter(runs)
        .map(|run| async move {
            Ok::<_, Error>(
                connection
                    .artifacts()
                    .list_artifacts(pb::ListArtifactsRequest {
                        run_id: run.id,
                        phase_id: String::new(),
                    })
                    .await?
                    .into_inner()
                    .artifacts,
            )
        })
        .buffer_unordered(PARALLEL_LISTS)
        .try_collect()
        .await?;
    pick(
        "artifact",
        given,
        lists.into_iter().flatten().filter_map(|a| {
            let r = a.r#ref?;
            let about = format!("{} of {} in run {}", r.name, r.phase_id, r.run_id);
            Some((r.artifact_id, about))
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates() -> Vec<(String, String)> {
        ["019a-aaa1", "019a-aaa2", "019a-bbb1"]
            .into_iter()
            .map(|id| (id.to_owned(), format!("about {id}")))
            .collect()
    }

    #[test]
    fn a_unique_prefix_names_its_id() {
        assert_eq!(
            pick("run", "019a-b", candidates()).ok(),
            Some("019a-bbb1".to_owned())
        );
        assert_eq!(
            pick("run", "019a-aaa2", candidates()).ok(),
            Some("019a-aaa2".to_owned())
        );
    }

    #[test]
    fn an_ambiguous_prefix_lists_its_matches() {
        let error = pick("run", "019a-a", candidates()).expect_err("ambiguous");
        let text = error.to_string();
        assert!(text.contains("019a-aaa1  about 019a-aaa1"), "{text}");
        assert!(text.contains("019a-aaa2"), "{text}");
        assert!(!text.contains("019a-bbb1"), "{text}");
    }

    #[test]
    fn no_match_says_it_does_not_exist() {
        let error = pick("artifact", "garbage", candidates()).expect_err("none");
        assert!(
            error
                .to_string()
                .starts_with("artifact garbage does not exist"),
            "{error}"
        );
    }

    #[test]
    fn whole_uuids_need_no_lookup() {
        assert!(is_whole_id("019ae0c4-6f0b-7d51-8a43-2b1e54f7c9a0"));
        assert!(!is_whole_id("019ae0c4"));
        assert!(!is_whole_id("019ae0c4-6f0b-7d51-8a43-2b1e54f7c9zz"));
    }
}
