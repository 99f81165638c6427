//! The task queue: leasing, heartbeats, progress, completion and failure
//! of attempts (the Lease stream and the lease sweeps are in `leases`).

use orchestra_db::db_run;
use orchestra_model::{PhaseEvent, PhaseState};
use orchestra_proto::v1 as pb;
use tonic::Code;

use super::run_tx::{RunTx, Scope};
use super::{Engine, in_run_tx, now};
use crate::convert::parse_ref;
use crate::error::{Error, Result};
use crate::storage::executors::ExecutorStore;
use crate::storage::models::{TaskRow, task_state};
use crate::storage::tasks::{TaskKey, TaskStore};
use orchestra_kit::error::InvalidArgument;

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
        let phase_id = candidate.phase_id.clone();
        let scope = Scope::Phase(&phase_id);
        let task = in_run_tx!(self, &candidate.run_id, scope = scope, |c,
                                                                       tx|
         -> Option<
            pb::Task,
        > {
            let key = TaskKey {
                run_id: candidate.run_id.clone(),
                phase_id: candidate.phase_id.clone(),
                attempt: candidate.attempt,
            };
            let lease_id = uuid::Uuid::now_v7().to_string();
            let deadline = now() + ttl;
            if c.lease_task(&key, &lease_id, &executor_id, deadline)
                .await?
                == 0
            {
                return Ok(None);
            }
            let index = tx.index(&key.phase_id)?;
            tx.apply(index, PhaseEvent::Start, "", None)?;
            tx.set_executor(index, Some(executor_id.clone()))?;
            let spec = tx.spec(index)?.clone();
            let feedback = tx.feedback(index)?;
            let phase_spec_json = serde_json::to_string(&spec)
                .map_err(|e| Error::Corrupt(format!("definition of {}: {e}", key.phase_id)))?;
            Ok(Some(pb::Task {
                key: Some(pb::AttemptKey {
                    run_id: key.run_id.clone(),
                    phase_id: key.phase_id.clone(),
                    attempt: key.attempt,
                }),
                lease_id,
                lease_deadline: orchestra_kit::time::timestamp(deadline),
                kind: crate::convert::phase_kind(&spec.kind) as i32,
                phase_spec_json,
                inputs: tx.resolve_inputs(index)?.into_iter().collect(),
                seed: phase_seed(tx.run().seed as u64, index),
                timeout_ms: spec
                    .timeout()
                    .map_or(0, |t| i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
                feedback,
            }))
        });
        Ok(task)
    }

    /// Extends a live lease; FAILED_PRECONDITION when it is gone. Any
    /// heartbeat that names its lease rightly, live or not, shows the
    /// executor is alive again, which lifts its suspension.
    pub async fn heartbeat(&self, key: &TaskKey, lease_id: &str) -> Result<i64> {
        let ttl = i64::try_from(self.leases.ttl.as_micros()).unwrap_or(i64::MAX);
        let at = now();
        let deadline = at + ttl;
        let extended = db_run!(&self.db, |c| -> Result<usize> {
            let extended = c.extend_lease(key, lease_id, at, deadline).await?;
            if let Some(task) = c.get_task(key).await?
                && task.lease_id.as_deref() == Some(lease_id)
                && let Some(executor_id) = &task.executor_id
            {
                c.set_executor_suspended(executor_id, false).await?;
            }
            Ok(extended)
        })?;
        if extended == 0 {
            return Err(Error::FailedPrecondition(format!(
                "lease {lease_id} on {}/{} attempt {} is no longer held; stop the attempt",
                key.run_id, key.phase_id, key.attempt
            )));
        }
        self.bus.tasks_changed();
        Ok(deadline)
    }

    /// Checks that a report comes from the holder of a live lease.
    async fn check_lease<C: TaskStore>(
        c: &mut C,
        key: &TaskKey,
        lease_id: &str,
    ) -> Result<TaskRow> {
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
        let scope = Scope::Phase(&key.phase_id);
        in_run_tx!(self, &key.run_id, scope = scope, |c, tx| -> () {
            Self::check_lease(c, key, lease_id).await?;
            tx.record(pb::run_event::Body::PhaseOutputDelta(
                pb::PhaseOutputDelta {
                    phase_id: key.phase_id.clone(),
                    attempt: key.attempt,
                    text: delta,
                },
            ));
            Ok(())
        });
        Ok(())
    }

    /// Completes an attempt. Repeating the same completion changes nothing.
    ///
    /// The output, staged in the artifact store by the executor, becomes a
    /// version here: it is published while the run's lock is held and the
    /// lease checked live, and accepted in the same transaction, so the
    /// output of a lost attempt never becomes a version and a published
    /// output is the accepted one. Should the transaction fail after the
    /// publication (a crash, the database gone), the executor's retry of
    /// this report publishes again, idempotently, and commits.
    pub async fn complete(
        &self,
        key: &TaskKey,
        lease_id: &str,
        output: Option<pb::ArtifactRef>,
    ) -> Result<()> {
        let artifacts = self.artifacts.clone();
        let scope = Scope::Phase(&key.phase_id);
        in_run_tx!(self, &key.run_id, scope = scope, |c, tx| -> () {
            let index = tx.index(&key.phase_id)?;
            let task = c.get_task(key).await?;
            if let Some(task) = &task
                && task.state == task_state::DONE
                && task.lease_id.as_deref() == Some(lease_id)
                && tx.phase(index)?.attempt == key.attempt
                && tx.state(index)? == PhaseState::Completed
                && same_output(tx.phase(index)?.output_json.as_deref(), output.as_ref())?
            {
                return Ok(());
            }
            Self::check_lease(c, key, lease_id).await?;
            let accepted = match &output {
                Some(output) => Some(publish(artifacts, key, output).await?),
                None => None,
            };
            c.set_task_state(key, task_state::DONE).await?;
            tx.apply(index, PhaseEvent::Complete, "", None)?;
            tx.set_executor(index, None)?;
            if let Some(output) = &accepted {
                tx.accept_output(index, output)?;
            }
            tx.advance()?;
            Ok(())
        });
        self.bus.tasks_changed();
        Ok(())
    }

    /// Fails an attempt; requeues a new one while the retry policy allows.
    /// Returns whether it will be retried. A rejected output the attempt
    /// staged (`raw_output`) is published as an invalid version, kept for
    /// inspection and never the latest, as [`Engine::complete`] publishes.
    pub async fn fail(
        &self,
        key: &TaskKey,
        lease_id: &str,
        error: &str,
        retryable: bool,
        raw_output: Option<pb::ArtifactRef>,
    ) -> Result<bool> {
        let artifacts = self.artifacts.clone();
        let scope = Scope::Phase(&key.phase_id);
        let retry = in_run_tx!(self, &key.run_id, scope = scope, |c, tx| -> bool {
            let index = tx.index(&key.phase_id)?;
            if let Some(task) = c.get_task(key).await?
                && task.state == task_state::DONE
                && task.lease_id.as_deref() == Some(lease_id)
            {
                // A repeated report: already applied.
                return Ok(tx.phase(index)?.attempt > key.attempt);
            }
            Self::check_lease(c, key, lease_id).await?;
            if let Some(raw) = &raw_output {
                publish(artifacts, key, raw).await?;
            }
            c.set_task_state(key, task_state::DONE).await?;
            let max = i32::try_from(tx.spec(index)?.retry_policy().max_attempts).unwrap_or(1);
            let retry = retryable && key.attempt < max;
            Self::end_attempt(tx, index, error, retry)?;
            Ok(retry)
        });
        self.bus.tasks_changed();
        Ok(retry)
    }

    pub(super) fn end_attempt(
        tx: &mut RunTx,
        index: usize,
        error: &str,
        retry: bool,
    ) -> Result<()> {
        if retry {
            tx.requeue(index, error)?;
        } else {
            tx.apply(index, PhaseEvent::Fail, error, None)?;
            tx.set_error(index, error)?;
            tx.set_executor(index, None)?;
        }
        tx.advance()
    }
}

