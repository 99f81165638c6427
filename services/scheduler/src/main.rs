//! Starts the scheduler alone, configured by `ORCHESTRA_SCHEDULER_*` variables.

use orchestra_scheduler::{Config, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orchestra_kit::telemetry::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("orchestra-scheduler: {error}");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    serve(config, listener, orchestra_kit::server::shutdown_signal()).await?;
    Ok(())
}
