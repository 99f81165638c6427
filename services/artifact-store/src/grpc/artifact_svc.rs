//! `ArtifactService`: each method forwards to the store and turns its error
//! into a status through the one mapping in [`crate::error`].

use std::pin::Pin;

use futures::{Stream, StreamExt};
use orchestra_proto::v1::artifact_service_server::ArtifactService;
use orchestra_proto::v1::{
    DiffArtifactsRequest, DiffArtifactsResponse, GetArtifactHistoryRequest,
    GetArtifactHistoryResponse, GetArtifactRequest, GetArtifactResponse, ListArtifactsRequest,
    ListArtifactsResponse, PublishArtifactRequest, PublishArtifactResponse, PutArtifactRequest,
    PutArtifactResponse, ReadArtifactContentRequest, ReadArtifactContentResponse,
    StageArtifactRequest, StageArtifactResponse,
};
use tonic::{Request, Response, Status};

use crate::ArtifactStore;

/// The handler of `orchestra.v1.ArtifactService`.
#[derive(Clone)]
pub struct ArtifactSvc {
    store: ArtifactStore,
}

impl ArtifactSvc {
    /// A handler serving the given store.
    pub fn new(store: ArtifactStore) -> Self {
        ArtifactSvc { store }
    }
}

/// The chunks of one ReadArtifactContent call.
pub type ContentChunks =
    Pin<Box<dyn Stream<Item = Result<ReadArtifactContentResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ArtifactService for ArtifactSvc {
    type ReadArtifactContentStream = ContentChunks;

    async fn put_artifact(
        &self,
        request: Request<PutArtifactRequest>,
    ) -> Result<Response<PutArtifactResponse>, Status> {
        Ok(Response::new(self.store.put(request.into_inner()).await?))
    }

    async fn get_artifact(
        &self,
        request: Request<GetArtifactRequest>,
    ) -> Result<Response<GetArtifactResponse>, Status> {
        Ok(Response::new(self.store.get(request.into_inner()).await?))
    }

    async fn read_artifact_content(
        &self,
        request: Request<ReadArtifactContentRequest>,
    ) -> Result<Response<Self::ReadArtifactContentStream>, Status> {
        let chunks = self.store.read_content(request.into_inner()).await?;
        let responses = chunks.map(|chunk| {
            chunk
                .map(|chunk| ReadArtifactContentResponse { chunk })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn list_artifacts(
        &self,
        request: Request<ListArtifactsRequest>,
    ) -> Result<Response<ListArtifactsResponse>, Status> {
        Ok(Response::new(self.store.list(request.into_inner()).await?))
    }

    async fn get_artifact_history(
        &self,
        request: Request<GetArtifactHistoryRequest>,
    ) -> Result<Response<GetArtifactHistoryResponse>, Status> {
        Ok(Response::new(
            self.store.history(request.into_inner()).await?,
        ))
    }

    async fn write_artifact_content(
        &self,
        request: Request<tonic::Streaming<orchestra_proto::v1::WriteArtifactContentRequest>>,
    ) -> Result<Response<orchestra_proto::v1::WriteArtifactContentResponse>, Status> {
        Ok(Response::new(
            self.store.write_content(request.into_inner()).await?,
        ))
    }

    async fn diff_artifacts(
        &self,
        request: Request<DiffArtifactsRequest>,
    ) -> Result<Response<DiffArtifactsResponse>, Status> {
        Ok(Response::new(self.store.diff(request.into_inner()).await?))
    }

    async fn stage_artifact(
        &self,
        request: Request<StageArtifactRequest>,
    ) -> Result<Response<StageArtifactResponse>, Status> {
        Ok(Response::new(self.store.stage(request.into_inner()).await?))
    }

    async fn publish_artifact(
        &self,
        request: Request<PublishArtifactRequest>,
    ) -> Result<Response<PublishArtifactResponse>, Status> {
        Ok(Response::new(
            self.store.publish(request.into_inner()).await?,
        ))
    }
}
