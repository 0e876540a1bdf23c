//! The latency-fidelity benchmark: `cargo run --release -p streamstorm-driver --bin fidelity
//! [-- --quick]`.
//!
//! How closely does streamstorm keep the per-message latency a profile asks for? Starts
//! streamstorm (`latency: { per_message: 100ms }` on `Subscribe`) and a reference tonic server
//! that sleeps 100 ms before each message, then drives both with the driver at 1,000 and 10,000
//! concurrent streams over a few connections, runs alternating, and prints the gap error —
//! arrival gap between consecutive messages of a stream minus 100 ms — as percentiles and
//! long-run mean, with the ratio of streamstorm's p99 error to the reference's.
//!
//! Streams open in a ramp over one gap, so their messages are spread evenly in time rather than
//! due all at once.

mod servers;
mod table;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use streamstorm_driver::connect::raise_open_files_limit;
use streamstorm_driver::harness::process::{ServerProcess, cpu, ticks_per_second};
use streamstorm_driver::harness::workspace::Workspace;
use streamstorm_driver::{Call, LoadPlan, Opening, Outcome, Stop, Window};

use servers::{PACED_TOPIC, Server, start_both};
use table::{Measured, RunCpu};

/// The configured gap between messages, on both servers.
const GAP: Duration = Duration::from_millis(100);
/// HTTP/2 connections per run; the streams are spread evenly over them.
const CONNECTIONS: usize = 10;
/// Concurrent streams measured.
const STREAM_COUNTS: [usize; 2] = [1_000, 10_000];
/// Longer than this and a run is broken, not slow.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// How much a run measures.
struct Plan {
    /// Alternating (streamstorm, reference) pairs per stream count.
    rounds: usize,
    window: Window,
}

impl Plan {
    fn new(quick: bool) -> Self {
        let seconds = Duration::from_secs;
        if quick {
            Self { rounds: 1, window: Window { warmup: seconds(1), measure: seconds(3) } }
        } else {
            Self { rounds: 2, window: Window { warmup: seconds(2), measure: seconds(8) } }
        }
    }

    /// Messages per call: every stream outlasts its run by half again, so none re-opens inside
    /// the window (one that does just starts its gaps afresh).
    fn stream_messages(&self) -> u32 {
        let run = GAP + self.window.warmup + self.window.measure;
        (run.as_secs_f64() / GAP.as_secs_f64() * 1.5).ceil() as u32
    }
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let plan = Plan::new(quick);
    raise_open_files_limit().context("cannot raise the open-files limit")?;
    let workspace = Workspace::prepare("streamstorm-fidelity")?;
    let servers = start_both(&workspace, GAP, plan.stream_messages())?;
    let runtime = streamstorm_driver::runtime()?;
    let ticks = ticks_per_second();
    println!("Machine load average at the start: {}", load_average());
    let mut rows = Vec::new();
    for streams in STREAM_COUNTS {
        let mut measured = Server::BOTH.map(|server| Measured::new(streams, server));
        for round in 1..=plan.rounds {
            for (index, server) in servers.iter().enumerate() {
                let started = Instant::now();
                let cpu_before = run_cpu(server, ticks)?;
                let outcome = runtime.block_on(measure(server, streams, &plan))?;
                let cpu_after = run_cpu(server, ticks)?;
                let cpu = RunCpu {
                    server: cpu_after.server - cpu_before.server,
                    driver: cpu_after.driver - cpu_before.driver,
                };
                print_run(round, Server::BOTH[index], streams, &outcome);
                measured[index].absorb(&outcome, cpu, started.elapsed().as_secs_f64());
                // Let the server drop the cancelled streams before the other one is measured.
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        rows.extend(measured);
    }
    table::print(&rows, GAP.as_secs_f64() * 1000.0, CONNECTIONS);
    println!("Machine load average at the end: {}", load_average());
    Ok(())
}

/// CPU seconds so far of the server and of this process (the driver).
fn run_cpu(server: &ServerProcess, ticks: f64) -> Result<RunCpu> {
    Ok(RunCpu { server: cpu(server.pid(), ticks)?.seconds, driver: cpu(std::process::id(), ticks)?.seconds })
}

/// `/proc/loadavg`'s 1, 5 and 15 minute averages: how busy the shared machine was.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// One run of `streams` paced streams against `server`, bounded by [`RUN_LIMIT`].
async fn measure(server: &ServerProcess, streams: usize, plan: &Plan) -> Result<Outcome> {
    let load = LoadPlan {
        target: server.addr,
        connections: CONNECTIONS,
        slots_per_connection: streams.div_ceil(CONNECTIONS),
        call: Call::subscribe(&[PACED_TOPIC]),
        opening: Opening::Ramp(GAP),
        window: plan.window,
        stop: Stop::EndOfWindow,
        expected_gap: Some(GAP),
    };
    let outcome =
        tokio::time::timeout(RUN_LIMIT, streamstorm_driver::run(&load)).await.context("run timed out")??;
    if outcome.gaps.as_ref().is_none_or(|gaps| gaps.is_empty()) {
        bail!("no gaps measured ({} calls failed, first error: {:?})", outcome.failed, outcome.first_error);
    }
    Ok(outcome)
}

fn print_run(round: usize, server: Server, streams: usize, outcome: &Outcome) {
    let gaps = outcome.gaps.as_ref().expect("checked by measure");
    println!(
        "{streams:>6} streams, round {round}: {:<11} {:>8.0} msg/s  gap error p50 {:+.3} ms  p99 {:+.3} ms  max {:+.3} ms{}",
        server.name(),
        outcome.per_second(),
        gaps.quantile(0.5) as f64 / 1000.0,
        gaps.quantile(0.99) as f64 / 1000.0,
        gaps.max() as f64 / 1000.0,
        outcome
            .first_error
            .as_ref()
            .map(|status| format!("  ({} failed: {status})", outcome.failed))
            .unwrap_or_default(),
    );
}
