//! `RunService`: starting, reading, watching and steering runs.

use std::collections::BTreeMap;

use orchestra_kit::limits::MessageLimit;
use orchestra_model::RunStatus;
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::run_service_server::RunService;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::convert::{self, phase_message, run_message};
use crate::engine::{Engine, StartRun};
use crate::error::{Error, Result};
use crate::storage::RunFilter;

/// The RunService handler.
#[derive(Clone)]
pub struct RunSvc {
    engine: Engine,
    artifacts: ArtifactServiceClient<Channel>,
    limit: MessageLimit,
}

/// One run input as given: inline JSON text, or a reference to content
/// already in the artifact store.
enum GivenInput<'a> {
    Inline(&'a str),
    Stored(&'a pb::ArtifactRef),
}

impl RunSvc {
    /// A handler over the engine, storing run inputs in the artifact store.
    pub fn new(engine: Engine, artifacts: ArtifactServiceClient<Channel>) -> Self {
        RunSvc {
            engine,
            artifacts,
            limit: MessageLimit::new(
                orchestra_kit::limits::DEFAULT_MAX_MESSAGE_BYTES,
                <crate::Config as orchestra_kit::config::Settings>::variable("max_message_bytes"),
            ),
        }
    }

    /// The same handler, refusing inputs above `limit` by name.
    pub fn with_message_limit(self, limit: MessageLimit) -> Self {
        RunSvc { limit, ..self }
    }

    /// Stores the run's inputs as artifacts after checking them against the
    /// template's declarations. Inline inputs and inputs given by reference
    /// (uploaded before, for their size) get the same checks and end up
    /// stored the same way, under the run.
    async fn store_inputs(
        &self,
        run_id: &str,
        template: &orchestra_model::Template,
        inline: &std::collections::HashMap<String, String>,
        stored: &std::collections::HashMap<String, pb::ArtifactRef>,
    ) -> Result<BTreeMap<String, pb::ArtifactRef>> {
        let mut given: BTreeMap<&str, (String, GivenInput)> = BTreeMap::new();
        let mut violations = Vec::new();
        for (name, text) in inline {
            given.insert(name, (format!("inputs.{name}"), GivenInput::Inline(text)));
        }
        for (name, reference) in stored {
            let field = format!("input_refs.{name}");
            if given.contains_key(name.as_str()) {
                violations.push(orchestra_model::Violation::new(
                    field,
                    format!("input `{name}` is also given inline in inputs; give it once"),
                ));
                continue;
            }
            given.insert(name, (field, GivenInput::Stored(reference)));
        }
        for (name, (field, _)) in &given {
            if !template.inputs.contains_key(*name) {
                violations.push(orchestra_model::Violation::new(
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
                violations.push(orchestra_model::Violation::new(
                    format!("inputs.{name}"),
                    "is required by the template",
                ));
            }
        }
        if !violations.is_empty() {
            return Err(Error::Invalid {
                message: "the run's inputs do not match the template".into(),
                violations,
            });
        }
        // Read every input's content, then check each as JSON within the limit.
        let mut contents = Vec::new();
        for (name, (field, input)) in given {
            let content = match input {
                GivenInput::Inline(text) => text.as_bytes().to_vec(),
                GivenInput::Stored(reference) => {
                    match self.read_stored(name, &field, reference).await {
                        Ok(content) => content,
                        Err(Error::Invalid { violations: v, .. }) => {
                            violations.extend(v);
                            continue;
                        }
                        Err(other) => return Err(other),
                    }
                }
            };
            if !self.limit.allows(content.len()) {
                violations.push(orchestra_model::Violation::new(
                    field.clone(),
                    format!(
                        "{}; upload it with ArtifactService.WriteArtifactContent and \
                         pass it in input_refs, as orchestra run start does",
                        self.limit
                            .exceeded(&format!("input `{name}`"), content.len())
                    ),
                ));
            } else if serde_json::from_slice::<serde_json::Value>(&content).is_err() {
                violations.push(orchestra_model::Violation::new(
                    field.clone(),
                    "is not valid JSON",
                ));
            }
            contents.push((name, field, content));
        }
        if !violations.is_empty() {
            return Err(Error::Invalid {
                message: "the run's inputs do not match the template".into(),
                violations,
            });
        }
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
                violations.extend(artifact.violations.into_iter().map(|v| {
                    orchestra_model::Violation::new(format!("{field}{}", v.field), v.description)
                }));
                continue;
            }
            if let Some(r) = artifact.r#ref {
                stored.insert(name.to_owned(), r);
            }
        }
        if !violations.is_empty() {
            return Err(Error::Invalid {
                message: "the run's inputs break their schemas".into(),
                violations,
            });
        }
        Ok(stored)
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
                &format!("{field}.artifact_id"),
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

fn page_token(row: &crate::storage::models::RunRow) -> String {
    format!("{}:{}", row.created_at, row.id)
}

fn parse_page_token(token: &str) -> Result<Option<(i64, String)>> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .split_once(':')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_owned())))
        .map(Some)
        .ok_or_else(|| Error::invalid_field("page_token", "is not a token this server gave out"))
}

