//! An accepted attempt's output: how its completion names it, how a
//! repeated completion is recognised, and its publication as a version in
//! the artifact store, which happens under the run's lock so that only an
//! attempt whose lease is live gets a version.

use orchestra_kit::error::InvalidArgument as _;
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use sha2::Digest as _;
use tonic::Code;
use tonic::transport::Channel;

use crate::convert::parse_ref;
use crate::error::{Error, Result};
use crate::storage::tasks::TaskKey;

/// An attempt's output, as its completion reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Staged in the artifact store before the report (an output with a
    /// schema, or a large one).
    Staged(pb::ArtifactRef),
    /// Sent with the report: stored and published in one step, saving the
    /// executor a staging round trip per phase.
    Inline(pb::PutArtifactRequest),
}

impl Output {
    fn name(&self) -> &str {
        match self {
            Output::Staged(reference) => &reference.name,
            Output::Inline(content) => &content.name,
        }
    }
}

/// Says whether a repeated completion names the output already accepted:
/// the same artifact, attempt and content, whatever its version number
/// (the executor reports the staged output, version 0, or the content
/// itself; the phase keeps the published version).
pub(super) fn same_output(accepted: Option<&str>, reported: Option<&Output>) -> Result<bool> {
    let accepted = accepted.map(parse_ref).transpose()?;
    Ok(match (accepted, reported) {
        (None, None) => true,
        (Some(accepted), Some(Output::Staged(reported))) => {
            let unnumbered = |r: &pb::ArtifactRef| pb::ArtifactRef {
                version: 0,
                ..r.clone()
            };
            unnumbered(&accepted) == unnumbered(reported)
        }
        (Some(accepted), Some(Output::Inline(content))) => {
            let key = content.key.clone().unwrap_or_default();
            accepted.run_id == key.run_id
                && accepted.phase_id == key.phase_id
                && accepted.attempt == key.attempt
                && accepted.name == content.name
                && accepted.media_type == content.media_type
                && accepted.sha256 == hex::encode(sha2::Sha256::digest(&content.content))
        }
        _ => false,
    })
}

/// Publishes an accepted attempt's output as a version of its artifact
/// (idempotent in the artifact store); the version it became.
pub(super) async fn publish(
    mut artifacts: ArtifactServiceClient<Channel>,
    key: &TaskKey,
    output: &Output,
) -> Result<pb::ArtifactRef> {
    let request = pb::PublishArtifactRequest {
        key: Some(pb::AttemptKey {
            run_id: key.run_id.clone(),
            phase_id: key.phase_id.clone(),
            attempt: key.attempt,
        }),
        name: output.name().to_owned(),
        content: match output {
            Output::Staged(_) => None,
            Output::Inline(content) => Some(content.clone()),
        },
    };
    let field = match output {
        Output::Staged(_) => "output.name",
        Output::Inline(_) => "output_content",
    };
    match artifacts.publish_artifact(request).await {
        Ok(response) => response
            .into_inner()
            .artifact
            .and_then(|a| a.r#ref)
            .ok_or_else(|| Error::Unavailable("the artifact store published no version".into())),
        Err(status) if status.code() == Code::NotFound => Err(Error::FailedPrecondition(format!(
            "{}; store the output under this task's key before completing",
            status.message()
        ))),
        Err(status) if status.code() == Code::InvalidArgument => {
            Err(Error::invalid_field(field, status.message().to_owned()))
        }
        Err(status) if status.code() == Code::AlreadyExists => {
            Err(Error::FailedPrecondition(format!(
                "{}; a repeated completion must send the same output",
                status.message()
            )))
        }
        Err(status) => Err(Error::Unavailable(format!(
            "cannot publish the output in the artifact store ({}); report again",
            status.message()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::ref_json;

    fn reference(version: i32) -> pb::ArtifactRef {
        pb::ArtifactRef {
            artifact_id: "a1".into(),
            version,
            name: "out".into(),
            run_id: "r1".into(),
            phase_id: "p".into(),
            attempt: 2,
            media_type: "application/json".into(),
            sha256: hex::encode(sha2::Sha256::digest(b"{}")),
            ..Default::default()
        }
    }

    fn inline(content: &[u8]) -> Output {
        Output::Inline(pb::PutArtifactRequest {
            key: Some(pb::AttemptKey {
                run_id: "r1".into(),
                phase_id: "p".into(),
                attempt: 2,
            }),
            name: "out".into(),
            media_type: "application/json".into(),
            content: content.to_vec(),
            ..Default::default()
        })
    }

    #[test]
    fn a_repeat_names_the_accepted_output_whatever_its_number() {
        let accepted = ref_json(&reference(3));
        let staged = |r| Some(Output::Staged(r));
        assert!(same_output(Some(&accepted), staged(reference(0)).as_ref()).expect("parses"));
        assert!(same_output(Some(&accepted), staged(reference(3)).as_ref()).expect("parses"));
        let other = pb::ArtifactRef {
            sha256: "def".into(),
            ..reference(0)
        };
        assert!(!same_output(Some(&accepted), staged(other).as_ref()).expect("parses"));
        assert!(!same_output(Some(&accepted), None).expect("parses"));
        assert!(same_output(None, None).expect("parses"));
        assert!(same_output(Some("not json"), None).is_err());
    }

    #[test]
    fn a_repeat_sends_the_accepted_content_inline() {
        let accepted = ref_json(&reference(1));
        assert!(same_output(Some(&accepted), Some(&inline(b"{}"))).expect("parses"));
        assert!(!same_output(Some(&accepted), Some(&inline(b"[]"))).expect("parses"));
        assert!(!same_output(None, Some(&inline(b"{}"))).expect("parses"));
    }
}
