//! The proxy figures: the baseline tonic server driven once directly and once through
//! `streamstorm proxy` (the release binary, a plan that injects nothing), in the same run and
//! with the same driver, as ratios:
//!
//! 5. server-streaming messages/s through the proxy / direct (goal ≥ 0.8);
//! 6. unary calls/s through the proxy / direct (goal ≥ 0.8);
//! 7. the median round trip a unary call gains through the proxy (goal ≤ 100 µs);
//! 8. proxy memory per idle proxied stream (RSS growth of the proxy process).

use std::time::Duration;

use anyhow::Result;
use streamstorm_driver::Opening;
use streamstorm_driver::harness::process::ServerProcess;
use tokio::runtime::Runtime;

use crate::driven::{self, Shape};
use crate::latency::median_round_trips;
use crate::setup::Workspace;
use crate::table::Pairs;
use crate::{Plan, ThroughputRuns};

/// Sequential unary batches per target for figure 7.
const LATENCY_BATCHES: usize = 8;

/// What the proxy figures measured.
pub struct ProxyFigures {
    /// `[through the proxy, direct]` per pair.
    pub streamed: Pairs,
    pub unaries: Pairs,
    /// Median unary round trip, `[through the proxy, direct]`.
    pub round_trips: [Duration; 2],
    /// Proxy bytes per idle proxied stream, per stream count.
    pub idle: Vec<(usize, f64)>,
}

/// Measures figures 5–8 against a baseline server of its own.
pub fn measure(
    runs: &ThroughputRuns,
    streaming: &Shape,
    unary: &Shape,
    start_baseline: &dyn Fn() -> Result<ServerProcess>,
) -> Result<ProxyFigures> {
    let baseline = start_baseline()?;
    let proxy = ServerProcess::start(runs.workspace.proxy_server(baseline.addr))?;
    let servers = [proxy, baseline];
    let names = ["proxied", "direct"];
    let streamed = runs.compare("proxy streaming", &servers, names, streaming)?;
    let unaries = runs.compare("proxy unary", &servers, names, unary)?;
    let round_trips = median_round_trips(runs.runtime, [servers[0].addr, servers[1].addr], LATENCY_BATCHES)?;
    println!(
        "unary round trip, median: proxied {:.1} µs, direct {:.1} µs",
        micros(round_trips[0]),
        micros(round_trips[1])
    );
    let [proxy, baseline] = servers;
    drop(proxy);
    let idle = idle_proxied(runs.runtime, runs.workspace, runs.plan, &baseline)?;
    Ok(ProxyFigures { streamed, unaries, round_trips, idle })
}

/// Figure 8: for each stream count, a fresh proxy in front of `baseline`, its RSS growth per
/// idle stream opened in a ramp.
fn idle_proxied(
    runtime: &Runtime,
    workspace: &Workspace,
    plan: &Plan,
    baseline: &ServerProcess,
) -> Result<Vec<(usize, f64)>> {
    let mut rows = Vec::new();
    for &streams in &plan.proxy_idle_streams {
        let proxy = ServerProcess::start(workspace.proxy_server(baseline.addr))?;
        let ramp = Opening::Ramp(Duration::from_micros(streams as u64 * 100));
        let bytes = driven::idle_streams(runtime, proxy, streams, 1000, ramp)?.bytes_per_stream;
        println!("idle {streams} proxied streams: proxy {bytes:.0} B/stream");
        rows.push((streams, bytes));
    }
    Ok(rows)
}

pub fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