/// Whether an event ends a run's watch stream.
fn ends_watch(event: &pb::RunEvent) -> bool {
    match &event.body {
        Some(pb::run_event::Body::RunStatusChanged(change)) => pb::RunStatus::try_from(change.to)
            .ok()
            .and_then(convert::model_run_status)
            .is_some_and(RunStatus::is_finished),
        _ => false,
    }
}

#[tonic::async_trait]
impl RunService for RunSvc {
    async fn start_run(
        &self,
        request: Request<pb::StartRunRequest>,
    ) -> Result<Response<pb::StartRunResponse>, Status> {
        let request = request.into_inner();
        if request.template_name.is_empty() {
            return Err(Error::invalid_field("template_name", "is required").into());
        }
        let request_id = (!request.request_id.is_empty()).then(|| request.request_id.clone());
        if let Some(id) = &request_id
            && let Some(existing) = self.engine.run_by_request_id(id).await?
        {
            return Ok(Response::new(pb::StartRunResponse {
                run: Some(run_message(&existing)?),
            }));
        }
        let template_row = self
            .engine
            .get_template(&request.template_name, request.template_version)
            .await?;
        let template = convert::parse_spec(&template_row.spec_json)?;
        let run_id = uuid::Uuid::now_v7().to_string();
        let inputs = self
            .store_inputs(&run_id, &template, &request.inputs, &request.input_refs)
            .await?;
        let run = self
            .engine
            .start_run(StartRun {
                run_id,
                template: template_row,
                inputs,
                seed: request.seed.unwrap_or_else(rand_seed),
                auto_advance: !request.manual_advance,
                request_id,
            })
            .await?;
        Ok(Response::new(pb::StartRunResponse {
            run: Some(run_message(&run)?),
        }))
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::GetRunResponse>, Status> {
        let request = request.into_inner();
        if request.run_id.is_empty() {
            return Err(Error::invalid_field("run_id", "is required").into());
        }
        let (run, phases) = self.engine.get_run(&request.run_id).await?;
        let template = convert::parse_spec(&run.spec_json)?;
        let phases = phases
            .iter()
            .map(|p| phase_message(p, &template))
            .collect::<Result<Vec<_>>>()?;
        Ok(Response::new(pb::GetRunResponse {
            seq: run.last_seq,
            run: Some(run_message(&run)?),
            phases,
        }))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        let request = request.into_inner();
        let mut statuses = Vec::new();
        for (i, status) in request.statuses.iter().enumerate() {
            let status = pb::RunStatus::try_from(*status)
                .ok()
                .and_then(convert::model_run_status)
                .ok_or_else(|| {
                    Error::invalid_field(&format!("statuses[{i}]"), "is not a run status")
                })?;
            statuses.push(status.as_str().to_owned());
        }
        let limit = super::page_size(request.page_size);
        let filter = RunFilter {
            statuses,
            template_name: (!request.template_name.is_empty()).then_some(request.template_name),
            before: parse_page_token(&request.page_token)?,
            limit,
        };
        let rows = self.engine.list_runs(&filter).await?;
        let next_page_token = if rows.len() as i64 == limit {
            rows.last().map(page_token).unwrap_or_default()
        } else {
            String::new()
        };
        let runs = rows.iter().map(run_message).collect::<Result<Vec<_>>>()?;
        Ok(Response::new(pb::ListRunsResponse {
            runs,
            next_page_token,
        }))
    }

    type WatchRunStream = ReceiverStream<Result<pb::WatchRunResponse, Status>>;

    async fn watch_run(
        &self,
        request: Request<pb::WatchRunRequest>,
    ) -> Result<Response<Self::WatchRunStream>, Status> {
        let request = request.into_inner();
        if request.run_id.is_empty() {
            return Err(Error::invalid_field("run_id", "is required").into());
        }
        if request.after_seq < 0 {
            return Err(Error::invalid_field("after_seq", "must not be negative").into());
        }
        // Fail fast on an unknown run rather than stream nothing; a run that
        // has already ended streams what the watcher missed, then ends.
        let (run, _) = self.engine.get_run(&request.run_id).await?;
        let already_finished = convert::stored_status(&run)?.is_finished();
        let (sender, receiver) = mpsc::channel(256);
        let engine = self.engine.clone();
        tokio::spawn(async move {
            let mut wake = engine.bus().watch_events();
            let closed = engine.bus().closed();
            tokio::pin!(closed);
            let mut after = request.after_seq;
            let mut finished = already_finished;
            loop {
                // Subscribe-then-read: a commit after this read still wakes us.
                wake.mark_unchanged();
                let rows = match engine.events_after(&request.run_id, after, 256).await {
                    Ok(rows) => rows,
                    Err(error) => {
                        let _ = sender.send(Err(error.into())).await;
                        return;
                    }
                };
                let read = rows.len();
                for row in rows {
                    let event = match pb::RunEvent::decode(row.body.as_slice()) {
                        Ok(event) => event,
                        Err(e) => {
                            let _ = sender
                                .send(Err(Error::Corrupt(format!("event {}: {e}", row.seq)).into()))
                                .await;
                            return;
                        }
                    };
                    after = row.seq;
                    finished |= ends_watch(&event);
                    let response = pb::WatchRunResponse { event: Some(event) };
                    if sender.send(Ok(response)).await.is_err() {
                        return;
                    }
                }
                if read > 0 {
                    continue;
                }
                if finished {
                    return;
                }
                tokio::select! {
                    _ = wake.changed() => {}
                    () = tokio::time::sleep(engine.bus().poll_interval()) => {}
                    () = sender.closed() => return,
                    () = &mut closed => {
                        let status = Status::unavailable("the scheduler is stopping; watch again from your last sequence");
                        let _ = sender.send(Err(status)).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn continue_phase(
        &self,
        request: Request<pb::ContinuePhaseRequest>,
    ) -> Result<Response<pb::ContinuePhaseResponse>, Status> {
        let request = request.into_inner();
        if request.run_id.is_empty() {
            return Err(Error::invalid_field("run_id", "is required").into());
        }
        let phase = self
            .engine
            .continue_phase(&request.run_id, &request.phase_id)
            .await?;
        let (run, _) = self.engine.get_run(&request.run_id).await?;
        let template = convert::parse_spec(&run.spec_json)?;
        Ok(Response::new(pb::ContinuePhaseResponse {
            phase: Some(phase_message(&phase, &template)?),
        }))
    }

    async fn cancel_run(
        &self,
        request: Request<pb::CancelRunRequest>,
    ) -> Result<Response<pb::CancelRunResponse>, Status> {
        let request = request.into_inner();
        if request.run_id.is_empty() {
            return Err(Error::invalid_field("run_id", "is required").into());
        }
        let run = self
            .engine
            .cancel_run(&request.run_id, &request.reason)
            .await?;
        Ok(Response::new(pb::CancelRunResponse {
            run: Some(run_message(&run)?),
        }))
    }
}

/// A seed for a run that asked for none.
fn rand_seed() -> u64 {
    let uuid = uuid::Uuid::new_v4();
    let (high, low) = uuid.as_u64_pair();
    high ^ low
}
