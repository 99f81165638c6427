//! The artifact store binary: reads its configuration, binds, and serves
//! until Ctrl-C or SIGTERM.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    orchestra_kit::start::main("orchestra-artifact-store", orchestra_artifact_store::serve).await
}
