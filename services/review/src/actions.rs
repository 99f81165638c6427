//! What people and the scheduler do to tasks: open, read, claim, submit
//! and decide. Each change commits first, then is published to the inbox.

use std::collections::BTreeMap;

use prost::Message;

use orchestra_kit::error::{InvalidArgument as _, Violation};
use orchestra_kit::time::{now_micros, timestamp};
use orchestra_proto::v1::{
    Actor, ActorKind, ArtifactRef, AttemptKey, DecisionKind, HumanResolution, HumanTask,
    HumanTaskKind, HumanTaskState, OpenTaskRequest, ResolveHumanPhaseRequest, Selection,
};

use crate::storage::models::{StoredDecision, TaskRow};
use crate::storage::tasks;
use crate::{Error, Result, Review, forms};

/// The output name of a decision record when the phase names none.
const DEFAULT_DECISION_NAME: &str = "decision";

/// What a reviewer asks for in `Decide`.
pub(crate) struct Verdict {
    pub(crate) kind: DecisionKind,
    pub(crate) comment: String,
    pub(crate) selected: Vec<String>,
    pub(crate) retry_phases: Vec<String>,
    pub(crate) person: String,
}

impl Review {
    /// Opens a task, or returns the one already opened under this id.
    pub(crate) async fn open_task(&self, request: OpenTaskRequest) -> Result<HumanTask> {
        let row = new_task_row(request)?;
        let (stored, created) = tasks::open_task(&self.db, row).await?;
        let task = stored.to_proto()?;
        if created {
            self.changed(&task);
        }
        Ok(task)
    }

    /// Closes a task the run no longer needs; a task already decided or
    /// closed stays as it is. NOT_FOUND for a task never opened.
    pub(crate) async fn close_task(&self, id: &str, reason: &str) -> Result<HumanTask> {
        if id.is_empty() {
            return Err(Error::invalid_field("task_id", "is required"));
        }
        let reason = if reason.trim().is_empty() {
            "the run no longer needs it"
        } else {
            reason
        };
        let (row, closed) = tasks::close_task(&self.db, id, reason, now_micros())
            .await?
            .ok_or_else(|| Error::task_not_found(id))?;
        let task = row.to_proto()?;
        if closed {
            self.inbox.publish(task.clone());
        }
        Ok(task)
    }

    /// One task; a review task with its items' content and the candidates'
    /// diffs when the artifact store answers.
    pub(crate) async fn get_task(&self, id: &str) -> Result<HumanTask> {
        let row = self.load(id).await?;
        let mut task = row.to_proto()?;
        if row.kind == HumanTaskKind::Review as i32 {
            let mut filled = task.clone();
            match self.artifacts.fill_review(&mut filled).await {
                Ok(()) => task = filled,
                Err(error) => {
                    tracing::warn!(task = id, %error, "showing the review without its content")
                }
            }
        }
        Ok(task)
    }

    /// Open and claimed tasks (all with `include_closed`), oldest first.
    pub(crate) async fn list_inbox(
        &self,
        include_closed: bool,
        run_id: Option<&str>,
    ) -> Result<Vec<HumanTask>> {
        let rows = tasks::list_tasks(&self.db, include_closed, run_id).await?;
        rows.iter().map(TaskRow::to_proto).collect()
    }

    /// Records that `person` works on the task.
    pub(crate) async fn claim_task(&self, id: &str, person: &str) -> Result<HumanTask> {
        require_person(person)?;
        let row = tasks::claim_task(&self.db, id, person, now_micros()).await?;
        self.publish_change(&row)
    }

    /// Checks a form against the task's schema, stores it as the phase's
    /// output, closes the task and tells the scheduler (through the outbox).
    pub(crate) async fn submit_input(
        &self,
        id: &str,
        content_json: &str,
        person: &str,
    ) -> Result<HumanTask> {
        require_person(person)?;
        let task = self.load(id).await?;
        if task.kind != HumanTaskKind::Input as i32 {
            return Err(Error::FailedPrecondition(format!(
                "task {id} is a review, not a form: approve, reject or send it back instead"
            )));
        }
        tasks::refuse_unless_actionable(&task, person)?;
        let content = forms::check_submission(&task.form_schema_json, content_json)?;
        let output = self
            .artifacts
            .put_json(
                task.key(),
                &task.output_name,
                serde_json::to_vec(&content)?,
                &task.form_schema_json,
                person,
            )
            .await?;
        let decision = StoredDecision {
            kind: DecisionKind::Unspecified as i32,
            comment: "submitted".to_owned(),
            decided_by: person.to_owned(),
            decided_at: now_micros(),
            ..StoredDecision::default()
        };
        let payload = resolution(
            task.key(),
            HumanResolution::Submitted,
            String::new(),
            person_actor(person),
            Some(output),
            Vec::new(),
            decision.decided_at,
        );
        let row = tasks::finish_task(&self.db, id, &decision, payload).await?;
        self.publish_change(&row)
    }

