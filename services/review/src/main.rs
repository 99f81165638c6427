//! The review service binary: reads `ORCHESTRA_REVIEW_*`, binds, serves.

use anyhow::Context;
use tokio::net::TcpListener;

use orchestra_review::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orchestra_kit::telemetry::init();
    let config = Config::from_env()?;
    let listener = TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
    orchestra_review::serve(config, listener, orchestra_kit::server::shutdown_signal()).await?;
    Ok(())
}
