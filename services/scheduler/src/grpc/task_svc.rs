//! `TaskService`: executors lease machine phases and report on them; the
//! review service reports on human phases.

use futures::StreamExt;
use futures::stream::BoxStream;
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::task_service_server::TaskService;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::attempt_key;
use crate::engine::{Engine, HumanResolution, Output};
use crate::error::Error;
use crate::storage::tasks::TaskKey;
use orchestra_kit::error::InvalidArgument;
use orchestra_kit::limits::INLINE_OUTPUT_MAX_BYTES;

/// The TaskService handler.
#[derive(Clone)]
pub struct TaskSvc {
    engine: Engine,
}

impl TaskSvc {
    /// A handler over the engine.
    pub fn new(engine: Engine) -> Self {
        TaskSvc { engine }
    }
}

/// The stored kind names an executor asked for (llm and function when none).
fn kind_names(kinds: &[i32]) -> Result<Vec<String>, Error> {
    if kinds.is_empty() {
        return Ok(vec!["llm".into(), "function".into()]);
    }
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| match pb::PhaseKind::try_from(*kind) {
            Ok(pb::PhaseKind::Llm) => Ok("llm".to_owned()),
            Ok(pb::PhaseKind::Function) => Ok("function".to_owned()),
            _ => Err(Error::invalid_field(
                format!("kinds[{i}]"),
                "executors run llm and function phases only",
            )),
        })
        .collect()
}

/// Refuses an output that is not the reporting attempt's own.
fn check_own_output(
    field: &str,
    output: Option<&pb::ArtifactRef>,
    key: &TaskKey,
) -> Result<(), Error> {
    match output {
        Some(output)
            if output.run_id != key.run_id
                || output.phase_id != key.phase_id
                || output.attempt != key.attempt =>
        {
            Err(Error::invalid_field(
                field,
                "names an artifact of another attempt; store the output under this task's key",
            ))
        }
        _ => Ok(()),
    }
}

/// Checks an output sent inline: the reporting attempt's own, small, and
/// with no schema (an output that can break one is staged, so that a
/// broken one is kept for inspection).
fn inline_output(
    content: pb::PutArtifactRequest,
    key: &TaskKey,
) -> Result<pb::PutArtifactRequest, Error> {
    let own = content.key.as_ref().is_some_and(|k| {
        k.run_id == key.run_id && k.phase_id == key.phase_id && k.attempt == key.attempt
    });
    if !own {
        return Err(Error::invalid_field(
            "output_content.key",
            "must be the completed attempt's key",
        ));
    }
    if content.name.trim().is_empty() {
        return Err(Error::invalid_field("output_content.name", "is required"));
    }
    if content.content.len() > INLINE_OUTPUT_MAX_BYTES {
        return Err(Error::invalid_field(
            "output_content.content",
            format!(
                "is {} bytes, more than the {INLINE_OUTPUT_MAX_BYTES} sent inline; stage it and name it in output",
                content.content.len()
            ),
        ));
    }
    if !content.schema_json.trim().is_empty() {
        return Err(Error::invalid_field(
            "output_content.schema_json",
            "an output with a schema is staged, so a broken one is kept; name it in output",
        ));
    }
    Ok(content)
}

/// What a failed attempt reports, as one text: the error (`failed` when
/// none is given) followed by each violation of its output.
fn failure_text(request: &pb::FailTaskRequest) -> String {
    let mut error = request.error.clone();
    if error.is_empty() {
        error = "failed".to_owned();
    }
    for violation in &request.violations {
        error.push_str(&format!("; {}: {}", violation.field, violation.description));
    }
    error
}

/// Reads a ResolveHumanPhase request.
fn human_resolution(request: pb::ResolveHumanPhaseRequest) -> Result<HumanResolution, Error> {
    let key = attempt_key(request.key.as_ref(), "key")?;
    let resolution = pb::HumanResolution::try_from(request.resolution)
        .ok()
        .filter(|r| *r != pb::HumanResolution::Unspecified)
        .ok_or_else(|| Error::invalid_field("resolution", "must be set"))?;
    Ok(HumanResolution {
        key,
        resolution,
        comment: request.comment,
        actor: request.actor,
        output: request.output,
        retry_phases: request.retry_phases,
    })
}

