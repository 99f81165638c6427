//! Runs one attempt of one phase: read its inputs from the artifact store,
//! compute the output (a built-in function or a model call), and store the
//! output, validated against the phase's schema.

use std::sync::Arc;
use std::time::Duration;

use orchestra_model::{ModelSpec, Phase, PhaseKind, PromptRef, SchemaRef};
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::artifact_service_client::ArtifactServiceClient;
use orchestra_proto::v1::task_service_client::TaskServiceClient;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::error::AttemptFailure;
use crate::functions::{FunctionCall, registry};
use crate::prompt::render_prompt;
use crate::providers::{CompletionRequest, ProviderEvent, ProviderRegistry};
use crate::structured::{self, extract_json};
use crate::worker::patiently;

/// How often streamed model output is forwarded to the scheduler.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What a finished attempt produced.
#[derive(Debug, Default)]
pub struct Produced {
    /// The output, when the phase declares one.
    pub output: Option<Output>,
    /// Model usage, for llm phases.
    pub usage: Option<pb::Usage>,
}

/// How an attempt's output reaches the scheduler with its completion.
#[derive(Debug, Clone)]
pub enum Output {
    /// Staged in the artifact store (an output with a schema, so a broken
    /// one is kept for inspection, or a large one): the report names it.
    Staged(pb::ArtifactRef),
    /// Small and with no schema to break: sent with the report, and stored
    /// and published in one step when the scheduler accepts the attempt.
    Inline(pb::PutArtifactRequest),
}

/// The clients and providers an attempt uses.
#[derive(Clone)]
pub struct AttemptContext {
    /// The artifact store.
    pub artifacts: ArtifactServiceClient<Channel>,
    /// The scheduler, for progress reports.
    pub tasks: TaskServiceClient<Channel>,
    /// The LLM providers.
    pub providers: Arc<ProviderRegistry>,
    /// How many times a model is asked to repair an answer that breaks the
    /// output schema before the attempt fails.
    pub schema_repairs: u32,
}

/// Runs a leased task to its output.
pub async fn run(ctx: &AttemptContext, task: &pb::Task) -> Result<Produced, AttemptFailure> {
    let key = task
        .key
        .clone()
        .ok_or_else(|| AttemptFailure::permanent("task without a key"))?;
    let spec: Phase = serde_json::from_str(&task.phase_spec_json)
        .map_err(|e| AttemptFailure::permanent(format!("unreadable phase definition: {e}")))?;
    let inputs = read_inputs(ctx, task).await?;
    // A note on the output that explains a schema failure, if one follows.
    let (value, usage, note) = match spec.kind {
        PhaseKind::Function => (run_function(&spec, &inputs)?, None, None),
        PhaseKind::Llm => {
            let (text, usage, note) = run_llm(ctx, task, &key, &spec, inputs).await?;
            (text, Some(usage), note)
        }
        ref other => {
            return Err(AttemptFailure::permanent(format!(
                "executors do not run {} phases",
                other.as_str()
            )));
        }
    };
    let output = match &spec.output {
        Some(output) => Some(
            store_output(ctx, &key, &output.name, output.schema.as_ref(), value)
                .await
                .map_err(|failure| failure.noting(note.as_deref()))?,
        ),
        None => None,
    };
    Ok(Produced { output, usage })
}

/// The content a phase produced, before it is stored.
enum OutputContent {
    /// A JSON value (functions).
    Json(Value),
    /// Model text, stored as JSON when it parses as JSON.
    Text(String),
}

async fn read_inputs(
    ctx: &AttemptContext,
    task: &pb::Task,
) -> Result<Map<String, Value>, AttemptFailure> {
    let mut inputs = Map::new();
    for (name, reference) in &task.inputs {
        let request = pb::GetArtifactRequest {
            artifact_id: reference.artifact_id.clone(),
            version: reference.version,
            include_content: true,
        };
        let response = patiently(|| {
            let mut artifacts = ctx.artifacts.clone();
            let request = request.clone();
            async move { artifacts.get_artifact(request).await }
        })
        .await
        .map_err(|s| {
            AttemptFailure::transient(format!("cannot read input {name}: {}", s.message()))
        })?
        .into_inner();
        let artifact = response
            .artifact
            .ok_or_else(|| AttemptFailure::transient(format!("input {name} came back empty")))?;
        let content = if artifact.content_inlined {
            artifact.content
        } else {
            read_content(ctx, reference).await?
        };
        let value = serde_json::from_slice(&content)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&content).into_owned()));
        inputs.insert(name.clone(), value);
    }
    Ok(inputs)
}

