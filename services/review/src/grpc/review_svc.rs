//! `ReviewService`: unpacks requests, calls the [`Review`] actions, and
//! packs their answers; errors become statuses in `error.rs`.

use std::pin::Pin;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use orchestra_proto::v1::review_service_server::ReviewService;
use orchestra_proto::v1::{
    ClaimTaskRequest, ClaimTaskResponse, CloseTaskRequest, CloseTaskResponse, DecideRequest,
    DecideResponse, DecisionKind, GetTaskRequest, GetTaskResponse, ListInboxRequest,
    ListInboxResponse, OpenTaskRequest, OpenTaskResponse, SubmitInputRequest, SubmitInputResponse,
    WatchInboxRequest, WatchInboxResponse,
};

use crate::Review;
use crate::actions::Verdict;

/// The `ReviewService` handler.
#[derive(Clone)]
pub struct ReviewSvc {
    review: Review,
}

impl ReviewSvc {
    /// A handler over the service's state.
    pub fn new(review: Review) -> Self {
        ReviewSvc { review }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchInboxResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ReviewService for ReviewSvc {
    async fn open_task(
        &self,
        request: Request<OpenTaskRequest>,
    ) -> Result<Response<OpenTaskResponse>, Status> {
        let task = self.review.open_task(request.into_inner()).await?;
        Ok(Response::new(OpenTaskResponse { task: Some(task) }))
    }

    async fn list_inbox(
        &self,
        request: Request<ListInboxRequest>,
    ) -> Result<Response<ListInboxResponse>, Status> {
        let request = request.into_inner();
        let run_id = Some(request.run_id.as_str()).filter(|id| !id.is_empty());
        let tasks = self
            .review
            .list_inbox(request.include_closed, run_id)
            .await?;
        Ok(Response::new(ListInboxResponse { tasks }))
    }

    type WatchInboxStream = WatchStream;

    async fn watch_inbox(
        &self,
        _request: Request<WatchInboxRequest>,
    ) -> Result<Response<Self::WatchInboxStream>, Status> {
        // Subscribe before reading the open set, so no change falls between.
        let changes = self.review.inbox.subscribe();
        let open = self.review.list_inbox(false, None).await?;
        let (sender, receiver) = mpsc::channel(64);
        tokio::spawn(forward_inbox(self.review.clone(), open, changes, sender));
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn get_task(
        &self,
        request: Request<GetTaskRequest>,
    ) -> Result<Response<GetTaskResponse>, Status> {
        let task = self.review.get_task(&request.into_inner().task_id).await?;
        Ok(Response::new(GetTaskResponse { task: Some(task) }))
    }

    async fn claim_task(
        &self,
        request: Request<ClaimTaskRequest>,
    ) -> Result<Response<ClaimTaskResponse>, Status> {
        let request = request.into_inner();
        let task = self
            .review
            .claim_task(&request.task_id, &request.person)
            .await?;
        Ok(Response::new(ClaimTaskResponse { task: Some(task) }))
    }

    async fn submit_input(
        &self,
        request: Request<SubmitInputRequest>,
    ) -> Result<Response<SubmitInputResponse>, Status> {
        let request = request.into_inner();
        let task = self
            .review
            .submit_input(&request.task_id, &request.content_json, &request.person)
            .await?;
        Ok(Response::new(SubmitInputResponse { task: Some(task) }))
    }

    async fn decide(
        &self,
        request: Request<DecideRequest>,
    ) -> Result<Response<DecideResponse>, Status> {
        let request = request.into_inner();
        let verdict = Verdict {
            kind: DecisionKind::try_from(request.kind).unwrap_or(DecisionKind::Unspecified),
            comment: request.comment,
            selected: request.selected,
            retry_phases: request.retry_phases,
            person: request.person,
        };
        let task = self.review.decide(&request.task_id, verdict).await?;
        Ok(Response::new(DecideResponse { task: Some(task) }))
    }

    async fn close_task(
        &self,
        request: Request<CloseTaskRequest>,
    ) -> Result<Response<CloseTaskResponse>, Status> {
        let request = request.into_inner();
        let task = self
            .review
            .close_task(&request.task_id, &request.reason)
            .await?;
        Ok(Response::new(CloseTaskResponse { task: Some(task) }))
    }
}

/// Sends the open set, then every change, until the watcher goes away. A
/// watcher that fell behind the broadcast is sent the open set again.
async fn forward_inbox(
    review: Review,
    open: Vec<orchestra_proto::v1::HumanTask>,
    mut changes: broadcast::Receiver<orchestra_proto::v1::HumanTask>,
    sender: mpsc::Sender<Result<WatchInboxResponse, Status>>,
) {
    let send_all = async |tasks: Vec<orchestra_proto::v1::HumanTask>| {
        for task in tasks {
            let message = WatchInboxResponse { task: Some(task) };
            if sender.send(Ok(message)).await.is_err() {
                return false;
            }
        }
        true
    };
    if !send_all(open).await {
        return;
    }
    loop {
        let change = tokio::select! {
            change = changes.recv() => change,
            () = sender.closed() => return,
        };
        let batch = match change {
            Ok(task) => vec![task],
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "inbox watcher lagged; resending the open set");
                match review.list_inbox(false, None).await {
                    Ok(open) => open,
                    Err(error) => {
                        let _ = sender.send(Err(Status::from(error))).await;
                        return;
                    }
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if !send_all(batch).await {
            return;
        }
    }
}
