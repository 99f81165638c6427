//! The gateway binary: reads `ORCHESTRA_GATEWAY_*` and `ORCHESTRA_WEB_*`,
//! binds, serves.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    orchestra_kit::start::main("orchestra-gateway", orchestra_gateway::serve).await
}
