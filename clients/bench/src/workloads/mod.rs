//! The workloads, one module each. Every workload is run once to warm up
//! and then `--reps` times; each repetition yields named values, and each
//! name becomes one printed figure. A workload that fails or outruns
//! `--timeout` is reported as not measured, and the others still run.

mod chain;
mod diamonds;
mod fanout;
mod idle;
mod watchers;

use std::future::Future;

use orchestra_proto::v1::run_event::Body;
use orchestra_proto::v1::{PhaseState, RunEvent};

use crate::cli::{Args, Workload};
use crate::error::{Error, Result};
use crate::mesh::Mesh;
use crate::report::Report;
use crate::stats::{Figure, percentile};

/// The values one repetition measured: (figure name, value, unit).
pub(crate) type Sample = Vec<(String, f64, &'static str)>;

/// Runs every chosen workload against the mesh.
pub async fn run_all(mesh: &Mesh, args: &Args, report: &Report) -> Result<()> {
    if args.runs(Workload::Idle) {
        // Idle first: right after start, before any run exists.
        let name = "idle";
        report_sample(
            report,
            mesh,
            name,
            idle::measure(mesh, args).await.map(|s| vec![s]),
        );
    }
    if args.runs(Workload::Chain) {
        let len = args.chain_len();
        let workload = chain::Chain::prepare(mesh, len).await?;
        let samples = repeat(args, &format!("W3 chain of {len}"), || workload.once()).await;
        report_sample(report, mesh, "W3", samples);
    }
    if args.runs(Workload::Diamond) {
        let workload = diamonds::Diamonds::prepare(mesh).await?;
        let samples = repeat(args, "W1s one diamond", || workload.alone()).await;
        report_sample(report, mesh, "W1s", samples);
    }
    if args.runs(Workload::Diamonds) {
        let workload = diamonds::Diamonds::prepare(mesh).await?;
        for in_flight in args.in_flight_levels() {
            let count = args.diamond_count();
            let samples = repeat(args, &format!("W1 {count} diamonds"), || {
                workload.many(count, in_flight)
            })
            .await;
            report_sample(
                report,
                mesh,
                &format!("W1 ({in_flight} in flight)"),
                samples,
            );
        }
    }
    if args.runs(Workload::Fanout) {
        for children in args.fanout_widths() {
            let workload = fanout::Fanout::prepare(mesh, children).await?;
            let samples = repeat(args, &format!("W2 fan-out of {children}"), || {
                workload.once()
            })
            .await;
            report_sample(report, mesh, &format!("W2 ({children} children)"), samples);
        }
    }
    if args.runs(Workload::Watchers) {
        let workload = watchers::Watchers::prepare(mesh).await?;
        for count in args.watcher_counts() {
            let samples = repeat(args, &format!("{count} watchers"), || {
                workload.once(mesh, count)
            })
            .await;
            report_sample(
                report,
                mesh,
                &format!("fan-out ({count} watchers)"),
                samples,
            );
        }
    }
    Ok(())
}

/// One warm-up, then the repetitions, each under the time limit.
async fn repeat<F, Fut>(args: &Args, workload: &str, mut once: F) -> Result<Vec<Sample>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Sample>>,
{
    let limit = args.time_limit();
    let mut samples = Vec::new();
    for rep in 0..=args.repetitions() {
        let sample = tokio::time::timeout(limit, once())
            .await
            .map_err(|_| Error::Timeout {
                workload: workload.to_owned(),
                limit,
                progress: if rep == 0 { "warm-up" } else { "a repetition" }.to_owned(),
            })??;
        if rep > 0 {
            samples.push(sample);
        }
    }
    Ok(samples)
}

/// Prints one line per named value, in the order the workload gave them.
fn report_sample(report: &Report, mesh: &Mesh, workload: &str, samples: Result<Vec<Sample>>) {
    let samples = match samples {
        Ok(samples) => samples,
        Err(error) => {
            report.missing(workload, mesh.label(), &error.to_string());
            return;
        }
    };
    let Some(first) = samples.first() else {
        return;
    };
    for (name, _, unit) in first {
        let values: Vec<f64> = samples
            .iter()
            .flat_map(|sample| {
                sample
                    .iter()
                    .filter(|(n, ..)| n == name)
                    .map(|(_, v, _)| *v)
            })
            .collect();
        if let Some(figure) = Figure::of(&values) {
            report.figure(&format!("{workload}: {name}"), mesh.label(), &figure, unit);
        }
    }
}

/// Milliseconds from each phase attempt being queued to its lease (the
/// RUNNING event), by the scheduler's clock: the dispatch latency.
pub(crate) fn dispatch_latencies_ms(events: &[RunEvent]) -> Vec<f64> {
    let mut queued = std::collections::HashMap::new();
    let mut latencies = Vec::new();
    for event in events {
        let RunEvent {
            body: Some(Body::PhaseStateChanged(change)),
            time,
            ..
        } = event
        else {
            continue;
        };
        let at = orchestra_kit::time::micros(time.as_ref());
        let key = (change.phase_id.clone(), change.attempt);
        if change.to == PhaseState::Queued as i32 {
            queued.insert(key, at);
        } else if change.to == PhaseState::Running as i32
            && let Some(since) = queued.remove(&key)
        {
            latencies.push((at - since) as f64 / 1e3);
        }
    }
    latencies
}

/// The p50 and p99 of a distribution as two values of a sample.
pub(crate) fn p50_p99(sample: &mut Sample, what: &str, values: &[f64], unit: &'static str) {
    sample.push((format!("{what} p50"), percentile(values, 50.0), unit));
    sample.push((format!("{what} p99"), percentile(values, 99.0), unit));
}
