//! Delivers stored resolutions (forms submitted, decisions made) to the
//! scheduler's `TaskService.ResolveHumanPhase`, through the shared
//! dispatcher of [`orchestra_db::outbox`]: in order, until each is accepted,
//! so none is lost while the scheduler is down. The scheduler applies a
//! resolution once, however often it arrives.
//!
//! The dispatcher is woken after each commit that stores a resolution and
//! otherwise looks only at the default safety sweep
//! ([`orchestra_db::outbox::DEFAULT_SWEEP`]), so an idle review service
//! sends its database nothing in between.

use std::future::Future;
use std::sync::Arc;

use prost::Message as _;
use tokio::sync::Notify;
use tonic::transport::Channel;

use orchestra_db::Db;
use orchestra_db::outbox::{Deliver, Delivery, Dispatcher, Message};
use orchestra_kit::status::{describe, is_permanent};
use orchestra_proto::v1::ResolveHumanPhaseRequest;
use orchestra_proto::v1::task_service_client::TaskServiceClient;

use crate::storage::tasks::RESOLVE_HUMAN_PHASE;

/// Delivers until `stop` resolves.
pub(crate) async fn run(
    db: Db,
    scheduler: TaskServiceClient<Channel>,
    wake: Arc<Notify>,
    stop: impl Future<Output = ()> + Send,
) {
    Dispatcher::new(db, ToScheduler { scheduler }, wake, "scheduler")
        .run(stop)
        .await;
}

/// The scheduler, as the outbox's receiver.
struct ToScheduler {
    scheduler: TaskServiceClient<Channel>,
}

impl Deliver for ToScheduler {
    async fn deliver(&self, message: &Message) -> Delivery {
        if message.kind != RESOLVE_HUMAN_PHASE {
            return Delivery::GiveUp(format!("unknown outbox kind {}", message.kind));
        }
        let request = match ResolveHumanPhaseRequest::decode(message.payload.as_slice()) {
            Ok(request) => request,
            Err(error) => return Delivery::GiveUp(format!("undecodable payload: {error}")),
        };
        match self.scheduler.clone().resolve_human_phase(request).await {
            Ok(_) => Delivery::Delivered,
            Err(status) => Delivery::failed(is_permanent(status.code()), describe(&status)),
        }
    }
}
