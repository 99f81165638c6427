//! Delivers the scheduler's hand-offs (open a human task) to the review
//! service. Rows stay in the outbox until the review service has accepted
//! them, so neither a restart of the scheduler nor an outage of the review
//! service loses one; the review service's OpenTask is idempotent, so a
//! delivery repeated after a crash opens one task.

use std::time::Duration;

use orchestra_proto::v1 as pb;
use orchestra_proto::v1::review_service_client::ReviewServiceClient;
use prost::Message;
use tonic::transport::Channel;

use crate::engine::Engine;
use crate::engine::run_tx::OPEN_HUMAN_TASK;
use crate::storage::models::OutboxRow;

/// How long to wait before retrying a failed delivery.
fn backoff(attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.clamp(0, 8)).unwrap_or(8);
    Duration::from_millis(200 * 2u64.pow(exponent)).min(Duration::from_secs(30))
}

/// Delivers due hand-offs until the task is aborted.
pub async fn run(engine: Engine, review: ReviewServiceClient<Channel>) {
    let wake = engine.bus().outbox();
    loop {
        let notified = wake.notified();
        match engine.due_outbox(32).await {
            Ok(rows) => {
                for row in rows {
                    deliver(&engine, review.clone(), &row).await;
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the outbox"),
        }
        tokio::select! {
            () = notified => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn deliver(engine: &Engine, mut review: ReviewServiceClient<Channel>, row: &OutboxRow) {
    let result = match row.kind.as_str() {
        OPEN_HUMAN_TASK => match pb::OpenTaskRequest::decode(row.payload.as_slice()) {
            Ok(request) => review
                .open_task(request)
                .await
                .map(drop)
                .map_err(|s| format!("{:?}: {}", s.code(), s.message())),
            Err(e) => Err(format!("undecodable payload: {e}")),
        },
        other => Err(format!("unknown outbox kind {other}")),
    };
    let recorded = match result {
        Ok(()) => engine.outbox_delivered(&row.id).await,
        Err(error) => {
            tracing::warn!(id = %row.id, attempts = row.attempts + 1, %error, "hand-off to review failed; will retry");
            engine
                .outbox_failed(row, backoff(row.attempts), &error)
                .await
        }
    };
    if let Err(error) = recorded {
        tracing::warn!(%error, "cannot record an outbox delivery");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(0), Duration::from_millis(200));
        assert_eq!(backoff(1), Duration::from_millis(400));
        assert_eq!(backoff(20), Duration::from_secs(30));
    }
}
