//! W3: one run of a chain of no-op phases, alone, so every hop (complete →
//! ready the next → lease it → run it) is on the critical path. Its cost per
//! hop is the orchestrator's latency; its dispatch figures are idle ones.

use std::time::Instant;

use orchestra_proto::v1::run_service_client::RunServiceClient;
use tonic::transport::Channel;

use super::{Sample, dispatch_latencies_ms, p50_p99};
use crate::client;
use crate::error::Result;
use crate::mesh::Mesh;
use crate::templates;

/// The chain template applied, ready to run.
pub struct Chain {
    channel: Channel,
    template: String,
    len: usize,
}

impl Chain {
    /// Applies the chain template of `len` phases.
    pub async fn prepare(mesh: &Mesh, len: usize) -> Result<Chain> {
        let channel = client::channel(mesh.url()).await.map_err(connect_error)?;
        let template = format!("bench-chain-{len}");
        client::apply_template(&channel, &template, templates::chain(&template, len)).await?;
        Ok(Chain {
            channel,
            template,
            len,
        })
    }

    /// Runs the chain once: milliseconds per hop, and dispatch latency.
    pub async fn once(&self) -> Result<Sample> {
        let mut runs = RunServiceClient::new(self.channel.clone());
        let began = Instant::now();
        let run_id = client::start_run(&mut runs, &self.template, false).await?;
        let watched = client::watch_to_end(&mut runs, &run_id).await?;
        let total = watched.ended_at.duration_since(began);
        let mut sample = vec![(
            "per hop".to_owned(),
            total.as_secs_f64() * 1e3 / self.len as f64,
            "ms",
        )];
        p50_p99(
            &mut sample,
            "dispatch idle",
            &dispatch_latencies_ms(&watched.events),
            "ms",
        );
        Ok(sample)
    }
}

/// A channel that could not be opened, as the benchmark reports it.
pub(crate) fn connect_error(error: tonic::transport::Error) -> crate::Error {
    crate::Error::Rpc {
        call: "connect",
        status: Box::new(tonic::Status::unavailable(error.to_string())),
    }
}
