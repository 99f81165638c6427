//! The connection to an Orchestra server: one lazily dialled channel shared
//! by a client per service, so a command that needs no server never dials.

use std::time::Duration;

use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::review_service_client::ReviewServiceClient;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};

/// Responses up to this size are accepted: review tasks inline their
/// artifacts, which may exceed tonic's default of 4 MiB.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A channel to one server and a client per service on it.
#[derive(Debug, Clone)]
pub struct Connection {
    channel: Channel,
    server: String,
}

impl Connection {
    /// Prepares a channel to `server`; it dials on first use, so an
    /// unreachable server surfaces as UNAVAILABLE from the first call.
    pub fn new(server: &str) -> Result<Connection> {
        let endpoint = Endpoint::from_shared(server.to_owned())
            .map_err(|e| Error::BadServer {
                url: server.to_owned(),
                reason: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true);
        Ok(Connection {
            channel: endpoint.connect_lazy(),
            server: server.to_owned(),
        })
    }

    /// The server's URL as given.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A TemplateService client.
    pub fn templates(&self) -> TemplateServiceClient<Channel> {
        TemplateServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// A RunService client.
    pub fn runs(&self) -> RunServiceClient<Channel> {
        RunServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// A ReviewService client.
    pub fn review(&self) -> ReviewServiceClient<Channel> {
        ReviewServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// An ArtifactService client.
    pub fn artifacts(&self) -> ArtifactServiceClient<Channel> {
        ArtifactServiceClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }
}
