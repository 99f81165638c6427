//! Event fan-out: many `WatchRun` streams on one run. The run is started
//! with manual advance so every stream is open before its first phase
//! moves; the benchmark then continues each phase as it becomes ready.
//! Figures: commit-to-receipt latency over every event on every stream, the
//! watching process's memory per open stream, and (on Postgres) database
//! transactions per event, which stay flat only if streams share one read.

use futures::StreamExt;
use orchestra_proto::v1::run_event::Body;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use orchestra_proto::v1::{
    ContinuePhaseRequest, GetRunRequest, PhaseState, RunEvent, WatchRunRequest,
};
use tonic::transport::Channel;

use super::chain::connect_error;
use super::{Sample, p50_p99};
use crate::client;
use crate::error::{Result, rpc};
use crate::mesh::Mesh;
use crate::templates;

/// Streams per client connection (HTTP/2 servers cap concurrent streams).
const STREAMS_PER_CONNECTION: usize = 100;

/// Phases of the watched run.
const PHASES: usize = 10;

const TEMPLATE: &str = "bench-watched";

/// The watched template applied, ready to run.
pub struct Watchers {
    channel: Channel,
}

impl Watchers {
    /// Applies the chain the watchers watch.
    pub async fn prepare(mesh: &Mesh) -> Result<Watchers> {
        let channel = client::channel(mesh.url()).await.map_err(connect_error)?;
        client::apply_template(&channel, TEMPLATE, templates::chain(TEMPLATE, PHASES)).await?;
        Ok(Watchers { channel })
    }

    /// Opens `count` streams on a new run, drives the run and measures.
    pub async fn once(&self, mesh: &Mesh, count: usize) -> Result<Sample> {
        let mut runs = RunServiceClient::new(self.channel.clone());
        let run_id = client::start_run(&mut runs, TEMPLATE, true).await?;
        let snapshot = runs
            .get_run(GetRunRequest {
                run_id: run_id.clone(),
            })
            .await
            .map_err(rpc("GetRun"))?
            .into_inner();

        let memory_before = mesh.scheduler_resident_kib();
        let mut streams = Vec::with_capacity(count);
        let mut connections = Vec::new();
        for i in 0..count {
            if i % STREAMS_PER_CONNECTION == 0 {
                connections.push(client::channel(mesh.url()).await.map_err(connect_error)?);
            }
            let channel = connections[connections.len() - 1].clone();
            let stream = RunServiceClient::new(channel)
                .watch_run(WatchRunRequest {
                    run_id: run_id.clone(),
                    after_seq: snapshot.seq,
                })
                .await
                .map_err(rpc("WatchRun"))?
                .into_inner();
            streams.push(stream);
        }
        let memory_after = mesh.scheduler_resident_kib();
        let transactions_before = mesh.committed_transactions().await?;

        let receivers: Vec<_> = streams
            .into_iter()
            .map(|mut stream| {
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while let Some(message) = stream.next().await {
                        let event = message.map_err(rpc("WatchRun"))?.event.unwrap_or_default();
                        let now = orchestra_kit::time::now_micros();
                        let sent = orchestra_kit::time::micros(event.time.as_ref());
                        latencies.push((now - sent) as f64 / 1e3);
                        if client::final_status(&event).is_some() {
                            break;
                        }
                    }
                    Ok::<_, crate::Error>(latencies)
                })
            })
            .collect();

        let ready: Vec<String> = snapshot
            .phases
            .iter()
            .filter(|phase| phase.state == PhaseState::Ready as i32)
            .map(|phase| phase.id.clone())
            .collect();
        drive(&mut runs, &run_id, snapshot.seq, ready).await?;

        let mut latencies = Vec::new();
        for receiver in receivers {
            let received = receiver
                .await
                .map_err(|e| crate::Error::Io(std::io::Error::other(e)))??;
            latencies.extend(received);
        }
        let events_per_stream = latencies.len() / count.max(1);
        let mut sample = Vec::new();
        p50_p99(&mut sample, "commit to receipt", &latencies, "ms");
        if let (Some(before), Some(after)) = (memory_before, memory_after) {
            let per_stream = after.saturating_sub(before) as f64 / count.max(1) as f64;
            sample.push(("memory per open stream".to_owned(), per_stream, "KiB"));
        }
        if let (Some(before), Some(after)) =
            (transactions_before, mesh.committed_transactions().await?)
        {
            let per_event = (after - before) as f64 / events_per_stream.max(1) as f64;
            sample.push(("db transactions per event".to_owned(), per_event, "tx"));
        }
        Ok(sample)
    }
}

/// Continues each phase as it becomes ready until the run ends.
async fn drive(
    runs: &mut RunServiceClient<Channel>,
    run_id: &str,
    after_seq: i64,
    ready: Vec<String>,
) -> Result<()> {
    let mut stream = runs
        .watch_run(WatchRunRequest {
            run_id: run_id.to_owned(),
            after_seq,
        })
        .await
        .map_err(rpc("WatchRun"))?
        .into_inner();
    for phase_id in ready {
        continue_phase(runs, run_id, phase_id).await?;
    }
    while let Some(message) = stream.next().await {
        let event: RunEvent = message.map_err(rpc("WatchRun"))?.event.unwrap_or_default();
        if client::final_status(&event).is_some() {
            break;
        }
        if let Some(Body::PhaseStateChanged(change)) = &event.body
            && change.to == PhaseState::Ready as i32
        {
            continue_phase(runs, run_id, change.phase_id.clone()).await?;
        }
    }
    Ok(())
}

async fn continue_phase(
    runs: &mut RunServiceClient<Channel>,
    run_id: &str,
    phase_id: String,
) -> Result<()> {
    runs.continue_phase(ContinuePhaseRequest {
        run_id: run_id.to_owned(),
        phase_id,
    })
    .await
    .map_err(rpc("ContinuePhase"))?;
    Ok(())
}