/// A phase's seed: the run's seed's splitmix64 sequence at the phase's
/// index, so phases differ and a run's seed reproduces them all.
fn phase_seed(run_seed: u64, index: usize) -> u64 {
    orchestra_kit::seed::nth(run_seed, index as u64)
}

/// Says whether a repeated completion names the output already accepted:
/// the same artifact, attempt and content, whatever its version number
/// (the executor reports the staged output, version 0; the phase keeps the
/// published one).
fn same_output(accepted: Option<&str>, reported: Option<&pb::ArtifactRef>) -> Result<bool> {
    let accepted = accepted.map(parse_ref).transpose()?;
    let unnumbered = |r: &pb::ArtifactRef| pb::ArtifactRef {
        version: 0,
        ..r.clone()
    };
    Ok(accepted.as_ref().map(unnumbered) == reported.map(unnumbered))
}

/// Publishes an accepted attempt's staged output as a version of its
/// artifact (idempotent in the artifact store); the version it became.
async fn publish(
    mut artifacts: orchestra_proto::v1::artifact_service_client::ArtifactServiceClient<
        tonic::transport::Channel,
    >,
    key: &TaskKey,
    output: &pb::ArtifactRef,
) -> Result<pb::ArtifactRef> {
    let request = pb::PublishArtifactRequest {
        key: Some(pb::AttemptKey {
            run_id: key.run_id.clone(),
            phase_id: key.phase_id.clone(),
            attempt: key.attempt,
        }),
        name: output.name.clone(),
    };
    match artifacts.publish_artifact(request).await {
        Ok(response) => response
            .into_inner()
            .artifact
            .and_then(|a| a.r#ref)
            .ok_or_else(|| Error::Unavailable("the artifact store published no version".into())),
        Err(status) if status.code() == Code::NotFound => Err(Error::FailedPrecondition(format!(
            "{}; store the output under this task's key before completing",
            status.message()
        ))),
        Err(status) if status.code() == Code::InvalidArgument => Err(Error::invalid_field(
            "output.name",
            status.message().to_owned(),
        )),
        Err(status) => Err(Error::Unavailable(format!(
            "cannot publish the output in the artifact store ({}); report again",
            status.message()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::ref_json;

    fn reference(version: i32) -> pb::ArtifactRef {
        pb::ArtifactRef {
            artifact_id: "a1".into(),
            version,
            name: "out".into(),
            attempt: 2,
            sha256: "abc".into(),
            ..Default::default()
        }
    }

    #[test]
    fn phase_seeds_differ_by_index_and_repeat_by_seed() {
        assert_ne!(phase_seed(7, 0), phase_seed(7, 1));
        // Pinned: a run replayed by a later version must derive the same seeds.
        assert_eq!(phase_seed(7, 3), 0x953a_eb70_673e_29cb);
        assert_ne!(phase_seed(7, 3), phase_seed(8, 3));
    }

    #[test]
    fn a_repeat_names_the_accepted_output_whatever_its_number() {
        let accepted = ref_json(&reference(3));
        assert!(same_output(Some(&accepted), Some(&reference(0))).expect("parses"));
        assert!(same_output(Some(&accepted), Some(&reference(3))).expect("parses"));
        let other = pb::ArtifactRef {
            sha256: "def".into(),
            ..reference(0)
        };
        assert!(!same_output(Some(&accepted), Some(&other)).expect("parses"));
        assert!(!same_output(Some(&accepted), None).expect("parses"));
        assert!(same_output(None, None).expect("parses"));
        assert!(same_output(Some("not json"), None).is_err());
    }
}
