//! Idle: nothing runs, so nothing should happen. Database transactions per
//! second (Postgres counts them; SQLite does not, so only CPU shows polling
//! there), CPU time per second and resident memory of the mesh's processes.

use std::time::Duration;

use super::Sample;
use crate::cli::Args;
use crate::error::Result;
use crate::mesh::Mesh;

/// Lets start-up work (migrations, first connections) settle before
/// measuring, and Postgres publish its counts of it: a backend that goes
/// idle reports its transactions up to 10 s late (`PGSTAT_IDLE_INTERVAL`;
/// seen here 11 s after serving began), so a shorter wait counts start-up
/// (or the previous workload) as idle.
const SETTLE: Duration = Duration::from_secs(15);
/// The same for `--smoke`, which checks the workload runs, not its figure.
const SMOKE_SETTLE: Duration = Duration::from_millis(500);

/// Measures the mesh doing nothing for `--idle-secs`.
pub async fn measure(mesh: &Mesh, args: &Args) -> Result<Sample> {
    tokio::time::sleep(if args.smoke { SMOKE_SETTLE } else { SETTLE }).await;
    let window = args.idle_window();
    let transactions_before = mesh.committed_transactions().await?;
    let cpu_before = mesh.cpu_time();
    tokio::time::sleep(window).await;
    let cpu_after = mesh.cpu_time();
    let transactions_after = mesh.committed_transactions().await?;
    let secs = window.as_secs_f64();
    let mut sample = Vec::new();
    if let (Some(before), Some(after)) = (transactions_before, transactions_after) {
        let counted = (after - before).max(0) as f64;
        sample.push((
            "db transactions per second".to_owned(),
            counted / secs,
            "tx/s",
        ));
    }
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let used = after.saturating_sub(before).as_secs_f64() * 1e3;
        sample.push(("CPU per second".to_owned(), used / secs, "ms/s"));
    }
    if let Some(kib) = mesh.resident_kib() {
        sample.push(("resident memory".to_owned(), kib as f64 / 1024.0, "MiB"));
    }
    Ok(sample)
}
