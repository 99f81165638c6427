//! A new run's inputs: checked against the template's declarations, within
//! the message limit and as JSON, then stored as artifacts under the run.
//! Inline inputs and inputs given by reference (uploaded before, for their
//! size) get the same checks and end up stored the same way.

use std::collections::{BTreeMap, HashMap};

use orchestra_model::{Template, Violation};
use orchestra_proto::v1 as pb;
use tonic::Status;

use super::Engine;
use crate::error::{Error, Result};
use orchestra_kit::error::InvalidArgument;

/// One run input as given: inline JSON text, or a reference to content
/// already in the artifact store.
enum GivenInput<'a> {
    Inline(&'a str),
    Stored(&'a pb::ArtifactRef),
}

impl Engine {
    /// Stores the run's inputs as artifacts after checking them against the
    /// template's declarations; their references by name.
    pub(super) async fn store_inputs(
        &self,
        run_id: &str,
        template: &Template,
        inline: &HashMap<String, String>,
        stored: &HashMap<String, pb::ArtifactRef>,
    ) -> Result<BTreeMap<String, pb::ArtifactRef>> {
        let given = declared_inputs(template, inline, stored)?;
        let contents = self.read_inputs(given).await?;
        let mut violations = Vec::new();
        let mut stored = BTreeMap::new();
        for (name, field, content) in contents {
            let schema_json = template
                .inputs
                .get(name)
                .and_then(|i| i.schema.as_ref())
                .and_then(orchestra_model::SchemaRef::inline)
                .map(ToString::to_string)
                .unwrap_or_default();
            let response = self
                .artifacts
                .clone()
                .put_artifact(pb::PutArtifactRequest {
                    key: Some(pb::AttemptKey {
                        run_id: run_id.to_owned(),
                        phase_id: "input".to_owned(),
                        attempt: 1,
                    }),
                    name: name.to_owned(),
                    media_type: "application/json".to_owned(),
                    content,
                    schema_json,
                    created_by: Some(pb::Actor {
                        kind: pb::ActorKind::Person as i32,
                        id: "run input".to_owned(),
                    }),
                })
                .await
                .map_err(|s| match s.code() {
                    // The store is down or slow: the caller may simply retry.
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                        Error::Unavailable(format!("cannot store input {name}: {}", s.message()))
                    }
                    // Anything else is about the input itself.
                    _ => Error::invalid_field(&field, s.message()),
                })?
                .into_inner();
            let artifact = response.artifact.ok_or_else(|| {
                Error::Unavailable("artifact store answered without an artifact".into())
            })?;
            if !artifact.valid {
                violations.extend(
                    artifact
                        .violations
                        .into_iter()
                        .map(|v| Violation::new(format!("{field}{}", v.field), v.description)),
                );
                continue;
            }
            if let Some(r) = artifact.r#ref {
                stored.insert(name.to_owned(), r);
            }
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument {
                message: "the run's inputs break their schemas".into(),
                violations,
            });
        }
        Ok(stored)
    }

    /// Every input's content, each checked as JSON within the limit, with
    /// its name and request field.
    async fn read_inputs<'a>(
        &self,
        given: BTreeMap<&'a str, (String, GivenInput<'a>)>,
    ) -> Result<Vec<(&'a str, String, Vec<u8>)>> {
        let mut violations = Vec::new();
        let mut contents = Vec::new();
        for (name, (field, input)) in given {
            let content = match input {
                GivenInput::Inline(text) => text.as_bytes().to_vec(),
                GivenInput::Stored(reference) => {
                    match self.read_stored(name, &field, reference).await {
                        Ok(content) => content,
                        Err(Error::InvalidArgument { violations: v, .. }) => {
                            violations.extend(v);
                            continue;
                        }
                        Err(other) => return Err(other),
                    }
                }
            };
            if !self.limit.allows(content.len()) {
                violations.push(Violation::new(
                    field.clone(),
                    format!(
                        "{}; upload it with ArtifactService.WriteArtifactContent and \
                         pass it in input_refs, as orchestra run start does",
                        self.limit
                            .exceeded(&format!("input `{name}`"), content.len())
                    ),
                ));
            } else if serde_json::from_slice::<serde_json::Value>(&content).is_err() {
                violations.push(Violation::new(field.clone(), "is not valid JSON"));
            }
            contents.push((name, field, content));
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument {
                message: "the run's inputs do not match the template".into(),
                violations,
            });
        }
        Ok(contents)
    }

    /// The content of an input given by reference, read in chunks and
    /// refused as soon as it passes the limit.
    async fn read_stored(
        &self,
        name: &str,
        field: &str,
        reference: &pb::ArtifactRef,
    ) -> Result<Vec<u8>> {
        if reference.artifact_id.is_empty() {
            return Err(Error::invalid_field(
                format!("{field}.artifact_id"),
                "is required",
            ));
        }
        let unreadable = |s: Status| match s.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                Error::Unavailable(format!("cannot read input {name}: {}", s.message()))
            }
            _ => Error::invalid_field(field, s.message()),
        };
        let mut chunks = self
            .artifacts
            .clone()
            .read_artifact_content(pb::ReadArtifactContentRequest {
                artifact_id: reference.artifact_id.clone(),
                version: reference.version,
            })
            .await
            .map_err(unreadable)?
            .into_inner();
        let mut content = Vec::new();
        while let Some(chunk) = chunks.message().await.map_err(unreadable)? {
            content.extend_from_slice(&chunk.chunk);
            if !self.limit.allows(content.len()) {
                return Err(Error::invalid_field(
                    field,
                    self.limit
                        .exceeded(&format!("input `{name}`"), content.len())
                        .replace(" is ", " is at least "),
                ));
            }
        }
        Ok(content)
    }
}

/// The inputs given, by name with their request fields, once each is given
/// once and declared, and every required one is given.
fn declared_inputs<'a>(
    template: &Template,
    inline: &'a HashMap<String, String>,
    stored: &'a HashMap<String, pb::ArtifactRef>,
) -> Result<BTreeMap<&'a str, (String, GivenInput<'a>)>> {
    let mut given: BTreeMap<&str, (String, GivenInput)> = BTreeMap::new();
    let mut violations = Vec::new();
    for (name, text) in inline {
        given.insert(name, (format!("inputs.{name}"), GivenInput::Inline(text)));
    }
    for (name, reference) in stored {
        let field = format!("input_refs.{name}");
        if given.contains_key(name.as_str()) {
            violations.push(Violation::new(
                field,
                format!("input `{name}` is also given inline in inputs; give it once"),
            ));
            continue;
        }
        given.insert(name, (field, GivenInput::Stored(reference)));
    }
    for (name, (field, _)) in &given {
        if !template.inputs.contains_key(*name) {
            violations.push(Violation::new(
                field.clone(),
                if template.inputs.is_empty() {
                    format!(
                        "template {} takes no inputs; remove `{name}`",
                        template.name
                    )
                } else {
                    format!(
                        "template {} declares no input `{name}` (it has: {})",
                        template.name,
                        template
                            .inputs
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            ));
        }
    }
    for (name, declared) in &template.inputs {
        if declared.required && !given.contains_key(name.as_str()) {
            violations.push(Violation::new(
                format!("inputs.{name}"),
                "is required by the template",
            ));
        }
    }
    if !violations.is_empty() {
        return Err(Error::InvalidArgument {
            message: "the run's inputs do not match the template".into(),
            violations,
        });
    }
    Ok(given)
}
