//! Completions, committed together per run. Every change to a run takes
//! its row lock, so a run's completions are applied one after another
//! whatever the executors' concurrency: a 1,000-wide fan-out is 1,000
//! transactions in a row. Instead, the completions of a run that arrive
//! while one of its batches commits wait and go in the next batch, all in
//! one transaction (group commit): each is applied exactly as it would be
//! alone, and each caller is answered only once that transaction has
//! committed, so nothing is acknowledged before it is durable.
//!
//! A batch that fails as a whole (one report whose lease is lost, say) is
//! applied again one report at a time, so each caller gets its own answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use orchestra_kit::error::InvalidArgument as _;
use orchestra_model::{PhaseEvent, PhaseState};
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use super::outputs::{Output, publish, same_output};
use super::run_tx::{RunTx, Scope};
use super::tasks::handed_lease_id;
use super::{Engine, in_run_tx, now};
use crate::error::{Error, Result};
use crate::storage::executors::ExecutorStore;
use crate::storage::models::task_state;
use crate::storage::phases::PhaseStore;
use crate::storage::tasks::{TaskKey, TaskStore};

/// The most completions one transaction applies.
const MAX_BATCH: usize = 256;

/// One executor's report that an attempt finished.
#[derive(Debug, Clone)]
struct Completion {
    key: TaskKey,
    lease_id: String,
    output: Option<Output>,
    accept: u32,
}

/// What a completion's caller is told: the tasks handed on to it.
type Answer = oneshot::Sender<Result<Vec<pb::Task>>>;

/// Completions waiting, with where to answer each.
type Queue = Vec<(Completion, Answer)>;

/// The completions waiting for their run's next batch, by run. A run has an
/// entry while a batch of it is being committed; the task committing it
/// takes what waits until nothing does, then removes the entry.
#[derive(Clone, Default)]
pub struct Combiner {
    waiting: Arc<Mutex<HashMap<String, Queue>>>,
}

impl Combiner {
    /// Queues a completion; true when no batch of its run is under way, so
    /// the caller must start one.
    fn join(&self, completion: Completion, answer: Answer) -> bool {
        let mut waiting = self.lock();
        match waiting.get_mut(&completion.key.run_id) {
            Some(queue) => {
                queue.push((completion, answer));
                false
            }
            None => {
                waiting.insert(completion.key.run_id.clone(), vec![(completion, answer)]);
                true
            }
        }
    }

    /// The next batch of a run; empty (and the run's entry gone) when
    /// nothing waits.
    fn next_batch(&self, run_id: &str) -> Queue {
        let mut waiting = self.lock();
        let Some(queue) = waiting.get_mut(run_id) else {
            return Vec::new();
        };
        if queue.is_empty() {
            waiting.remove(run_id);
            return Vec::new();
        }
        let rest = queue.split_off(queue.len().min(MAX_BATCH));
        std::mem::replace(queue, rest)
    }

    /// Forgets a run's waiting completions (their callers hear an error):
    /// the task committing its batches ended early.
    fn abandon(&self, run_id: &str) {
        self.lock().remove(run_id);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Queue>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ends a run's batching if the committing task stops unexpectedly (a
/// panic), so later completions of the run start batches again.
struct Leading<'a> {
    combiner: &'a Combiner,
    run_id: &'a str,
    done: bool,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.combiner.abandon(self.run_id);
        }
    }
}

impl Engine {
    /// Completes an attempt. Repeating the same completion changes nothing.
    ///
    /// The output, staged in the artifact store by the executor or sent
    /// inline with the report, becomes a version here: it is published while the run's lock is held and the
    /// lease checked live, and accepted in the same transaction, so the
    /// output of a lost attempt never becomes a version and a published
    /// output is the accepted one. Should the transaction fail after the
    /// publication (a crash, the database gone), the executor's retry of
    /// this report publishes again, idempotently, and commits.
    ///
    /// With `accept` > 0 the executor takes on that many more tasks of this
    /// one's kind in the slot it frees: phases this completion readied, or
    /// else the queue's next task when it is this run's, are leased to it in
    /// the same transaction and returned (a repeat returns them again while
    /// their leases are live, so a lost answer loses no task).
    ///
    /// Completions of one run that arrive together commit together (see
    /// the module's documentation).
    pub async fn complete(
        &self,
        key: &TaskKey,
        lease_id: &str,
        output: Option<Output>,
        accept: u32,
    ) -> Result<Vec<pb::Task>> {
        let completion = Completion {
            key: key.clone(),
            lease_id: lease_id.to_owned(),
            output,
            accept,
        };
        let (answer, answered) = oneshot::channel();
        if self.completions.join(completion, answer) {
            // Its own task: a caller that goes away must not strand the
            // completions that joined its batch.
            let engine = self.clone();
            let run_id = key.run_id.clone();
            tokio::spawn(async move { engine.commit_batches(&run_id).await });
        }
        answered.await.map_err(|_| {
            Error::Unavailable("the completion was not applied; report it again".into())
        })?
    }

    /// Commits a run's waiting completions, batch after batch, until none
    /// waits.
    async fn commit_batches(&self, run_id: &str) {
        let mut leading = Leading {
            combiner: &self.completions,
            run_id,
            done: false,
        };
        loop {
            let batch = self.completions.next_batch(run_id);
            if batch.is_empty() {
                leading.done = true;
                return;
            }
            let (completions, answers): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            match self.complete_together(run_id, &completions).await {
                Ok(handed) => {
                    for (answer, handed) in answers.into_iter().zip(handed) {
                        let _ = answer.send(Ok(handed));
                    }
                }
                Err(error) if completions.len() == 1 => {
                    if let Some(answer) = answers.into_iter().next() {
                        let _ = answer.send(Err(error));
                    }
                }
                Err(_) => {
                    for (completion, answer) in completions.into_iter().zip(answers) {
                        let alone = self
                            .complete_together(run_id, std::slice::from_ref(&completion))
                            .await
                            .map(|mut handed| handed.pop().unwrap_or_default());
                        let _ = answer.send(alone);
                    }
                }
            }
        }
    }

