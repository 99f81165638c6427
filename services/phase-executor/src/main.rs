//! Starts a phase executor, configured by `ORCHESTRA_EXECUTOR_*` variables.

use orchestra_phase_executor::{Config, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    orchestra_kit::telemetry::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("orchestra-phase-executor: {error}");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    serve(config, listener, orchestra_kit::server::shutdown_signal()).await?;
    Ok(())
}