    /// Records a reviewer's decision as the phase's output, closes the task
    /// and tells the scheduler (through the outbox).
    pub(crate) async fn decide(&self, id: &str, verdict: Verdict) -> Result<HumanTask> {
        require_person(&verdict.person)?;
        let (word, resolution_kind) = match verdict.kind {
            DecisionKind::Approve => ("approve", HumanResolution::Approved),
            DecisionKind::Reject => ("reject", HumanResolution::Rejected),
            DecisionKind::Retry => ("retry", HumanResolution::Retry),
            DecisionKind::Unspecified => {
                return Err(Error::invalid_field(
                    "kind",
                    "must be APPROVE, REJECT or RETRY",
                ));
            }
        };
        let task = self.load(id).await?;
        if task.kind != HumanTaskKind::Review as i32 {
            return Err(Error::FailedPrecondition(format!(
                "task {id} is an input form, not a review: submit the form instead"
            )));
        }
        let selected = if verdict.kind == DecisionKind::Approve {
            resolve_selection(&task, &verdict.selected)?
        } else if verdict.selected.is_empty() {
            Vec::new()
        } else {
            return Err(Error::invalid_field(
                "selected",
                "only an approval selects candidates; leave it empty to reject or retry",
            ));
        };
        if let Some(recorded) = task.decision()?
            && recorded.kind == verdict.kind as i32
            && recorded.decided_by == verdict.person
            && recorded.comment == verdict.comment
            && recorded.selected == selected
            && recorded.retry_phases == verdict.retry_phases
        {
            // The same decision again (a retried call): same answer, no change.
            return task.to_proto();
        }
        tasks::refuse_unless_actionable(&task, &verdict.person)?;
        let decision = StoredDecision {
            kind: verdict.kind as i32,
            comment: verdict.comment,
            selected,
            retry_phases: verdict.retry_phases,
            decided_by: verdict.person,
            decided_at: now_micros(),
        };
        let record = serde_json::json!({
            "decision": word,
            "selected": decision.selected,
            "comment": decision.comment,
            "retry_phases": decision.retry_phases,
            "decided_by": decision.decided_by,
            "decided_at": timestamp(decision.decided_at).map(|t| orchestra_kit::time::rfc3339(&t)),
        });
        let name = if task.output_name.is_empty() {
            DEFAULT_DECISION_NAME
        } else {
            &task.output_name
        };
        let output = self
            .artifacts
            .put_json(
                task.key(),
                name,
                serde_json::to_vec(&record)?,
                "",
                &decision.decided_by,
            )
            .await?;
        let payload = resolution(
            task.key(),
            resolution_kind,
            decision.comment.clone(),
            person_actor(&decision.decided_by),
            Some(output),
            decision.retry_phases.clone(),
            decision.decided_at,
        );
        let row = tasks::finish_task(&self.db, id, &decision, payload).await?;
        self.publish_change(&row)
    }

    async fn load(&self, id: &str) -> Result<TaskRow> {
        tasks::get_task(&self.db, id)
            .await?
            .ok_or_else(|| Error::task_not_found(id))
    }

    /// After a commit: wake the outbox and tell the watchers.
    fn changed(&self, task: &HumanTask) {
        self.wake.notify_one();
        self.inbox.publish(task.clone());
    }

    /// The task as the contract shows it, after a commit that changed it.
    fn publish_change(&self, row: &TaskRow) -> Result<HumanTask> {
        let task = row.to_proto()?;
        self.changed(&task);
        Ok(task)
    }
}

