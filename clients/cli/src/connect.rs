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

/// Channels to the services (all on one server unless the review service
/// or the artifact store are named apart) and a client per service.
#[derive(Debug, Clone)]
pub struct Connection {
    channel: Channel,
    review: Channel,
    artifacts: Channel,
    server: String,
}

/// A channel that dials on first use, so an unreachable server surfaces as
/// UNAVAILABLE from the first call.
fn lazy_channel(server: &str) -> Result<Channel> {
    let endpoint = Endpoint::from_shared(server.to_owned())
        .map_err(|e| Error::BadServer {
            url: server.to_owned(),
            reason: e.to_string(),
        })?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true);
    Ok(endpoint.connect_lazy())
}

impl Connection {
    /// Prepares channels to `server` for every service.
    pub fn new(server: &str) -> Result<Connection> {
        Connection::split(server, None, None)
    }

    /// Prepares channels to `server`, with the review service and the
    /// artifact store elsewhere when given.
    pub fn split(
        server: &str,
        review: Option<&str>,
        artifacts: Option<&str>,
    ) -> Result<Connection> {
        let channel = lazy_channel(server)?;
        let apart = |url: Option<&str>| match url {
            Some(url) => lazy_channel(url),
            None => Ok(channel.clone()),
        };
        Ok(Connection {
            review: apart(review)?,
            artifacts: apart(artifacts)?,
            channel,
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
        ReviewServiceClient::new(self.review.clone()).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// An ArtifactService client.
    pub fn artifacts(&self) -> ArtifactServiceClient<Channel> {
        ArtifactServiceClient::new(self.artifacts.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }
}
