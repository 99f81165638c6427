//! The lease loop: hold a `Lease` stream open to the scheduler for some
//! phase kinds, run each task it pushes (at most `slots` at once; the
//! scheduler counts, per executor id), keep each
//! lease alive with heartbeats, and report the outcome. A lost stream is
//! reopened with backoff; a lost lease stops its attempt.

use std::collections::VecDeque;
use std::time::Duration;

use orchestra_proto::v1 as pb;
use orchestra_proto::v1::task_service_client::TaskServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::attempt::{self, AttemptContext, Output, Produced};
use crate::error::AttemptFailure;

/// How long a call is retried while its service is unavailable.
const REPORT_PATIENCE: Duration = Duration::from_secs(120);

/// Leases and runs tasks of the given kinds until its
/// [`orchestra_kit::Background`] stops it.
pub async fn run(ctx: AttemptContext, executor_id: String, slots: u32, kinds: Vec<pb::PhaseKind>) {
    let mut backoff = Duration::from_millis(200);
    let kinds: Vec<i32> = kinds.into_iter().map(i32::from).collect();
    let mut reconnecting = false;
    loop {
        let request = pb::LeaseRequest {
            executor_id: executor_id.clone(),
            slots,
            kinds: kinds.clone(),
        };
        match ctx.tasks.clone().lease(request).await {
            Ok(response) => {
                // The first stream is routine (and `orchestra up` prints its
                // own banner); a reopened one is news to an operator.
                if reconnecting {
                    tracing::info!(%executor_id, slots, "lease stream reopened");
                } else {
                    tracing::debug!(%executor_id, slots, "leasing tasks");
                }
                reconnecting = true;
                backoff = Duration::from_millis(200);
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(pb::LeaseResponse { task: Some(task) })) => {
                            tokio::spawn(run_task(ctx.clone(), task));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(status) if status.code() == Code::Unavailable => {
                            // The scheduler's database is away: a pause.
                            // Running attempts go on; reports wait for it.
                            tracing::info!(
                                message = status.message(),
                                "the scheduler cannot lease now; reconnecting"
                            );
                            break;
                        }
                        Err(status) => {
                            tracing::warn!(message = status.message(), "lease stream broke");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::warn!(
                    message = status.message(),
                    "cannot open a lease stream; retrying"
                );
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Runs one task under its lease and reports how it ended, logging under
/// a span that names the attempt; then, in the same slot, the tasks the
/// scheduler handed on with the completion.
pub async fn run_task(ctx: AttemptContext, task: pb::Task) {
    let mut slot = VecDeque::from([task]);
    while let Some(task) = slot.pop_front() {
        let Some(key) = task.key.clone() else {
            continue;
        };
        let span = tracing::info_span!("attempt", run = %key.run_id, phase = %key.phase_id, attempt = key.attempt);
        // A span entered with a guard would leak into whatever else this
        // thread polls across the awaits; instrumenting the future does not.
        let next = tracing::Instrument::instrument(run_leased(&ctx, task, key), span).await;
        slot.extend(next);
    }
}

/// Runs one leased task and reports how it ended; returns the tasks handed
/// on with its completion.
async fn run_leased(ctx: &AttemptContext, task: pb::Task, key: pb::AttemptKey) -> Vec<pb::Task> {
    let heartbeat = heartbeat_until_lost(ctx.tasks.clone(), &task);
    let timeout = match task.timeout_ms {
        ms if ms > 0 => Duration::from_millis(ms as u64),
        _ => Duration::from_secs(24 * 3600),
    };
    let outcome = tokio::select! {
        outcome = tokio::time::timeout(timeout, attempt::run(ctx, &task)) => outcome,
        () = heartbeat => {
            tracing::warn!("lease lost; abandoning the attempt");
            return Vec::new();
        }
    };
    let outcome = outcome.unwrap_or_else(|_| {
        Err(AttemptFailure::transient(format!(
            "timed out after {:.1}s",
            timeout.as_secs_f64()
        )))
    });
    // The slot this attempt held is free; the scheduler may fill it at once
    // with a phase this completion readied.
    report_outcome(ctx.tasks.clone(), &task, key, outcome).await
}

/// Heartbeats at a third of the lease's remaining time; returns once the
/// scheduler says the lease is gone.
async fn heartbeat_until_lost(mut tasks: TaskServiceClient<Channel>, task: &pb::Task) {
    let remaining = |deadline: Option<&orchestra_proto::Timestamp>| {
        let deadline = orchestra_kit::time::micros(deadline);
        let now = orchestra_kit::time::now_micros();
        Duration::from_micros(u64::try_from((deadline - now).max(0)).unwrap_or(0))
    };
    let mut interval = (remaining(task.lease_deadline.as_ref()) / 3).max(Duration::from_millis(50));
    let request = pb::HeartbeatRequest {
        key: task.key.clone(),
        lease_id: task.lease_id.clone(),
    };
    loop {
        tokio::time::sleep(interval).await;
        match tasks.heartbeat(request.clone()).await {
            Ok(response) => {
                let left = remaining(response.get_ref().lease_deadline.as_ref());
                interval = (left / 3).max(Duration::from_millis(50));
            }
            Err(status)
                if status.code() == Code::FailedPrecondition || status.code() == Code::NotFound =>
            {
                return;
            }
            Err(status) => {
                tracing::debug!(message = status.message(), "heartbeat failed; retrying");
                interval = Duration::from_millis(200);
            }
        }
    }
}

/// Reports how an attempt ended; returns the tasks the scheduler handed
/// on with a completion, to run in the slot the attempt held.
async fn report_outcome(
    tasks: TaskServiceClient<Channel>,
    task: &pb::Task,
    key: pb::AttemptKey,
    outcome: Result<Produced, AttemptFailure>,
) -> Vec<pb::Task> {
    match outcome {
        Ok(produced) => {
            let (output, output_content) = match produced.output {
                Some(Output::Staged(reference)) => (Some(reference), None),
                Some(Output::Inline(content)) => (None, Some(content)),
                None => (None, None),
            };
            let request = pb::CompleteTaskRequest {
                key: Some(key),
                lease_id: task.lease_id.clone(),
                output,
                usage: produced.usage,
                accept_tasks: 1,
                output_content,
            };
            let result = patiently(|| {
                let mut tasks = tasks.clone();
                let request = request.clone();
                async move { tasks.complete_task(request).await }
            })
            .await;
            match result {
                Ok(response) => response.into_inner().tasks,
                Err(status) => {
                    tracing::warn!(message = status.message(), "completion not accepted");
                    Vec::new()
                }
            }
        }
        Err(failure) => {
            tracing::info!(error = %failure.message, retryable = failure.retryable, "attempt failed");
            let request = pb::FailTaskRequest {
                key: Some(key),
                lease_id: task.lease_id.clone(),
                error: failure.message,
                retryable: failure.retryable,
                violations: failure.violations,
                raw_output: failure.raw_output.map(|r| *r),
            };
            let result = patiently(|| {
                let mut tasks = tasks.clone();
                let request = request.clone();
                async move { tasks.fail_task(request).await.map(drop) }
            })
            .await;
            if let Err(status) = result {
                tracing::warn!(message = status.message(), "failure report not accepted");
            }
            Vec::new()
        }
    }
}

/// Retries a call while its service is UNAVAILABLE (restarting, or its
/// database away), so an outage pauses an attempt instead of failing it and
/// a finished attempt's report is not lost; stops on any other answer. An
/// attempt whose lease is lost meanwhile is abandoned by its heartbeat.
pub(crate) async fn patiently<T, F, Fut>(mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Status>>,
{
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        match call().await {
            Err(status)
                if status.code() == Code::Unavailable && started.elapsed() < REPORT_PATIENCE =>
            {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}
