//! W2: one root, N children that need it, one join that needs them all. The
//! cost per phase must not grow with N: this is where a transition that
//! reads the whole run shows as quadratic time.

use std::time::Instant;

use orchestra_proto::v1::run_service_client::RunServiceClient;
use tonic::transport::Channel;

use super::Sample;
use super::chain::connect_error;
use crate::client;
use crate::error::Result;
use crate::mesh::Mesh;
use crate::templates;

/// The fan-out template applied, ready to run.
pub struct Fanout {
    channel: Channel,
    template: String,
    phases: usize,
}

impl Fanout {
    /// Applies the fan-out template with `children` children.
    pub async fn prepare(mesh: &Mesh, children: usize) -> Result<Fanout> {
        let channel = client::channel(mesh.url()).await.map_err(connect_error)?;
        let template = format!("bench-fanout-{children}");
        let source = templates::fanout(&template, children);
        let phases = templates::phase_count(&source);
        client::apply_template(&channel, &template, source).await?;
        Ok(Fanout {
            channel,
            template,
            phases,
        })
    }

    /// Runs it once: the whole run's time and the time per phase.
    pub async fn once(&self) -> Result<Sample> {
        let mut runs = RunServiceClient::new(self.channel.clone());
        let began = Instant::now();
        let run_id = client::start_run(&mut runs, &self.template, false).await?;
        let watched = client::watch_to_end(&mut runs, &run_id).await?;
        let total = watched.ended_at.duration_since(began).as_secs_f64();
        Ok(vec![
            ("whole run".to_owned(), total, "s"),
            (
                "per phase".to_owned(),
                total * 1e6 / self.phases as f64,
                "µs",
            ),
        ])
    }
}
