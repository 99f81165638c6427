//! The engine: every operation that changes templates, runs, phases and
//! tasks, each one database transaction. The gRPC layer translates requests
//! into these calls and their results into responses; nothing else writes.

pub mod run_tx;

use std::collections::BTreeMap;
use std::time::Duration;

use orchestra_db::{Db, db_run, db_tx};
use orchestra_model::{
    Catalog, Format, OnReject, PhaseEvent, PhaseKind, PhaseState, ValidTemplate, Violation,
};
use orchestra_proto::v1 as pb;
use sha2::{Digest, Sha256};

use crate::bus::Bus;
use crate::convert::ref_json;
use crate::error::{Error, Result};
use crate::storage::models::{
    EventRow, OutboxRow, PhaseRow, RunRow, TaskRow, TemplateRow, task_state,
};
use crate::storage::{RunFilter, Store, TaskKey};
use run_tx::{RunTx, Saved, phase_seed};

/// How leases behave.
#[derive(Debug, Clone, Copy)]
pub struct LeaseSettings {
    /// How long a lease lasts without a heartbeat.
    pub ttl: Duration,
    /// Lease expiries retried at least this many times, whatever the phase's
    /// retry policy: an executor that vanished is not the phase's fault.
    pub min_attempts_on_expiry: i32,
}

/// A template's source as received.
#[derive(Debug, Clone)]
pub struct SourceIn {
    /// The text.
    pub source: String,
    /// YAML, JSON or detect.
    pub format: Format,
    /// Files it refers to, by relative path.
    pub files: BTreeMap<String, String>,
}

/// What a StartRun asks for, its inputs already stored as artifacts.
#[derive(Debug, Clone)]
pub struct StartRun {
    /// The new run's id (chosen first so inputs can be stored under it).
    pub run_id: String,
    /// The template version to freeze.
    pub template: TemplateRow,
    /// Run inputs by name.
    pub inputs: BTreeMap<String, pb::ArtifactRef>,
    /// The run's seed.
    pub seed: u64,
    /// Dispatch READY phases without waiting for a person.
    pub auto_advance: bool,
    /// Makes StartRun idempotent.
    pub request_id: Option<String>,
}

/// What a person did on a human phase, as the review service reports it.
#[derive(Debug, Clone)]
pub struct HumanResolution {
    /// The phase attempt.
    pub key: TaskKey,
    /// What happened.
    pub resolution: pb::HumanResolution,
    /// The reviewer's comment.
    pub comment: String,
    /// Who.
    pub actor: Option<pb::Actor>,
    /// The submitted form or decision record.
    pub output: Option<pb::ArtifactRef>,
    /// With RETRY: which phases to run again.
    pub retry_phases: Vec<String>,
}

/// The scheduler's engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    db: Db,
    bus: Bus,
    catalog: Catalog,
    leases: LeaseSettings,
}

fn now() -> i64 {
    orchestra_db::time::now_micros()
}

impl Engine {
    /// An engine over a migrated database.
    pub fn new(db: Db, bus: Bus, catalog: Catalog, leases: LeaseSettings) -> Engine {
        Engine {
            db,
            bus,
            catalog,
            leases,
        }
    }

