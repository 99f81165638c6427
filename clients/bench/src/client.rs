//! The gRPC calls every workload makes, as a client in another process
//! makes them: apply a template, start a run, watch it to its end.

use std::time::Instant;

use futures::StreamExt;
use orchestra_proto::v1::run_event::Body;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use orchestra_proto::v1::template_service_client::TemplateServiceClient;
use orchestra_proto::v1::{
    CreateTemplateRequest, CreateTemplateVersionRequest, RunEvent, RunStatus, StartRunRequest,
    TemplateSource, WatchRunRequest,
};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result, rpc};

/// A connected channel to `url` (TCP_NODELAY, as every Orchestra client).
pub async fn channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
}

/// Stores the template under its name: version 1, or a new version when the
/// name is taken (a mesh targeted with `--server` may have it already).
pub async fn apply_template(channel: &Channel, name: &str, source: String) -> Result<()> {
    let mut templates = TemplateServiceClient::new(channel.clone());
    let source = TemplateSource {
        source,
        ..Default::default()
    };
    let created = templates
        .create_template(CreateTemplateRequest {
            source: Some(source.clone()),
        })
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::AlreadyExists => templates
            .create_template_version(CreateTemplateVersionRequest {
                name: name.to_owned(),
                source: Some(source),
            })
            .await
            .map(|_| ())
            .map_err(rpc("CreateTemplateVersion")),
        Err(status) => Err(rpc("CreateTemplate")(status)),
    }
}

/// Starts a run of the template's latest version and returns its id.
pub async fn start_run(
    runs: &mut RunServiceClient<Channel>,
    template: &str,
    manual: bool,
) -> Result<String> {
    let response = runs
        .start_run(StartRunRequest {
            template_name: template.to_owned(),
            manual_advance: manual,
            ..Default::default()
        })
        .await
        .map_err(rpc("StartRun"))?;
    Ok(response
        .into_inner()
        .run
        .map(|run| run.id)
        .unwrap_or_default())
}

/// The events of one run up to its end, and when the end arrived.
pub struct Watched {
    /// Every event received, in order.
    pub events: Vec<RunEvent>,
    /// When the run's final status arrived.
    pub ended_at: Instant,
}

/// Watches a run from the start until its status is final; an end other
/// than COMPLETED is an error.
pub async fn watch_to_end(runs: &mut RunServiceClient<Channel>, run_id: &str) -> Result<Watched> {
    let mut stream = runs
        .watch_run(WatchRunRequest {
            run_id: run_id.to_owned(),
            after_seq: 0,
        })
        .await
        .map_err(rpc("WatchRun"))?
        .into_inner();
    let mut events = Vec::new();
    while let Some(message) = stream.next().await {
        let event = message.map_err(rpc("WatchRun"))?.event.unwrap_or_default();
        let end = final_status(&event);
        events.push(event);
        match end {
            Some(RunStatus::Completed) => {
                return Ok(Watched {
                    events,
                    ended_at: Instant::now(),
                });
            }
            Some(status) => {
                return Err(Error::RunFailed {
                    run_id: run_id.to_owned(),
                    status: status.as_str_name().to_owned(),
                });
            }
            None => {}
        }
    }
    Err(Error::RunFailed {
        run_id: run_id.to_owned(),
        status: "unknown (the watch stream ended first)".to_owned(),
    })
}

/// The run's new status when the event ends the run.
pub fn final_status(event: &RunEvent) -> Option<RunStatus> {
    match &event.body {
        Some(Body::RunStatusChanged(change)) => {
            let to = RunStatus::try_from(change.to).ok()?;
            matches!(
                to,
                RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
            )
            .then_some(to)
        }
        _ => None,
    }
}