#[tonic::async_trait]
impl TaskService for TaskSvc {
    type LeaseStream = BoxStream<'static, Result<pb::LeaseResponse, Status>>;

    async fn lease(
        &self,
        request: Request<pb::LeaseRequest>,
    ) -> Result<Response<Self::LeaseStream>, Status> {
        let request = request.into_inner();
        if request.executor_id.is_empty() {
            return Err(Error::invalid_field("executor_id", "is required").into());
        }
        if request.slots == 0 {
            return Err(Error::invalid_field("slots", "must be 1 or more").into());
        }
        let kinds = kind_names(&request.kinds)?;
        let tasks = self
            .engine
            .lease_stream(request.executor_id, request.slots, kinds);
        let responses = ReceiverStream::new(tasks).map(|task| {
            task.map(|task| pb::LeaseResponse { task: Some(task) })
                .map_err(Status::from)
        });
        Ok(Response::new(responses.boxed()))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let request = request.into_inner();
        let key = attempt_key(request.key.as_ref(), "key")?;
        let deadline = self.engine.heartbeat(&key, &request.lease_id).await?;
        Ok(Response::new(pb::HeartbeatResponse {
            lease_deadline: orchestra_kit::time::timestamp(deadline),
        }))
    }

    async fn report_progress(
        &self,
        request: Request<pb::ReportProgressRequest>,
    ) -> Result<Response<pb::ReportProgressResponse>, Status> {
        let request = request.into_inner();
        let key = attempt_key(request.key.as_ref(), "key")?;
        if !request.delta.is_empty() {
            self.engine
                .progress(&key, &request.lease_id, request.delta)
                .await?;
        }
        Ok(Response::new(pb::ReportProgressResponse {}))
    }

    async fn complete_task(
        &self,
        request: Request<pb::CompleteTaskRequest>,
    ) -> Result<Response<pb::CompleteTaskResponse>, Status> {
        let request = request.into_inner();
        let key = attempt_key(request.key.as_ref(), "key")?;
        check_own_output("output", request.output.as_ref(), &key)?;
        let output = match (request.output, request.output_content) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_field(
                    "output_content",
                    "give the output staged (output) or inline (output_content), not both",
                )
                .into());
            }
            (Some(staged), None) => Some(Output::Staged(staged)),
            (None, Some(content)) => Some(Output::Inline(inline_output(content, &key)?)),
            (None, None) => None,
        };
        if request.accept_tasks > 1 {
            return Err(Error::invalid_field(
                "accept_tasks",
                "a completion frees one slot: accept 0 or 1 tasks",
            )
            .into());
        }
        let tasks = self
            .engine
            .complete(&key, &request.lease_id, output, request.accept_tasks)
            .await?;
        Ok(Response::new(pb::CompleteTaskResponse { tasks }))
    }

    async fn fail_task(
        &self,
        request: Request<pb::FailTaskRequest>,
    ) -> Result<Response<pb::FailTaskResponse>, Status> {
        let request = request.into_inner();
        let key = attempt_key(request.key.as_ref(), "key")?;
        let error = failure_text(&request);
        check_own_output("raw_output", request.raw_output.as_ref(), &key)?;
        let will_retry = self
            .engine
            .fail(
                &key,
                &request.lease_id,
                &error,
                request.retryable,
                request.raw_output,
            )
            .await?;
        Ok(Response::new(pb::FailTaskResponse { will_retry }))
    }

    async fn resolve_human_phase(
        &self,
        request: Request<pb::ResolveHumanPhaseRequest>,
    ) -> Result<Response<pb::ResolveHumanPhaseResponse>, Status> {
        let resolution = human_resolution(request.into_inner())?;
        self.engine.resolve_human(resolution).await?;
        Ok(Response::new(pb::ResolveHumanPhaseResponse {}))
    }
}
