//! The review service binary: reads `ORCHESTRA_REVIEW_*`, binds, serves.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    orchestra_kit::start::main("orchestra-review", orchestra_review::serve).await
}