    /// Applies completions of one run in one transaction; the tasks handed
    /// on to each, in order.
    async fn complete_together(
        &self,
        run_id: &str,
        completions: &[Completion],
    ) -> Result<Vec<Vec<pb::Task>>> {
        let artifacts = self.artifacts.clone();
        let ttl = i64::try_from(self.leases.ttl.as_micros()).unwrap_or(i64::MAX);
        let presence = i64::try_from(self.leases.presence_interval().as_micros()).unwrap_or(0);
        let phase_ids: Vec<String> = completions.iter().map(|c| c.key.phase_id.clone()).collect();
        let scope = Scope::Phases(&phase_ids);
        let applied = in_run_tx!(self, run_id, scope = scope, |c,
                                                               tx|
         -> Vec<(
            String,
            Vec<pb::Task>
        )> {
            let mut applied = Vec::with_capacity(completions.len());
            for completion in completions {
                let one = complete_one(c, tx, completion, &artifacts, ttl, presence).await?;
                applied.push(one);
            }
            Ok(applied)
        });
        let mut handed_on = Vec::with_capacity(applied.len());
        for (kind, handed) in applied {
            if handed.is_empty() {
                // The slot this attempt held is free: a Lease stream may fill it.
                self.bus.tasks_changed_for([kind.as_str()]);
            } else {
                self.bus.leases_changed();
            }
            handed_on.push(handed);
        }
        Ok(handed_on)
    }
}

/// Applies one completion inside its run's transaction: the task's kind
/// and the tasks handed on to its executor.
async fn complete_one<C>(
    c: &mut C,
    tx: &mut RunTx,
    completion: &Completion,
    artifacts: &ArtifactServiceClient<Channel>,
    ttl: i64,
    presence: i64,
) -> Result<(String, Vec<pb::Task>)>
where
    C: TaskStore + PhaseStore + ExecutorStore,
{
    let Completion {
        key,
        lease_id,
        output,
        accept,
    } = completion;
    let index = tx.index(&key.phase_id)?;
    let task = c.get_task(key).await?;
    if let Some(task) = &task
        && task.state == task_state::DONE
        && task.lease_id.as_deref() == Some(lease_id.as_str())
        && tx.phase(index)?.attempt == key.attempt
        && tx.state(index)? == PhaseState::Completed
        && same_output(tx.phase(index)?.output_json.as_deref(), output.as_ref())?
    {
        let executor_id = task.executor_id.clone().unwrap_or_default();
        let handed = Engine::handed_before(c, tx, &executor_id, lease_id).await?;
        return Ok((task.kind.clone(), handed));
    }
    let task = Engine::check_held(task, key, lease_id)?;
    if matches!(output, Some(Output::Inline(_)))
        && tx
            .spec(index)?
            .output
            .as_ref()
            .is_some_and(|o| o.schema.is_some())
    {
        return Err(Error::invalid_field(
            "output_content",
            format!(
                "phase {} declares a schema for its output: stage the output so the artifact store checks it, and name it in output",
                key.phase_id
            ),
        ));
    }
    let accepted = match output {
        Some(output) => Some(publish(artifacts.clone(), key, output).await?),
        None => None,
    };
    tx.finish_task(key);
    tx.apply(index, PhaseEvent::Complete, "", None)?;
    tx.set_executor(index, None)?;
    if let Some(output) = &accepted {
        tx.accept_output(index, output)?;
    }
    tx.advance()?;
    let Some(executor_id) = task.executor_id.as_deref() else {
        return Ok((task.kind, Vec::new()));
    };
    let accept = *accept as usize;
    let mut handed = Vec::new();
    for next in tx.queued_now(&task.kind).into_iter().take(accept) {
        tx.load_sources(c, next).await?;
        let phase = tx.phase(next)?;
        let next_lease = handed_lease_id(lease_id, &phase.phase_id, phase.attempt);
        let deadline = now() + ttl;
        tx.lease_queued(next, &next_lease, executor_id, deadline)?;
        handed.push(tx.task_message(next, &next_lease, deadline)?);
    }
    if handed.len() < accept
        && let Some(next) = Engine::first_in_line(c, tx, &task.kind).await?
    {
        let phase = tx.phase(next)?;
        let next_key = TaskKey {
            run_id: phase.run_id.clone(),
            phase_id: phase.phase_id.clone(),
            attempt: phase.attempt,
        };
        let next_lease = handed_lease_id(lease_id, &next_key.phase_id, next_key.attempt);
        let deadline = now() + ttl;
        if c.lease_task(&next_key, &next_lease, executor_id, deadline)
            .await?
            == 1
        {
            tx.start_leased(next, executor_id)?;
            handed.push(tx.task_message(next, &next_lease, deadline)?);
        }
    }
    if !handed.is_empty() {
        // Its stream may sleep while completions keep it busy: the report
        // is a sign of life, so its leases are not taken for an absent
        // executor's.
        let at = now();
        c.refresh_presence(executor_id, at, at - presence).await?;
    }
    Ok((task.kind, handed))
}