    /// The database, for reads the gRPC layer makes directly.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The wake-up signals.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    fn wake(&self, saved: Saved) {
        if saved.events {
            self.bus.events_appended();
        }
        if saved.tasks {
            self.bus.tasks_changed();
        }
        if saved.outbox {
            self.bus.outbox_added();
        }
    }

    // ----- templates -------------------------------------------------------

    /// Parses, bundles and validates a template source.
    pub fn validate(&self, source: &SourceIn) -> Result<ValidTemplate, Vec<Violation>> {
        let mut template =
            orchestra_model::Template::parse(&source.source, source.format).map_err(|v| vec![v])?;
        template.bundle_with(&|path| {
            source.files.get(path).cloned().ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "not among the files sent with the template",
                )
            })
        })?;
        orchestra_model::validate(&template, &self.catalog)
    }

    fn template_row(&self, source: &SourceIn, version: i32) -> Result<TemplateRow> {
        let valid = self.validate(source).map_err(|violations| Error::Invalid {
            message: format!("the template has {} fault(s)", violations.len()),
            violations,
        })?;
        let spec_json = valid.to_json();
        let template = valid.template();
        Ok(TemplateRow {
            id: uuid::Uuid::now_v7().to_string(),
            name: template.name.clone(),
            version,
            description: template.description.clone().unwrap_or_default(),
            source: source.source.clone(),
            format: match source.format {
                Format::Json => "json",
                Format::Yaml => "yaml",
                Format::Auto if source.source.trim_start().starts_with('{') => "json",
                Format::Auto => "yaml",
            }
            .to_owned(),
            content_sha256: hex::encode(Sha256::digest(spec_json.as_bytes())),
            spec_json,
            created_at: now(),
        })
    }

    /// Stores version 1 of a new template.
    pub async fn create_template(&self, source: &SourceIn) -> Result<TemplateRow> {
        let row = self.template_row(source, 1)?;
        db_tx!(&self.db, |c| -> Result<TemplateRow> {
            if c.latest_template(&row.name).await?.is_some() {
                return Err(Error::AlreadyExists(format!(
                    "template {} exists; apply a new version of it instead",
                    row.name
                )));
            }
            c.insert_template(row.clone()).await?;
            Ok(row)
        })
    }

    /// Stores the next version of a template unless the content is unchanged.
    pub async fn create_template_version(
        &self,
        name: &str,
        source: &SourceIn,
    ) -> Result<(TemplateRow, bool)> {
        let row = self.template_row(source, 0)?;
        if row.name != name {
            return Err(Error::invalid_field(
                "name",
                format!("the source names template `{}`, not `{name}`", row.name),
            ));
        }
        db_tx!(&self.db, |c| -> Result<(TemplateRow, bool)> {
            let latest = c
                .latest_template(&row.name)
                .await?
                .ok_or_else(|| Error::NotFound(format!("template {} does not exist", row.name)))?;
            if latest.content_sha256 == row.content_sha256 {
                return Ok((latest, false));
            }
            let row = TemplateRow {
                version: latest.version + 1,
                ..row
            };
            c.insert_template(row.clone()).await?;
            Ok((row, true))
        })
    }

    /// One version of a template (0 = latest).
    pub async fn get_template(&self, name: &str, version: i32) -> Result<TemplateRow> {
        let found = db_run!(&self.db, |c| -> Result<Option<TemplateRow>> {
            Ok(if version == 0 {
                c.latest_template(name).await?
            } else {
                c.template_version(name, version).await?
            })
        })?;
        found.ok_or_else(|| match version {
            0 => Error::NotFound(format!("template {name} does not exist")),
            v => Error::NotFound(format!("template {name} has no version {v}")),
        })
    }

    /// The latest version of templates after `after`, by name.
    pub async fn list_templates(&self, after: &str, limit: i64) -> Result<Vec<TemplateRow>> {
        db_run!(&self.db, |c| -> Result<Vec<TemplateRow>> {
            let mut rows = Vec::new();
            for name in c.template_names(after, limit).await? {
                if let Some(row) = c.latest_template(&name).await? {
                    rows.push(row);
                }
            }
            Ok(rows)
        })
    }

    /// Copies a template version under a new name.
    pub async fn clone_template(
        &self,
        source_name: &str,
        source_version: i32,
        new_name: &str,
    ) -> Result<TemplateRow> {
        let original = self.get_template(source_name, source_version).await?;
        let mut spec: serde_json::Value = serde_json::from_str(&original.spec_json)
            .map_err(|e| Error::Corrupt(format!("template spec: {e}")))?;
        spec["name"] = serde_json::Value::String(new_name.to_owned());
        let source = SourceIn {
            source: serde_json::to_string_pretty(&spec).unwrap_or_default(),
            format: Format::Json,
            files: BTreeMap::new(),
        };
        self.create_template(&source).await.map_err(|e| match e {
            Error::Invalid { violations, .. } => Error::Invalid {
                message: "new_name is not a valid template name".into(),
                violations: violations
                    .into_iter()
                    .map(|v| {
                        Violation::new(
                            if v.field == "name" {
                                "new_name"
                            } else {
                                &v.field
                            },
                            v.description,
                        )
                    })
                    .collect(),
            },
            other => other,
        })
    }

    // ----- runs ------------------------------------------------------------

    /// The run a request id started, if any.
    pub async fn run_by_request_id(&self, request_id: &str) -> Result<Option<RunRow>> {
        db_run!(&self.db, |c| -> Result<Option<RunRow>> {
            Ok(c.run_by_request_id(request_id).await?)
        })
    }

    /// Creates a run: its phases BLOCKED, then advanced as far as they go.
    pub async fn start_run(&self, start: StartRun) -> Result<RunRow> {
        let at = now();
        let template = crate::convert::parse_spec(&start.template.spec_json)?;
        let run = RunRow {
            id: start.run_id.clone(),
            template_id: start.template.id.clone(),
            template_name: start.template.name.clone(),
            template_version: start.template.version,
            spec_json: start.template.spec_json.clone(),
            status: orchestra_model::RunStatus::Pending.as_str().to_owned(),
            seed: start.seed as i64,
            auto_advance: start.auto_advance,
            cancelled: false,
            inputs_json: serde_json::to_string(&start.inputs).unwrap_or_else(|_| "{}".into()),
            request_id: start.request_id.clone(),
            last_seq: 0,
            created_at: at,
            updated_at: at,
        };
        let phases: Vec<PhaseRow> = template
            .walk_phases()
            .into_iter()
            .enumerate()
            .map(|(idx, (_, phase))| PhaseRow {
                run_id: run.id.clone(),
                phase_id: phase.id.clone(),
                idx: idx as i32,
                kind: phase.kind.as_str().to_owned(),
                state: PhaseState::Blocked.as_str().to_owned(),
                attempt: 0,
                started_at: 0,
                finished_at: 0,
                error: String::new(),
                output_json: None,
                human_task_id: None,
                executor_id: None,
                feedback_json: "[]".to_owned(),
            })
            .collect();
        let (row, saved) = db_tx!(&self.db, |c| -> Result<(RunRow, Saved)> {
            if let Some(request_id) = &run.request_id
                && let Some(existing) = c.run_by_request_id(request_id).await?
            {
                return Ok((existing, Saved::default()));
            }
            let mut tx = RunTx::new(run, phases, at)?;
            tx.record(pb::run_event::Body::RunStarted(pb::RunStarted {
                template_name: tx.run.template_name.clone(),
                template_version: tx.run.template_version,
                seed: tx.run.seed as u64,
            }));
            tx.advance()?;
            let run_id = tx.run.id.clone();
            let saved = tx.save(c, true).await?;
            let row = c
                .get_run(&run_id)
                .await?
                .ok_or_else(|| Error::Corrupt("run vanished".into()))?;
            Ok((row, saved))
        })?;
        self.wake(saved);
        Ok(row)
    }

    /// A run and its phases, read in one transaction so they agree with the
    /// run's `last_seq`.
    pub async fn get_run(&self, run_id: &str) -> Result<(RunRow, Vec<PhaseRow>)> {
        let run_id = run_id.to_owned();
        db_tx!(&self.db, |c| -> Result<(RunRow, Vec<PhaseRow>)> {
            let run = c
                .get_run(&run_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("run {run_id} does not exist")))?;
            let phases = c.load_phases(&run_id).await?;
            Ok((run, phases))
        })
    }

    /// Runs newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRow>> {
        db_run!(&self.db, |c| -> Result<Vec<RunRow>> {
            Ok(c.list_runs(filter).await?)
        })
    }

    /// A run's events after a sequence.
    pub async fn events_after(
        &self,
        run_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        db_run!(&self.db, |c| -> Result<Vec<EventRow>> {
            Ok(c.events_after(run_id, after, limit).await?)
        })
    }

    /// Runs one change to one run in a transaction and wakes waiters.
    async fn change_run<T, F>(&self, run_id: &str, change: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut RunTx) -> Result<T> + Send + 'static,
    {
        let run_id = run_id.to_owned();
        let (value, saved) = db_tx!(&self.db, |c| -> Result<(T, Saved)> {
            let mut tx = RunTx::load(c, &run_id, now()).await?;
            let value = change(&mut tx)?;
            tx.advance()?;
            let saved = tx.save(c, false).await?;
            Ok((value, saved))
        })?;
        self.wake(saved);
        Ok(value)
    }

    /// Dispatches a READY phase of a run that does not auto-advance.
    pub async fn continue_phase(&self, run_id: &str, phase_id: &str) -> Result<PhaseRow> {
        let phase_id = phase_id.to_owned();
        self.change_run(run_id, move |tx| {
            let index = tx.index(&phase_id)?;
            if tx.state(index)? != PhaseState::Ready {
                return Err(Error::FailedPrecondition(format!(
                    "phase {phase_id} is {}, not READY",
                    tx.state(index)?
                )));
            }
            tx.dispatch(index)?;
            Ok(tx.phases[index].clone())
        })
        .await
    }

    /// Cancels every unfinished phase of a run.
    pub async fn cancel_run(&self, run_id: &str, reason: &str) -> Result<RunRow> {
        let reason = if reason.is_empty() {
            "cancelled"
        } else {
            reason
        }
        .to_owned();
        self.change_run(run_id, move |tx| {
            tx.run.cancelled = true;
            for index in 0..tx.phases.len() {
                if !tx.state(index)?.is_terminal() {
                    tx.apply(index, PhaseEvent::Cancel, &reason, None)?;
                    tx.withdraw_task(index);
                }
            }
            Ok(())
        })
        .await?;
        Ok(self.get_run(run_id).await?.0)
    }

    // ----- tasks -----------------------------------------------------------

    /// Leases the oldest due task of the given kinds to an executor, if any.
    pub async fn lease_next(
        &self,
        executor_id: &str,
        kinds: &[String],
    ) -> Result<Option<pb::Task>> {
        let candidates = db_run!(&self.db, |c| -> Result<Vec<TaskRow>> {
            Ok(c.due_tasks(kinds, now(), 16).await?)
        })?;
        for candidate in candidates {
            if let Some(task) = self.try_lease(candidate, executor_id).await? {
                return Ok(Some(task));
            }
        }
        Ok(None)
    }

    async fn try_lease(&self, candidate: TaskRow, executor_id: &str) -> Result<Option<pb::Task>> {
        let executor_id = executor_id.to_owned();
        let ttl = i64::try_from(self.leases.ttl.as_micros()).unwrap_or(i64::MAX);
        let (task, saved) = db_tx!(&self.db, |c| -> Result<(Option<pb::Task>, Saved)> {
            let at = now();
            let mut tx = RunTx::load(c, &candidate.run_id, at).await?;
            let key = TaskKey {
                run_id: candidate.run_id.clone(),
                phase_id: candidate.phase_id.clone(),
                attempt: candidate.attempt,
            };
            let lease_id = uuid::Uuid::now_v7().to_string();
            let deadline = at + ttl;
            if c.lease_task(&key, &lease_id, &executor_id, deadline)
                .await?
                == 0
            {
                return Ok((None, Saved::default()));
            }
            let index = tx.index(&key.phase_id)?;
            tx.apply(index, PhaseEvent::Start, "", None)?;
            tx.phases[index].executor_id = Some(executor_id.clone());
            let spec = tx.spec(index)?.clone();
            let feedback: Vec<String> =
                serde_json::from_str(&tx.phases[index].feedback_json).unwrap_or_default();
            let task = pb::Task {
                key: Some(pb::AttemptKey {
                    run_id: key.run_id.clone(),
                    phase_id: key.phase_id.clone(),
                    attempt: key.attempt,
                }),
                lease_id,
                lease_deadline: orchestra_kit::time::timestamp(deadline),
                kind: crate::convert::phase_kind(&spec.kind) as i32,
                phase_spec_json: serde_json::to_string(&spec).unwrap_or_default(),
                inputs: tx.resolve_inputs(index)?.into_iter().collect(),
                seed: phase_seed(tx.run.seed as u64, index),
                timeout_ms: spec
                    .timeout()
                    .map_or(0, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
                feedback,
            };
            let saved = tx.save(c, false).await?;
            Ok((Some(task), saved))
        })?;
        self.wake(saved);
        Ok(task)
    }

    /// How many tasks an executor holds now.
    pub async fn leased_by(&self, executor_id: &str) -> Result<i64> {
        db_run!(&self.db, |c| -> Result<i64> {
            Ok(c.count_leased(executor_id).await?)
        })
    }

    /// Extends a live lease; FAILED_PRECONDITION when it is gone.
    pub async fn heartbeat(&self, key: &TaskKey, lease_id: &str) -> Result<i64> {
        let ttl = i64::try_from(self.leases.ttl.as_micros()).unwrap_or(i64::MAX);
        let at = now();
        let deadline = at + ttl;
        let extended = db_run!(&self.db, |c| -> Result<usize> {
            Ok(c.extend_lease(key, lease_id, at, deadline).await?)
        })?;
        if extended == 0 {
            return Err(Error::FailedPrecondition(format!(
                "lease {lease_id} on {}/{} attempt {} is no longer held; stop the attempt",
                key.run_id, key.phase_id, key.attempt
            )));
        }
        Ok(deadline)
    }

    /// Checks that a report comes from the holder of a live lease.
    async fn check_lease<C: Store>(c: &mut C, key: &TaskKey, lease_id: &str) -> Result<TaskRow> {
        let task = c.get_task(key).await?.ok_or_else(|| {
            Error::NotFound(format!(
                "no task {}/{} attempt {}",
                key.run_id, key.phase_id, key.attempt
            ))
        })?;
        if task.state != task_state::LEASED || task.lease_id.as_deref() != Some(lease_id) {
            return Err(Error::FailedPrecondition(format!(
                "lease {lease_id} on {}/{} attempt {} is no longer held (task is {})",
                key.run_id, key.phase_id, key.attempt, task.state
            )));
        }
        Ok(task)
    }

    /// Streams model output to the run's watchers.
    pub async fn progress(&self, key: &TaskKey, lease_id: &str, delta: String) -> Result<()> {
        let key = key.clone();
        let lease_id = lease_id.to_owned();
        let saved = db_tx!(&self.db, |c| -> Result<Saved> {
            let mut tx = RunTx::load(c, &key.run_id, now()).await?;
            Self::check_lease(c, &key, &lease_id).await?;
            tx.record(pb::run_event::Body::PhaseOutputDelta(
                pb::PhaseOutputDelta {
                    phase_id: key.phase_id.clone(),
                    attempt: key.attempt,
                    text: delta,
                },
            ));
            tx.save(c, false).await
        })?;
        self.wake(saved);
        Ok(())
    }

    /// Completes an attempt. Repeating the same completion changes nothing.
    pub async fn complete(
        &self,
        key: &TaskKey,
        lease_id: &str,
        output: Option<pb::ArtifactRef>,
    ) -> Result<()> {
        let key = key.clone();
        let lease_id = lease_id.to_owned();
        let saved = db_tx!(&self.db, |c| -> Result<Saved> {
            let mut tx = RunTx::load(c, &key.run_id, now()).await?;
            let index = tx.index(&key.phase_id)?;
            let task = c.get_task(&key).await?;
            let phase = &tx.phases[index];
            let same_output = phase.output_json == output.as_ref().map(ref_json);
            if let Some(task) = &task
                && task.state == task_state::DONE
                && task.lease_id.as_deref() == Some(lease_id.as_str())
                && phase.attempt == key.attempt
                && tx.state(index)? == PhaseState::Completed
                && same_output
            {
                return Ok(Saved::default());
            }
            Self::check_lease(c, &key, &lease_id).await?;
            c.set_task_state(&key, task_state::DONE).await?;
            tx.apply(index, PhaseEvent::Complete, "", None)?;
            tx.phases[index].executor_id = None;
            if let Some(output) = &output {
                tx.accept_output(index, output);
            }
            tx.advance()?;
            tx.save(c, false).await
        })?;
        self.wake(saved);
        self.bus.tasks_changed();
        Ok(())
    }

    /// Fails an attempt; requeues a new one while the retry policy allows.
    /// Returns whether it will be retried.
    pub async fn fail(
        &self,
        key: &TaskKey,
        lease_id: &str,
        error: &str,
        retryable: bool,
    ) -> Result<bool> {
        let key = key.clone();
        let lease_id = lease_id.to_owned();
        let error = error.to_owned();
        let (retry, saved) = db_tx!(&self.db, |c| -> Result<(bool, Saved)> {
            let mut tx = RunTx::load(c, &key.run_id, now()).await?;
            let index = tx.index(&key.phase_id)?;
            if let Some(task) = c.get_task(&key).await?
                && task.state == task_state::DONE
                && task.lease_id.as_deref() == Some(lease_id.as_str())
            {
                // A repeated report: already applied.
                let retried = tx.phases[index].attempt > key.attempt;
                return Ok((retried, Saved::default()));
            }
            Self::check_lease(c, &key, &lease_id).await?;
            c.set_task_state(&key, task_state::DONE).await?;
            let max = i32::try_from(tx.spec(index)?.retry_policy().max_attempts).unwrap_or(1);
            let retry = retryable && key.attempt < max;
            Self::end_attempt(&mut tx, index, &error, retry)?;
            let saved = tx.save(c, false).await?;
            Ok((retry, saved))
        })?;
        self.wake(saved);
        self.bus.tasks_changed();
        Ok(retry)
    }

    fn end_attempt(tx: &mut RunTx, index: usize, error: &str, retry: bool) -> Result<()> {
        if retry {
            tx.requeue(index, error)?;
        } else {
            tx.apply(index, PhaseEvent::Fail, error, None)?;
            tx.phases[index].error = error.to_owned();
            tx.phases[index].executor_id = None;
            tx.touch(index);
        }
        tx.advance()
    }

    /// Ends every lease past its deadline: the attempt is retried (see
    /// [`LeaseSettings::min_attempts_on_expiry`]) or the phase fails.
    /// Returns how many expired.
    pub async fn expire_leases(&self) -> Result<usize> {
        let expired = db_run!(&self.db, |c| -> Result<Vec<TaskRow>> {
            Ok(c.expired_leases(now(), 64).await?)
        })?;
        let mut count = 0;
        for task in expired {
            let min_attempts = self.leases.min_attempts_on_expiry;
            let saved = db_tx!(&self.db, |c| -> Result<Saved> {
                let at = now();
                let mut tx = RunTx::load(c, &task.run_id, at).await?;
                let key = TaskKey {
                    run_id: task.run_id.clone(),
                    phase_id: task.phase_id.clone(),
                    attempt: task.attempt,
                };
                // Re-read under the run lock: a heartbeat or report may have won.
                let Some(current) = c.get_task(&key).await? else {
                    return Ok(Saved::default());
                };
                if current.state != task_state::LEASED || current.lease_deadline >= at {
                    return Ok(Saved::default());
                }
                c.set_task_state(&key, task_state::DONE).await?;
                let index = tx.index(&key.phase_id)?;
                let executor = current.executor_id.unwrap_or_default();
                let reason = format!("lease expired: executor {executor} stopped heartbeating");
                let max = i32::try_from(tx.spec(index)?.retry_policy().max_attempts)
                    .unwrap_or(1)
                    .max(min_attempts);
                Self::end_attempt(&mut tx, index, &reason, key.attempt < max)?;
                tx.save(c, false).await
            })?;
            if saved.events {
                count += 1;
            }
            self.wake(saved);
        }
        if count > 0 {
            self.bus.tasks_changed();
        }
        Ok(count)
    }

    /// Applies what a person did on a human phase. Idempotent: a report for
    /// an attempt already resolved or superseded changes nothing.
    pub async fn resolve_human(&self, resolution: HumanResolution) -> Result<()> {
        let run_id = resolution.key.run_id.clone();
        self.change_run(&run_id, move |tx| apply_resolution(tx, resolution))
            .await
    }

    // ----- outbox ----------------------------------------------------------

    /// Hand-offs due for delivery.
    pub async fn due_outbox(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        db_run!(&self.db, |c| -> Result<Vec<OutboxRow>> {
            Ok(c.due_outbox(now(), limit).await?)
        })
    }

    /// Records a delivered hand-off.
    pub async fn outbox_delivered(&self, id: &str) -> Result<()> {
        db_run!(&self.db, |c| -> Result<()> {
            Ok(c.mark_outbox_delivered(id, now()).await?)
        })
    }

    /// Records a failed delivery, to be tried again after `delay`.
    pub async fn outbox_failed(&self, row: &OutboxRow, delay: Duration, error: &str) -> Result<()> {
        let next = now() + i64::try_from(delay.as_micros()).unwrap_or(i64::MAX / 2);
        db_run!(&self.db, |c| -> Result<()> {
            Ok(c.mark_outbox_failed(&row.id, row.attempts + 1, next, error)
                .await?)
        })
    }
}

