//! The artifact store binary: reads its configuration, binds, and serves
//! until Ctrl-C or SIGTERM.

use orchestra_artifact_store::{Config, serve};
use orchestra_kit::{server::shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    telemetry::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    serve(config, listener, shutdown_signal()).await?;
    Ok(())
}