async fn read_content(
    ctx: &AttemptContext,
    reference: &pb::ArtifactRef,
) -> Result<Vec<u8>, AttemptFailure> {
    let unavailable = |s: tonic::Status| {
        AttemptFailure::transient(format!("cannot read {}: {}", reference.name, s.message()))
    };
    let request = pb::ReadArtifactContentRequest {
        artifact_id: reference.artifact_id.clone(),
        version: reference.version,
    };
    let mut stream = patiently(|| {
        let mut artifacts = ctx.artifacts.clone();
        let request = request.clone();
        async move { artifacts.read_artifact_content(request).await }
    })
    .await
    .map_err(unavailable)?
    .into_inner();
    let mut content = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(unavailable)? {
        content.extend_from_slice(&chunk.chunk);
    }
    Ok(content)
}

fn run_function(
    spec: &Phase,
    inputs: &Map<String, Value>,
) -> Result<OutputContent, AttemptFailure> {
    let name = spec
        .function
        .as_deref()
        .ok_or_else(|| AttemptFailure::permanent("function phase names no function"))?;
    let params = spec.params.clone().unwrap_or(Value::Null);
    registry()
        .call(
            name,
            FunctionCall {
                inputs,
                params: &params,
            },
        )
        .map(OutputContent::Json)
        .map_err(|e| AttemptFailure::permanent(format!("{name}: {e}")))
}

async fn run_llm(
    ctx: &AttemptContext,
    task: &pb::Task,
    key: &pb::AttemptKey,
    spec: &Phase,
    mut inputs: Map<String, Value>,
) -> Result<(OutputContent, pb::Usage, Option<String>), AttemptFailure> {
    let model = spec
        .model
        .as_ref()
        .ok_or_else(|| AttemptFailure::permanent("llm phase names no model"))?;
    let provider = ctx.providers.get(&model.provider).ok_or_else(|| {
        AttemptFailure::permanent(format!(
            "provider {} is not configured on this executor (it has: {})",
            model.provider,
            ctx.providers.names().join(", ")
        ))
    })?;
    let Some(PromptRef::Text(prompt)) = &spec.prompt else {
        return Err(AttemptFailure::permanent("llm phase has no bundled prompt"));
    };
    // Reviewers' comments from earlier attempts, for prompts that use them.
    inputs.insert(
        "feedback".to_owned(),
        Value::Array(task.feedback.iter().cloned().map(Value::String).collect()),
    );
    let prompt =
        render_prompt(prompt, &inputs).map_err(|e| AttemptFailure::permanent(e.to_string()))?;
    let prompt = match task.feedback.last() {
        Some(comment) if !prompt.contains(comment.as_str()) => {
            format!(
                "{prompt}\n\nA reviewer sent the previous attempt back with this comment:\n{comment}\n"
            )
        }
        _ => prompt,
    };
    let (request, validator) = completion_request(task, spec, model, prompt)?;
    let max_tokens = request.max_tokens;
    let (events, received) = mpsc::channel(256);
    let forwarder = tokio::spawn(forward_progress(
        ctx.tasks.clone(),
        key.clone(),
        task.lease_id.clone(),
        received,
    ));
    let completion = structured::complete_valid(
        provider.as_ref(),
        request,
        validator.as_ref(),
        ctx.schema_repairs,
        &events,
    )
    .await;
    // Once the last sender is gone the forwarder drains and ends.
    drop(events);
    let _ = forwarder.await;
    let (completion, usage) = completion?;
    let usage = pb::Usage {
        input_tokens: i64::try_from(usage.input_tokens).unwrap_or(i64::MAX),
        output_tokens: i64::try_from(usage.output_tokens).unwrap_or(i64::MAX),
        provider: completion.provider.clone(),
        model: completion.model.clone(),
        offline: completion.offline,
    };
    let note = completion.truncated.then(|| {
        let note = format!(
            "the model stopped at max_tokens ({max_tokens}), so its answer may be cut short: raise the phase's model.max_tokens"
        );
        tracing::warn!("{note}");
        note
    });
    Ok((OutputContent::Text(completion.text), usage, note))
}

/// The model call an `llm` phase makes, and the validator of its output
/// schema when it has one.
fn completion_request(
    task: &pb::Task,
    spec: &Phase,
    model: &ModelSpec,
    prompt: String,
) -> Result<(CompletionRequest, Option<jsonschema::Validator>), AttemptFailure> {
    let output_schema = spec
        .output
        .as_ref()
        .and_then(|o| o.schema.as_ref())
        .and_then(SchemaRef::inline)
        .cloned();
    let validator = output_schema
        .as_ref()
        .map(jsonschema::validator_for)
        .transpose()
        .map_err(|e| AttemptFailure::permanent(format!("output schema does not compile: {e}")))?;
    // The phase's timeout ends the attempt (the worker drops it); retries
    // inside a model call do not wait past it.
    let deadline = u64::try_from(task.timeout_ms)
        .ok()
        .filter(|ms| *ms > 0)
        .map(|ms| tokio::time::Instant::now() + Duration::from_millis(ms));
    let request = CompletionRequest {
        model: model.name.clone(),
        system: spec.system.clone(),
        prompt,
        temperature: model.temperature.map(|t| t as f32),
        max_tokens: model.max_tokens.unwrap_or(2048),
        seed: task.seed,
        output_schema,
        deadline,
    };
    Ok((request, validator))
}

