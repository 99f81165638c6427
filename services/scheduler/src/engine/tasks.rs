//! The task queue: leases, heartbeats, progress, completion, failure,
//! expiry.

use orchestra_db::{db_run, db_tx};
use orchestra_model::{PhaseEvent, PhaseState};
use orchestra_proto::v1 as pb;

use super::run_tx::{RunTx, Saved, phase_seed};
use super::{Engine, now};
use crate::convert::ref_json;
use crate::error::{Error, Result};
use crate::storage::models::{TaskRow, task_state};
use crate::storage::{Store, TaskKey};

impl Engine {
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
}
