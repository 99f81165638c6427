//! The connection to an Orchestra server: one lazily dialled channel shared
//! by a client per service, so a command that needs no server never dials.

use std::time::Duration;

use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::review_service_client::ReviewServiceClient;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

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

/// A server address as a URL: `http://` is added when no scheme is given
/// (`localhost:50051`); schemes other than http and https are refused.
pub fn server_url(server: &str) -> Result<String> {
    let server = server.trim();
    let Some((scheme, rest)) = server.split_once("://") else {
        return Ok(format!("http://{server}"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" if !rest.is_empty() => Ok(server.to_owned()),
        "http" | "https" => Err(Error::BadServer {
            url: server.to_owned(),
            reason: "it names no host; give one such as http://127.0.0.1:50051".to_owned(),
        }),
        _ => Err(Error::BadServer {
            url: server.to_owned(),
            reason: format!("the scheme {scheme}:// is not spoken here; use http:// or https://"),
        }),
    }
}

/// A channel that dials on first use, so an unreachable server surfaces as
/// UNAVAILABLE from the first call. An `https://` server is reached over
/// TLS (rustls), trusting the system's root certificates; the connection
/// never falls back to plaintext.
fn lazy_channel(server: &str) -> Result<Channel> {
    let url = server_url(server)?;
    let bad = |reason: String| Error::BadServer {
        url: url.clone(),
        reason,
    };
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true);
    if url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_native_roots())
            .map_err(|e| {
                bad(format!(
                    "TLS cannot be set up ({e}); install the system's CA certificates or point $SSL_CERT_FILE at a PEM file of the roots to trust"
                ))
            })?;
    }
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
            server: server_url(server)?,
        })
    }

    /// The server's URL (with the scheme added when none was given).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_without_a_scheme_gets_http() {
        assert_eq!(
            server_url("localhost:50151").ok().as_deref(),
            Some("http://localhost:50151")
        );
        assert_eq!(
            server_url("https://example.org").ok().as_deref(),
            Some("https://example.org")
        );
    }

    #[test]
    fn other_schemes_are_refused() {
        let error = server_url("ftp://x").expect_err("refused");
        assert!(
            error.to_string().contains("use http:// or https://"),
            "{error}"
        );
        assert!(server_url("http://").is_err());
    }
}
