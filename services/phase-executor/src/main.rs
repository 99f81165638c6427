//! Starts a phase executor, configured by `ORCHESTRA_EXECUTOR_*` variables.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    orchestra_kit::start::main("orchestra-phase-executor", orchestra_phase_executor::serve).await
}
