//! The review service's use of the artifact store: storing what people
//! submit and decide, and reading what they review.

use tonic::transport::Channel;

use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::{
    Actor, ActorKind, ArtifactRef, AttemptKey, DiffArtifactsRequest, GetArtifactRequest, HumanTask,
    PutArtifactRequest, ReviewDiff,
};

use crate::{Error, Result};

/// How errors name this peer.
const PEER: &str = "artifact store";

/// A client of `ArtifactService`. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Artifacts {
    client: ArtifactServiceClient<Channel>,
}

impl Artifacts {
    /// A client over a (lazy) channel, sending and accepting messages up
    /// to `max_message_bytes`.
    pub(crate) fn new(channel: Channel, max_message_bytes: usize) -> Self {
        Artifacts {
            client: ArtifactServiceClient::new(channel)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        }
    }

    /// Stores a person's JSON output as the attempt's artifact `name`. The
    /// store is idempotent on (key, name): a second put returns the first.
    pub(crate) async fn put_json(
        &self,
        key: AttemptKey,
        name: &str,
        content: Vec<u8>,
        schema_json: &str,
        person: &str,
    ) -> Result<ArtifactRef> {
        let request = PutArtifactRequest {
            key: Some(key),
            name: name.to_owned(),
            media_type: "application/json".to_owned(),
            content,
            schema_json: schema_json.to_owned(),
            created_by: Some(Actor {
                kind: ActorKind::Person as i32,
                id: person.to_owned(),
            }),
        };
        let response = self
            .client
            .clone()
            .put_artifact(request)
            .await
            .map_err(Error::peer(PEER))?
            .into_inner();
        response
            .artifact
            .and_then(|version| version.r#ref)
            .ok_or_else(|| Error::Internal(format!("{PEER}: PutArtifact answered without a ref")))
    }

    /// Fills a review task's item contents and the diffs between every two
    /// items that are versions of the same output name (the candidates).
    pub(crate) async fn fill_review(&self, task: &mut HumanTask) -> Result<()> {
        let mut client = self.client.clone();
        for item in &mut task.items {
            let Some(artifact) = &item.artifact else {
                continue;
            };
            let request = GetArtifactRequest {
                artifact_id: artifact.artifact_id.clone(),
                version: artifact.version,
                include_content: true,
            };
            let version = client
                .get_artifact(request)
                .await
                .map_err(Error::peer(PEER))?
                .into_inner()
                .artifact;
            if let Some(version) = version.filter(|v| v.content_inlined) {
                // Binary content is not shown as text; the ref still is.
                item.content = String::from_utf8(version.content).unwrap_or_default();
            }
        }
        let mut diffs = Vec::new();
        for (i, left) in task.items.iter().enumerate() {
            for right in &task.items[i + 1..] {
                let (Some(l), Some(r)) = (&left.artifact, &right.artifact) else {
                    continue;
                };
                if l.name != r.name {
                    continue;
                }
                let request = DiffArtifactsRequest {
                    left: Some(l.clone()),
                    right: Some(r.clone()),
                };
                let diff = client
                    .diff_artifacts(request)
                    .await
                    .map_err(Error::peer(PEER))?
                    .into_inner();
                diffs.push(ReviewDiff {
                    left: left.name.clone(),
                    right: right.name.clone(),
                    unified: diff.unified,
                    operations: diff.operations,
                });
            }
        }
        task.diffs = diffs;
        Ok(())
    }
}
