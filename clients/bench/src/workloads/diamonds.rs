//! W1s and W1: the diamond `a → (b, c) → d → e`, alone (latency from
//! StartRun to the completed event at the client) and many at once with a
//! bound on those in flight (throughput, run latency, dispatch under load).

use std::time::{Duration, Instant};

use futures::StreamExt;
use orchestra_proto::v1::run_service_client::RunServiceClient;
use tonic::transport::Channel;

use super::chain::connect_error;
use super::{Sample, dispatch_latencies_ms, p50_p99};
use crate::client;
use crate::error::Result;
use crate::mesh::Mesh;
use crate::stats::percentile;
use crate::templates;

/// Diamonds started one after another for the W1s figure, which is their median.
const ALONE_RUNS: usize = 10;

/// Client connections W1 spreads its runs over, as many clients would.
const CONNECTIONS: usize = 4;

/// The diamond template applied, ready to run.
pub struct Diamonds {
    channels: Vec<Channel>,
}

const TEMPLATE: &str = "bench-diamond";

impl Diamonds {
    /// Applies the diamond template.
    pub async fn prepare(mesh: &Mesh) -> Result<Diamonds> {
        let mut channels = Vec::new();
        for _ in 0..CONNECTIONS {
            channels.push(client::channel(mesh.url()).await.map_err(connect_error)?);
        }
        client::apply_template(&channels[0], TEMPLATE, templates::diamond(TEMPLATE)).await?;
        Ok(Diamonds { channels })
    }

    /// W1s: diamonds one at a time, nothing else happening.
    pub async fn alone(&self) -> Result<Sample> {
        let mut latencies = Vec::new();
        for _ in 0..ALONE_RUNS {
            let (latency, _) = self.one(0).await?;
            latencies.push(latency.as_secs_f64() * 1e3);
        }
        Ok(vec![(
            "StartRun to completed".to_owned(),
            percentile(&latencies, 50.0),
            "ms",
        )])
    }

    /// W1: `count` diamonds, at most `in_flight` at once.
    pub async fn many(&self, count: usize, in_flight: usize) -> Result<Sample> {
        let began = Instant::now();
        let results: Vec<Result<(Duration, Vec<f64>)>> = futures::stream::iter(0..count)
            .map(|i| self.one(i))
            .buffer_unordered(in_flight.max(1))
            .collect()
            .await;
        let elapsed = began.elapsed();
        let mut latencies = Vec::with_capacity(count);
        let mut dispatch = Vec::with_capacity(count * 5);
        for result in results {
            let (latency, waits) = result?;
            latencies.push(latency.as_secs_f64() * 1e3);
            dispatch.extend(waits);
        }
        let mut sample = vec![(
            "runs per second".to_owned(),
            count as f64 / elapsed.as_secs_f64(),
            "runs/s",
        )];
        p50_p99(&mut sample, "run latency", &latencies, "ms");
        p50_p99(&mut sample, "dispatch under load", &dispatch, "ms");
        Ok(sample)
    }

    /// One diamond: its latency at the client and its dispatch waits.
    async fn one(&self, i: usize) -> Result<(Duration, Vec<f64>)> {
        let mut runs = RunServiceClient::new(self.channels[i % self.channels.len()].clone());
        let began = Instant::now();
        let run_id = client::start_run(&mut runs, TEMPLATE, false).await?;
        let watched = client::watch_to_end(&mut runs, &run_id).await?;
        Ok((
            watched.ended_at.duration_since(began),
            dispatch_latencies_ms(&watched.events),
        ))
    }
}