fn new_task_row(request: OpenTaskRequest) -> Result<TaskRow> {
    if request.task_id.is_empty() {
        return Err(Error::invalid_field("task_id", "is required"));
    }
    let kind = HumanTaskKind::try_from(request.kind).unwrap_or(HumanTaskKind::Unspecified);
    if kind == HumanTaskKind::Unspecified {
        return Err(Error::invalid_field("kind", "must be INPUT or REVIEW"));
    }
    let key = request.key.unwrap_or_default();
    if key.run_id.is_empty() || key.phase_id.is_empty() {
        return Err(Error::invalid_field(
            "key",
            "run_id and phase_id are required",
        ));
    }
    let selection = Selection::try_from(request.selection).unwrap_or(Selection::Unspecified);
    let candidates = request.candidates.clone();
    if let Some((i, name)) = candidates
        .iter()
        .enumerate()
        .find(|(_, name)| !request.inputs.contains_key(*name))
    {
        return Err(Error::invalid_field(
            format!("candidates[{i}]"),
            format!("`{name}` is not one of the task's inputs"),
        ));
    }
    if candidates.is_empty() != (selection == Selection::Unspecified) {
        return Err(Error::invalid_field(
            "selection",
            "is set exactly when there are candidates",
        ));
    }
    let inputs: BTreeMap<String, ArtifactRef> = request
        .inputs
        .iter()
        .map(|(name, r)| (name.clone(), r.clone()))
        .collect();
    let now = now_micros();
    Ok(TaskRow {
        id: request.task_id,
        kind: kind as i32,
        state: HumanTaskState::Open as i32,
        run_id: key.run_id,
        phase_id: key.phase_id,
        attempt: key.attempt,
        title: request.title,
        template_name: request.template_name,
        form_schema_json: request.form_schema_json,
        output_name: request.output_name,
        inputs_json: serde_json::to_string(&inputs)?,
        show_json: serde_json::to_string(&request.show)?,
        claimed_by: String::new(),
        decision_json: None,
        created_at: now,
        updated_at: now,
        candidates_json: serde_json::to_string(&candidates)?,
        selection: selection as i32,
        closed_reason: String::new(),
    })
}

/// The candidates an approval selects, made explicit: what `selected`
/// names, checked against the task's candidates and selection rule, or the
/// default an empty `selected` stands for (see `DecideRequest.selected`).
fn resolve_selection(task: &TaskRow, selected: &[String]) -> Result<Vec<String>> {
    let candidates = task.candidates()?;
    let inputs = task.inputs()?;
    let choices = candidates.join(", ");
    if candidates.is_empty() {
        if selected.is_empty() {
            return Ok(Vec::new());
        }
        return Err(Error::invalid_field(
            "selected",
            "this review has no candidates to choose between: approve without selecting",
        ));
    }
    let mut violations = Vec::new();
    for (i, name) in selected.iter().enumerate() {
        let description = if candidates.contains(name) {
            if selected[..i].contains(name) {
                format!("`{name}` is selected twice")
            } else {
                continue;
            }
        } else if inputs.contains_key(name) {
            format!("`{name}` is shown as evidence, not a candidate; choose from: {choices}")
        } else {
            format!("`{name}` is not a candidate; choose from: {choices}")
        };
        violations.push(Violation::new(format!("selected[{i}]"), description));
    }
    if !violations.is_empty() {
        return Err(Error::InvalidArgument {
            message: format!("select among this review's candidates: {choices}"),
            violations,
        });
    }
    let selection = Selection::try_from(task.selection).unwrap_or(Selection::One);
    match (selection, selected.len()) {
        (Selection::One | Selection::Unspecified, 0) if candidates.len() == 1 => Ok(candidates),
        (Selection::One | Selection::Unspecified, 0) => Err(Error::invalid_field(
            "selected",
            format!("this review needs exactly one candidate: pick one of {choices}"),
        )),
        (Selection::One | Selection::Unspecified, 1) => Ok(selected.to_vec()),
        (Selection::One | Selection::Unspecified, n) => Err(Error::invalid_field(
            "selected",
            format!("this review needs exactly one candidate, not {n}: pick one of {choices}"),
        )),
        (Selection::AtLeastOne, 0) => Ok(candidates),
        (Selection::AtLeastOne | Selection::Any, _) => Ok(selected.to_vec()),
    }
}

fn require_person(person: &str) -> Result<()> {
    if person.trim().is_empty() {
        return Err(Error::invalid_field("person", "is required"));
    }
    Ok(())
}

fn person_actor(person: &str) -> Actor {
    Actor {
        kind: ActorKind::Person as i32,
        id: person.to_owned(),
    }
}

/// An encoded `ResolveHumanPhaseRequest`, as the outbox stores it.
fn resolution(
    key: AttemptKey,
    kind: HumanResolution,
    comment: String,
    actor: Actor,
    output: Option<ArtifactRef>,
    retry_phases: Vec<String>,
    decided_at: i64,
) -> Vec<u8> {
    ResolveHumanPhaseRequest {
        key: Some(key),
        resolution: kind as i32,
        comment,
        actor: Some(actor),
        output,
        retry_phases,
        decided_at: timestamp(decided_at),
    }
    .encode_to_vec()
}
