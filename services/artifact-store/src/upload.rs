//! WriteArtifactContent: an artifact whose content arrives in chunks, for
//! content too large for one message. The first message names the artifact
//! as a PutArtifact without content; the chunks are gathered, refused as
//! soon as they pass the configured limit, and then stored exactly as
//! PutArtifact stores content, so validation, idempotency and versioning
//! have one code path.

use futures::{Stream, StreamExt};
use tonic::Status;

use orchestra_kit::error::InvalidArgument as _;
use orchestra_proto::v1::{
    PutArtifactRequest, WriteArtifactContentRequest, WriteArtifactContentResponse,
};

use crate::ArtifactStore;
use crate::error::{Error, Result};

impl ArtifactStore {
    /// Gathers an upload's chunks within the limit and stores them as one
    /// version.
    pub(crate) async fn write_content(
        &self,
        messages: impl Stream<Item = Result<WriteArtifactContentRequest, Status>>,
    ) -> Result<WriteArtifactContentResponse> {
        let mut messages = std::pin::pin!(messages);
        let first = messages
            .next()
            .await
            .ok_or_else(|| Error::invalid_field("artifact", "is required in the first message"))?
            .map_err(|status| self.broken_upload(&status))?;
        let mut header = first
            .artifact
            .ok_or_else(|| Error::invalid_field("artifact", "is required in the first message"))?;
        if !header.content.is_empty() {
            return Err(Error::invalid_field(
                "artifact.content",
                "must be empty; send the content in chunk",
            ));
        }
        let limit = &self.inner.limit;
        let mut content = first.chunk;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|status| self.broken_upload(&status))?;
            if message.artifact.is_some() {
                return Err(Error::invalid_field(
                    "artifact",
                    "is allowed in the first message only",
                ));
            }
            let size = content.len() + message.chunk.len();
            if !limit.allows(size) {
                return Err(Error::ResourceExhausted(too_large(&header, limit, size)));
            }
            content.extend_from_slice(&message.chunk);
        }
        if !limit.allows(content.len()) {
            return Err(Error::ResourceExhausted(too_large(
                &header,
                limit,
                content.len(),
            )));
        }
        header.content = content;
        let stored = self.put(header).await?;
        Ok(WriteArtifactContentResponse {
            artifact: stored.artifact,
            created: stored.created,
        })
    }

    /// Refuses content above the limit, naming the artifact and the limit;
    /// PutArtifact's content may otherwise use the room the message keeps
    /// for its other fields.
    pub(crate) fn check_size(&self, name: &str, size: usize) -> Result<()> {
        let limit = &self.inner.limit;
        if limit.allows(size) {
            return Ok(());
        }
        Err(Error::ResourceExhausted(format!(
            "{}; split it, or raise the limit",
            limit.exceeded(&format!("artifact `{name}`"), size)
        )))
    }

    /// The error for an upload stream that failed before its end: a chunk
    /// above the message limit, or a client that went away.
    fn broken_upload(&self, status: &Status) -> Error {
        if status.code() == tonic::Code::OutOfRange {
            return Error::ResourceExhausted(format!(
                "a chunk is larger than one message may be ({}); send chunks of at most 1 MiB",
                self.inner.limit.describe()
            ));
        }
        Error::invalid_field(
            "chunk",
            format!("the upload broke off: {}", status.message()),
        )
    }
}

/// What an upload above the limit is told: the artifact, its size so far and
/// the limit.
fn too_large(
    header: &PutArtifactRequest,
    limit: &orchestra_kit::limits::MessageLimit,
    size: usize,
) -> String {
    limit
        .exceeded(&format!("artifact `{}`", header.name), size)
        .replace(" is ", " is at least ")
}