fn apply_resolution(tx: &mut RunTx, r: HumanResolution) -> Result<()> {
    use pb::HumanResolution as H;
    let index = tx.index(&r.key.phase_id)?;
    let attempt = tx.phases[index].attempt;
    if r.key.attempt < attempt {
        return Ok(()); // superseded by a newer attempt
    }
    if r.key.attempt > attempt {
        return Err(Error::FailedPrecondition(format!(
            "phase {} has no attempt {} yet",
            r.key.phase_id, r.key.attempt
        )));
    }
    let state = tx.state(index)?;
    let actor = r.actor.clone();
    match r.resolution {
        H::ReviewOpened => {
            if state == PhaseState::WaitingForHuman {
                tx.apply(index, PhaseEvent::OpenReview, "", None)?;
            }
        }
        H::Submitted => {
            if state == PhaseState::WaitingForHuman {
                tx.apply(index, PhaseEvent::Complete, "submitted", actor)?;
                if let Some(output) = &r.output {
                    tx.accept_output(index, output);
                }
            }
        }
        H::Approved => {
            if state == PhaseState::WaitingForHuman {
                tx.apply(index, PhaseEvent::OpenReview, "", None)?;
            }
            if tx.state(index)? == PhaseState::ReadyForReview {
                tx.apply(index, PhaseEvent::Approve, &r.comment, actor)?;
                if let Some(output) = &r.output {
                    tx.accept_output(index, output);
                }
            }
        }
        H::Rejected | H::Retry => {
            if state == PhaseState::WaitingForHuman {
                tx.apply(index, PhaseEvent::OpenReview, "", None)?;
            }
            if tx.state(index)? != PhaseState::ReadyForReview {
                return Ok(()); // already decided
            }
            let on_reject = tx.spec(index)?.on_reject.clone();
            let retry_phases = match (r.resolution, on_reject) {
                (H::Retry, _) if !r.retry_phases.is_empty() => r.retry_phases.clone(),
                (_, Some(OnReject::Retry { phases })) => phases,
                (H::Retry, _) => tx.spec(index)?.needs.clone(),
                _ => Vec::new(),
            };
            tx.apply(index, PhaseEvent::Reject, &r.comment, actor)?;
            if let Some(output) = &r.output {
                tx.accept_output(index, output);
            }
            if !retry_phases.is_empty() {
                send_back(tx, index, &retry_phases, &r.comment)?;
            }
        }
        H::Unspecified => {
            return Err(Error::invalid_field("resolution", "must be set"));
        }
    }
    Ok(())
}