/// Sends model output to the scheduler in batches as it arrives. A retry
/// that voids text already shown says so in the text, since watchers see
/// the new answer follow the abandoned one.
async fn forward_progress(
    mut tasks: TaskServiceClient<Channel>,
    key: pb::AttemptKey,
    lease_id: String,
    mut received: mpsc::Receiver<ProviderEvent>,
) {
    let mut pending = String::new();
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            event = received.recv() => match event {
                Some(ProviderEvent::Delta(delta)) => pending.push_str(&delta),
                Some(ProviderEvent::Retrying { reason, discarded, .. }) => {
                    if discarded {
                        pending.push_str(&format!("\n\n[{reason}; starting over]\n\n"));
                    }
                }
                None => break,
            },
            _ = ticker.tick() => {
                if !pending.is_empty() {
                    let delta = std::mem::take(&mut pending);
                    report(&mut tasks, &key, &lease_id, delta).await;
                }
            }
        }
    }
    if !pending.is_empty() {
        report(&mut tasks, &key, &lease_id, pending).await;
    }
}

async fn report(
    tasks: &mut TaskServiceClient<Channel>,
    key: &pb::AttemptKey,
    lease_id: &str,
    delta: String,
) {
    let request = pb::ReportProgressRequest {
        key: Some(key.clone()),
        lease_id: lease_id.to_owned(),
        delta,
    };
    if let Err(status) = tasks.report_progress(request).await {
        // Progress is a view of the work, not the work: losing some is fine.
        tracing::debug!(message = status.message(), "progress report dropped");
    }
}

async fn store_output(
    ctx: &AttemptContext,
    key: &pb::AttemptKey,
    name: &str,
    schema: Option<&SchemaRef>,
    content: OutputContent,
) -> Result<Output, AttemptFailure> {
    let (media_type, bytes) = match content {
        OutputContent::Json(value) => ("application/json", value.to_string().into_bytes()),
        OutputContent::Text(text) => match extract_json(&text) {
            Some(value) => ("application/json", value.to_string().into_bytes()),
            None if schema.is_some() => ("application/json", text.into_bytes()),
            None => ("text/plain", text.into_bytes()),
        },
    };
    let schema_json = schema
        .and_then(SchemaRef::inline)
        .map(Value::to_string)
        .unwrap_or_default();
    let artifact = pb::PutArtifactRequest {
        key: Some(key.clone()),
        name: name.to_owned(),
        media_type: media_type.to_owned(),
        content: bytes,
        schema_json,
        created_by: Some(pb::Actor {
            kind: pb::ActorKind::Phase as i32,
            id: format!("{}/{}/{}", key.run_id, key.phase_id, key.attempt),
        }),
    };
    if schema.is_none() && artifact.content.len() <= orchestra_kit::limits::INLINE_OUTPUT_MAX_BYTES
    {
        return Ok(Output::Inline(artifact));
    }
    // Staged, not published: the output becomes a version only when the
    // scheduler accepts this attempt, so a lost attempt leaves no version.
    let request = pb::StageArtifactRequest {
        artifact: Some(artifact),
    };
    let response = patiently(|| {
        let mut artifacts = ctx.artifacts.clone();
        let request = request.clone();
        async move { artifacts.stage_artifact(request).await }
    })
    .await
    .map_err(|s| AttemptFailure::transient(format!("cannot store output {name}: {}", s.message())))?
    .into_inner();
    let artifact = response.artifact.ok_or_else(|| {
        AttemptFailure::transient("the artifact store answered without an artifact")
    })?;
    let reference = artifact.r#ref.ok_or_else(|| {
        AttemptFailure::transient("the artifact store answered without a reference")
    })?;
    if !artifact.valid {
        return Err(AttemptFailure {
            message: format!(
                "output {name} breaks its schema ({} violation(s)); the raw output is kept for inspection, never as the latest",
                artifact.violations.len(),
            ),
            retryable: true,
            violations: artifact.violations,
            raw_output: Some(Box::new(reference)),
        });
    }
    Ok(Output::Staged(reference))
}
