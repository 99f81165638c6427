//! Delivers the scheduler's hand-offs to the review service: open the task
//! of a human phase, close one the run no longer needs. The messages are
//! stored with the run change that causes them and delivered by the shared
//! dispatcher of [`orchestra_db::outbox`]; both receiving RPCs are
//! idempotent, so a delivery repeated after a crash changes nothing.
//!
//! When the review service accepts a review task, the scheduler marks the
//! phase ready for review itself: nothing has to come back.

use std::future::Future;

use orchestra_db::outbox::{Deliver, Delivery, Dispatcher, Message};
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::review_service_client::ReviewServiceClient;
use prost::Message as _;
use tonic::transport::Channel;

use crate::engine::Engine;
use crate::engine::run_tx::{CLOSE_HUMAN_TASK, OPEN_HUMAN_TASK};
use crate::storage::tasks::TaskKey;

/// Delivers hand-offs until `stop` resolves.
pub async fn run(
    engine: Engine,
    review: ReviewServiceClient<Channel>,
    stop: impl Future<Output = ()> + Send,
) {
    let wake = engine.bus().outbox();
    // The scheduler's one safety sweep (ORCHESTRA_SCHEDULER_POLL_INTERVAL_MS):
    // other replicas' hand-offs arrive as wake-ups by LISTEN/NOTIFY too.
    let sweep = engine.bus().sweep_interval();
    let db = engine.db().clone();
    Dispatcher::new(db, ToReview { engine, review }, wake, "review")
        .sweep_every(sweep)
        .run(stop)
        .await;
}

/// The review service, as the outbox's receiver.
struct ToReview {
    engine: Engine,
    review: ReviewServiceClient<Channel>,
}

impl Deliver for ToReview {
    async fn deliver(&self, message: &Message) -> Delivery {
        match message.kind.as_str() {
            OPEN_HUMAN_TASK => self.open(message).await,
            CLOSE_HUMAN_TASK => self.close(message).await,
            other => Delivery::GiveUp(format!("unknown outbox kind {other}")),
        }
    }
}

impl ToReview {
    async fn open(&self, message: &Message) -> Delivery {
        let request = match pb::OpenTaskRequest::decode(message.payload.as_slice()) {
            Ok(request) => request,
            Err(error) => return Delivery::GiveUp(format!("undecodable payload: {error}")),
        };
        let is_review = request.kind == pb::HumanTaskKind::Review as i32;
        let key = request.key.clone().unwrap_or_default();
        if let Err(status) = self.review.clone().open_task(request).await {
            return refused(&status);
        }
        if !is_review {
            return Delivery::Delivered;
        }
        let key = TaskKey {
            run_id: key.run_id,
            phase_id: key.phase_id,
            attempt: key.attempt,
        };
        match self.engine.review_opened(key).await {
            Ok(()) => Delivery::Delivered,
            // Delivered again later: OpenTask returns the task it opened.
            Err(error) => Delivery::Retry(format!("cannot mark the review open: {error}")),
        }
    }

    async fn close(&self, message: &Message) -> Delivery {
        let request = match pb::CloseTaskRequest::decode(message.payload.as_slice()) {
            Ok(request) => request,
            Err(error) => return Delivery::GiveUp(format!("undecodable payload: {error}")),
        };
        match self.review.clone().close_task(request).await {
            Ok(_) => Delivery::Delivered,
            Err(status) => refused(&status),
        }
    }
}

fn refused(status: &tonic::Status) -> Delivery {
    Delivery::failed(
        orchestra_kit::status::is_permanent(status.code()),
        orchestra_kit::status::describe(status),
    )
}
