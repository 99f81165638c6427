//! The outbox dispatcher: delivers stored resolutions to the scheduler's
//! `TaskService.ResolveHumanPhase`, oldest first, until each is accepted.
//!
//! A message is stored in the same transaction as the change it reports, so
//! it survives a crash or a scheduler outage; any process that opens the
//! database delivers what is pending. Retries back off exponentially; an
//! answer no retry can change (the scheduler refuses the request itself) is
//! recorded and the message set aside, so it does not block those after it.

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::sync::{Notify, watch};
use tonic::Code;
use tonic::transport::Channel;

use orchestra_db::Db;
use orchestra_db::time::now_micros;
use orchestra_proto::v1::ResolveHumanPhaseRequest;
use orchestra_proto::v1::task_service_client::TaskServiceClient;

use crate::Result;
use crate::storage::outbox;

/// The longest the dispatcher sleeps without looking at the table.
const POLL: Duration = Duration::from_secs(1);
/// The wait after the first failed delivery; it doubles with each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between deliveries of one message.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The wait before the next try of a message that has failed `failures` times.
pub fn backoff(failures: i32) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// True for answers a retry cannot change.
fn is_permanent(code: Code) -> bool {
    matches!(
        code,
        Code::FailedPrecondition | Code::NotFound | Code::InvalidArgument
    )
}

/// Delivers the outbox; one per process.
pub(crate) struct Dispatcher {
    pub(crate) db: Db,
    pub(crate) scheduler: TaskServiceClient<Channel>,
    pub(crate) wake: Arc<Notify>,
}

impl Dispatcher {
    /// Delivers until `shutdown` turns true or its sender is dropped.
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self.deliver_next().await {
                Ok(wait) => wait,
                Err(error) => {
                    tracing::warn!(%error, "outbox: cannot read the outbox");
                    POLL
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait.min(POLL)) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::debug!("outbox dispatcher stopped");
    }

    /// Tries the oldest pending message if it is due, and says how long to
    /// wait before looking again (zero: look again now).
    async fn deliver_next(&mut self) -> Result<Duration> {
        let Some(row) = outbox::next_pending(&self.db).await? else {
            return Ok(POLL);
        };
        let now = now_micros();
        if row.next_attempt_at > now {
            let micros = u64::try_from(row.next_attempt_at - now).unwrap_or(0);
            return Ok(Duration::from_micros(micros));
        }
        let request = match ResolveHumanPhaseRequest::decode(row.payload.as_slice()) {
            Ok(request) => request,
            Err(error) => {
                let error = format!("undecodable payload: {error}");
                tracing::warn!(id = row.id, task = %row.task_id, %error, "outbox: giving up");
                outbox::give_up(&self.db, row.id, &error, now).await?;
                return Ok(Duration::ZERO);
            }
        };
        let resolution = request.resolution;
        match self.scheduler.resolve_human_phase(request).await {
            Ok(_) => {
                outbox::mark_delivered(&self.db, row.id, now_micros()).await?;
                tracing::info!(id = row.id, task = %row.task_id, resolution, "outbox: delivered");
                Ok(Duration::ZERO)
            }
            Err(status) if is_permanent(status.code()) => {
                let error = format!("{:?}: {}", status.code(), status.message());
                tracing::warn!(id = row.id, task = %row.task_id, %error,
                    "outbox: the scheduler refused the resolution; not retrying");
                outbox::give_up(&self.db, row.id, &error, now_micros()).await?;
                Ok(Duration::ZERO)
            }
            Err(status) => {
                let error = format!("{:?}: {}", status.code(), status.message());
                let wait = backoff(row.attempts + 1);
                let next = now_micros() + i64::try_from(wait.as_micros()).unwrap_or(i64::MAX);
                tracing::warn!(id = row.id, task = %row.task_id, attempts = row.attempts + 1,
                    retry_in_ms = wait.as_millis(), %error, "outbox: delivery failed");
                outbox::record_failure(&self.db, row.id, &error, next).await?;
                Ok(wait)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_200ms_to_30s() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(4), Duration::from_millis(1600));
        assert_eq!(backoff(8), Duration::from_millis(25_600));
        assert_eq!(backoff(9), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
    }

    #[test]
    fn refusals_are_permanent_and_outages_are_not() {
        assert!(is_permanent(Code::FailedPrecondition));
        assert!(is_permanent(Code::NotFound));
        assert!(!is_permanent(Code::Unavailable));
        assert!(!is_permanent(Code::Internal));
    }
}