/// Sends upstream phases back for a new attempt with the reviewer's comment
/// as feedback, and rewinds everything downstream of them.
fn send_back(tx: &mut RunTx, review: usize, phases: &[String], comment: &str) -> Result<()> {
    let review_id = tx.phases[review].phase_id.clone();
    for phase_id in phases {
        if !tx.is_ancestor(phase_id, &review_id) {
            return Err(Error::invalid_field(
                "retry_phases",
                format!("{phase_id} is not upstream of {review_id}"),
            ));
        }
    }
    let mut rewind = std::collections::BTreeSet::new();
    for phase_id in phases {
        rewind.extend(tx.descendants(phase_id));
    }
    for phase_id in phases {
        rewind.remove(phase_id);
    }
    for phase_id in &rewind {
        let index = tx.index(phase_id)?;
        if tx.state(index)? != PhaseState::Blocked {
            tx.apply(
                index,
                PhaseEvent::Rewind,
                "an upstream phase was sent back",
                None,
            )?;
            tx.withdraw_task(index);
        }
    }
    for phase_id in phases {
        let index = tx.index(phase_id)?;
        let mut feedback: Vec<String> =
            serde_json::from_str(&tx.phases[index].feedback_json).unwrap_or_default();
        if !comment.is_empty() {
            feedback.push(comment.to_owned());
        }
        tx.phases[index].feedback_json = serde_json::to_string(&feedback).unwrap_or_default();
        let kind = tx.spec(index)?.kind.clone();
        let state = tx.state(index)?;
        if state == PhaseState::Blocked {
            continue;
        }
        if matches!(kind, PhaseKind::Llm | PhaseKind::Function) && !state.is_terminal() {
            tx.withdraw_task(index);
            tx.apply(index, PhaseEvent::Rewind, "sent back by review", None)?;
        } else {
            tx.apply(index, PhaseEvent::Retry, comment, None)?;
        }
    }
    Ok(())
}
