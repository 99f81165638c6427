//! `ProviderService`: which LLM providers this executor can call.

use std::sync::Arc;

use orchestra_proto::v1 as pb;
use orchestra_proto::v1::provider_service_server::ProviderService;
use tonic::{Request, Response, Status};

use crate::providers::ProviderRegistry;

/// The ProviderService handler.
#[derive(Clone)]
pub struct ProviderSvc {
    providers: Arc<ProviderRegistry>,
}

impl ProviderSvc {
    /// A handler over the executor's providers.
    pub fn new(providers: Arc<ProviderRegistry>) -> Self {
        ProviderSvc { providers }
    }
}

#[tonic::async_trait]
impl ProviderService for ProviderSvc {
    async fn list_providers(
        &self,
        _request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let providers = self
            .providers
            .infos()
            .into_iter()
            .map(|info| pb::Provider {
                name: info.name,
                label: info.label,
                offline: info.offline,
                models: info.models,
            })
            .collect();
        Ok(Response::new(pb::ListProvidersResponse { providers }))
    }
}
