//! `RunService`: starting, reading, watching and steering runs.

use futures::StreamExt;
use futures::stream::BoxStream;
use orchestra_proto::v1 as pb;
use orchestra_proto::v1::run_service_server::RunService;
use tonic::{Request, Response, Status};

use crate::convert::{self, phase_message, run_message};
use crate::engine::{Engine, StartRun};
use crate::error::{Error, Result};
use crate::storage::models::RunRow;
use crate::storage::runs::RunFilter;
use orchestra_kit::error::InvalidArgument;

/// The RunService handler.
#[derive(Clone)]
pub struct RunSvc {
    engine: Engine,
}

impl RunSvc {
    /// A handler over the engine.
    pub fn new(engine: Engine) -> Self {
        RunSvc { engine }
    }
}

/// Reads a run id the request must carry.
fn required_run_id(run_id: &str) -> Result<&str> {
    if run_id.is_empty() {
        return Err(Error::invalid_field("run_id", "is required"));
    }
    Ok(run_id)
}

/// Reads a StartRun request.
fn start_run(request: pb::StartRunRequest) -> Result<StartRun> {
    if request.template_name.is_empty() {
        return Err(Error::invalid_field("template_name", "is required"));
    }
    Ok(StartRun {
        template_name: request.template_name,
        template_version: request.template_version,
        inputs: request.inputs,
        input_refs: request.input_refs,
        seed: request.seed,
        auto_advance: !request.manual_advance,
        request_id: (!request.request_id.is_empty()).then_some(request.request_id),
    })
}

/// Reads a ListRuns request's filter and page.
fn run_filter(request: pb::ListRunsRequest) -> Result<RunFilter> {
    let mut statuses = Vec::new();
    for (i, status) in request.statuses.iter().enumerate() {
        let status = pb::RunStatus::try_from(*status)
            .ok()
            .and_then(convert::model_run_status)
            .ok_or_else(|| Error::invalid_field(format!("statuses[{i}]"), "is not a run status"))?;
        statuses.push(status.as_str().to_owned());
    }
    Ok(RunFilter {
        statuses,
        template_name: (!request.template_name.is_empty()).then_some(request.template_name),
        before: parse_page_token(&request.page_token)?,
        limit: super::page_size(request.page_size),
    })
}

/// The token of the page after `rows`: empty when `rows` was the last page.
fn next_page_token(rows: &[RunRow], limit: i64) -> String {
    match rows.last() {
        Some(row) if rows.len() as i64 == limit => format!("{}:{}", row.created_at, row.id),
        _ => String::new(),
    }
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

#[tonic::async_trait]
impl RunService for RunSvc {
    async fn start_run(
        &self,
        request: Request<pb::StartRunRequest>,
    ) -> Result<Response<pb::StartRunResponse>, Status> {
        let run = self
            .engine
            .start_run(start_run(request.into_inner())?)
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
        let (run, phases) = self
            .engine
            .get_run(required_run_id(&request.run_id)?)
            .await?;
        Ok(Response::new(pb::GetRunResponse {
            seq: run.last_seq,
            phases: convert::phase_messages(&run, &phases)?,
            run: Some(run_message(&run)?),
        }))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        let filter = run_filter(request.into_inner())?;
        let rows = self.engine.list_runs(&filter).await?;
        Ok(Response::new(pb::ListRunsResponse {
            next_page_token: next_page_token(&rows, filter.limit),
            runs: rows.iter().map(run_message).collect::<Result<Vec<_>>>()?,
        }))
    }

    type WatchRunStream = BoxStream<'static, Result<pb::WatchRunResponse, Status>>;

    async fn watch_run(
        &self,
        request: Request<pb::WatchRunRequest>,
    ) -> Result<Response<Self::WatchRunStream>, Status> {
        let request = request.into_inner();
        let run_id = required_run_id(&request.run_id)?;
        if request.after_seq < 0 {
            return Err(Error::invalid_field("after_seq", "must not be negative").into());
        }
        let events = self.engine.watch_run(run_id, request.after_seq).await?;
        let responses = events.map(|event| {
            event
                .map(|event| pb::WatchRunResponse { event: Some(event) })
                .map_err(Status::from)
        });
        Ok(Response::new(responses.boxed()))
    }

    async fn continue_phase(
        &self,
        request: Request<pb::ContinuePhaseRequest>,
    ) -> Result<Response<pb::ContinuePhaseResponse>, Status> {
        let request = request.into_inner();
        let run_id = required_run_id(&request.run_id)?;
        let phase = self
            .engine
            .continue_phase(run_id, &request.phase_id)
            .await?;
        let (run, _) = self.engine.get_run(run_id).await?;
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
        let run_id = required_run_id(&request.run_id)?;
        let run = self.engine.cancel_run(run_id, &request.reason).await?;
        Ok(Response::new(pb::CancelRunResponse {
            run: Some(run_message(&run)?),
        }))
    }
}
