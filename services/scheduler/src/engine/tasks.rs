//! The task queue: leasing, heartbeats, progress, completion and failure
//! of attempts (the Lease stream and the lease sweeps are in `leases`).

use orchestra_db::db_run;
use orchestra_model::PhaseEvent;
use orchestra_proto::v1 as pb;

use super::outputs::{Output, publish};
use super::run_tx::{RunTx, Scope};
use super::{Engine, in_run_tx, now};
use crate::error::{Error, Result};
use crate::storage::executors::ExecutorStore;
use crate::storage::models::{TaskRow, task_state};
use crate::storage::tasks::{TaskKey, TaskStore};

/// The most tasks one Lease-stream look claims.
const MAX_CLAIM: usize = 64;

impl Engine {
    /// Leases up to `max` of the oldest due tasks of the given kinds to an
    /// executor, oldest first: one transaction per run they belong to, so a
    /// fan-out's children are claimed together.
    pub async fn lease_next(
        &self,
        executor_id: &str,
        kinds: &[String],
        max: usize,
    ) -> Result<Vec<pb::Task>> {
        let limit = i64::try_from(max.clamp(1, MAX_CLAIM)).unwrap_or(1);
        let candidates = db_run!(&self.db, |c| -> Result<Vec<TaskRow>> {
            Ok(c.due_tasks(kinds, now(), limit).await?)
        })?;
        let mut by_run: Vec<(String, Vec<TaskRow>)> = Vec::new();
        for candidate in candidates {
            match by_run
                .iter_mut()
                .find(|(run_id, _)| *run_id == candidate.run_id)
            {
                Some((_, rows)) => rows.push(candidate),
                None => by_run.push((candidate.run_id.clone(), vec![candidate])),
            }
        }
        let mut leased = Vec::new();
        for (run_id, rows) in by_run {
            leased.extend(self.try_lease(&run_id, rows, executor_id).await?);
        }
        Ok(leased)
    }

    /// Leases what it can of one run's queued tasks (others may have taken
    /// some first) in one transaction.
    async fn try_lease(
        &self,
        run_id: &str,
        candidates: Vec<TaskRow>,
        executor_id: &str,
    ) -> Result<Vec<pb::Task>> {
        let ttl = i64::try_from(self.leases.ttl.as_micros()).unwrap_or(i64::MAX);
        let phase_ids: Vec<String> = candidates.iter().map(|t| t.phase_id.clone()).collect();
        let scope = Scope::Phases(&phase_ids);
        let tasks = in_run_tx!(self, run_id, scope = scope, |c, tx| -> Vec<pb::Task> {
            let mut tasks = Vec::with_capacity(candidates.len());
            for candidate in &candidates {
                let key = TaskKey {
                    run_id: candidate.run_id.clone(),
                    phase_id: candidate.phase_id.clone(),
                    attempt: candidate.attempt,
                };
                let lease_id = uuid::Uuid::now_v7().to_string();
                let deadline = now() + ttl;
                if c.lease_task(&key, &lease_id, executor_id, deadline).await? == 0 {
                    continue;
                }
                let index = tx.index(&key.phase_id)?;
                tx.start_leased(index, executor_id)?;
                tasks.push(tx.task_message(index, &lease_id, deadline)?);
            }
            Ok(tasks)
        });
        Ok(tasks)
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
        let task = c.get_task(key).await?;
        Self::check_held(task, key, lease_id)
    }

    /// Checks that a task row, read under the run's lock, is leased under
    /// `lease_id`.
    pub(super) fn check_held(
        task: Option<TaskRow>,
        key: &TaskKey,
        lease_id: &str,
    ) -> Result<TaskRow> {
        let task = task.ok_or_else(|| {
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

    /// The oldest due task of a kind anywhere, when it belongs to this run
    /// (loaded, with its inputs' sources): what the Lease stream would
    /// send next, so handing it on keeps the queue's order. A fan-out's
    /// children go hop to hop this way, each completion taking the next.
    pub(super) async fn first_in_line<C: TaskStore + crate::storage::phases::PhaseStore>(
        c: &mut C,
        tx: &mut RunTx,
        kind: &str,
    ) -> Result<Option<usize>> {
        let oldest = c.due_tasks(&[kind.to_owned()], now(), 1).await?;
        let Some(oldest) = oldest.into_iter().next() else {
            return Ok(None);
        };
        if oldest.run_id != tx.run().id {
            return Ok(None);
        }
        let index = tx.index(&oldest.phase_id)?;
        tx.load_missing(c, [index]).await?;
        if tx.phase(index)?.attempt != oldest.attempt {
            return Ok(None);
        }
        tx.load_sources(c, index).await?;
        Ok(Some(index))
    }

    /// What a completion handed its executor, found again for a repeat of
    /// it: the run's tasks that executor holds under the leases the
    /// completion derived.
    pub(super) async fn handed_before<C: TaskStore + crate::storage::phases::PhaseStore>(
        c: &mut C,
        tx: &mut RunTx,
        executor_id: &str,
        lease_id: &str,
    ) -> Result<Vec<pb::Task>> {
        let mut handed = Vec::new();
        for task in c.leased_in_run(&tx.run().id, executor_id).await? {
            let derived = handed_lease_id(lease_id, &task.phase_id, task.attempt);
            if task.lease_id.as_deref() != Some(&derived) {
                continue;
            }
            let index = tx.index(&task.phase_id)?;
            tx.load_missing(c, [index]).await?;
            tx.load_sources(c, index).await?;
            handed.push(tx.task_message(index, &derived, task.lease_deadline)?);
        }
        Ok(handed)
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
                publish(artifacts, key, &Output::Staged(raw.clone())).await?;
            }
            tx.finish_task(key);
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

/// The lease a completion hands on with a phase it readied: derived from
/// the completed lease, so a repeat of the completion finds it again, and
/// as unguessable as that lease to anyone who does not hold it.
pub(super) fn handed_lease_id(lease_id: &str, phase_id: &str, attempt: i32) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{lease_id}/{phase_id}/{attempt}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_seeds_differ_by_index_and_repeat_by_seed() {
        let phase_seed = orchestra_kit::seed::nth;
        assert_ne!(phase_seed(7, 0), phase_seed(7, 1));
        // Pinned: a run replayed by a later version must derive the same seeds.
        assert_eq!(phase_seed(7, 3), 0x953a_eb70_673e_29cb);
        assert_ne!(phase_seed(7, 3), phase_seed(8, 3));
    }

    #[test]
    fn a_handed_lease_is_stable_and_differs_by_phase_and_attempt() {
        let first = handed_lease_id("l1", "b", 1);
        assert_eq!(first, handed_lease_id("l1", "b", 1));
        assert_ne!(first, handed_lease_id("l1", "c", 1));
        assert_ne!(first, handed_lease_id("l1", "b", 2));
        assert_ne!(first, handed_lease_id("l2", "b", 1));
        assert!(uuid::Uuid::parse_str(&first).is_ok());
    }
}
