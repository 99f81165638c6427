//! Starts the scheduler alone, configured by `ORCHESTRA_SCHEDULER_*` variables.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    orchestra_kit::start::main("orchestra-scheduler", orchestra_scheduler::serve).await
}
