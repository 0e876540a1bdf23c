//! The end-to-end benchmark: `cargo run --release -p streamstorm-bench [-- --quick]`.
//!
//! Starts streamstorm (`serve --profile benches/e2e/profile.yaml`, stubs sending the baseline's
//! messages, a chaos plan injecting nothing, metrics on) and the baseline tonic server as
//! separate processes on loopback, drives both with the driver (`streamstorm-driver`, a static
//! tonic client, so the client does not hide the server), alternating runs, and prints the
//! figures as ratios:
//!
//! 1. server-streaming messages/s and server CPU per message, streamstorm / baseline;
//! 2. unary calls/s and server CPU per call, streamstorm / baseline;
//! 3. server memory per idle stream, once every stream has received its first message, opened
//!    in a burst and in a ramp, against the baseline, grpc-java's 2.45 KB and the 2 KiB goal;
//! 4. the built-in load client (`streamstorm simulate --target`) against the driver on the same
//!    streamstorm server: messages/s and client CPU per message, built-in / driver;
//! 5. to 8. the baseline server through `streamstorm proxy` against the baseline directly
//!    ([`proxied`]): streaming and unary rates, the unary latency the proxy adds, and proxy
//!    memory per idle proxied stream.
//!
//! 9. one million idle streams held by `serve` and the built-in client, each its own process
//!    ([`million`]): time to open, memory per stream on both sides, CPU while idle, anything lost.
//!
//! `--proxy-only` measures figures 5–8 alone, `--idle-only` figure 3, `--held-only` figure 9,
//! `--throughput-only` figures 1, 2 and 4.

mod builtin;
mod driven;
mod latency;
mod million;
mod proxied;
mod setup;
mod table;

use std::time::Duration;

use anyhow::Result;
use streamstorm_driver::connect::raise_open_files_limit;
use streamstorm_driver::harness::process::{ServerKind, ServerProcess, ticks_per_second};
use streamstorm_driver::{Call, Opening};
use tokio::runtime::Runtime;

use driven::{Shape, Throughput};
use setup::{LOAD_TOPIC, Workspace};
use table::{Figures, IdleRow, Pairs};

/// How much a run measures.
struct Plan {
    /// Alternating pairs per throughput figure.
    pairs: usize,
    /// Length of one throughput run.
    seconds: f64,
    /// Idle stream counts for figure 3.
    idle_streams: Vec<usize>,
    /// Figure 3b: streams opened in one burst, and the connections they share.
    burst: (usize, usize),
    /// Idle proxied stream counts for figure 8.
    proxy_idle_streams: Vec<usize>,
    /// Figure 9: streams held by `serve` and the built-in client.
    held: million::Size,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                pairs: 1,
                seconds: 2.0,
                idle_streams: vec![5_000],
                burst: (20_000, 4),
                proxy_idle_streams: vec![2_000],
                held: million::Size { streams: 20_000, connections: 20, hold: Duration::from_secs(5) },
            }
        } else {
            Self {
                pairs: 3,
                seconds: 5.0,
                idle_streams: vec![10_000, 50_000, 100_000],
                burst: (200_000, 40),
                proxy_idle_streams: vec![10_000],
                held: million::Size { streams: 1_000_000, connections: 1_000, hold: Duration::from_secs(60) },
            }
        }
    }
}

/// A ramp for `streams` idle streams: 10,000 a second.
fn ramp(streams: usize) -> Opening {
    Opening::Ramp(Duration::from_micros(streams as u64 * 100))
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let proxy_only = std::env::args().any(|arg| arg == "--proxy-only");
    let idle_only = std::env::args().any(|arg| arg == "--idle-only");
    let held_only = std::env::args().any(|arg| arg == "--held-only");
    let throughput_only = std::env::args().any(|arg| arg == "--throughput-only");
    let plan = Plan::new(quick);
    raise_open_files_limit()?;
    // Calls of 100 messages: a stream's opening and end weigh on the rate, as they do in use.
    let workspace = Workspace::prepare(100)?;
    let stubs = workspace.write_stubs()?;
    let runtime = streamstorm_driver::runtime()?;
    let ticks = ticks_per_second();
    let start = |kind: ServerKind| match kind {
        ServerKind::Streamstorm => ServerProcess::start(workspace.streamstorm_server(&stubs)),
        ServerKind::Baseline => ServerProcess::start(workspace.baseline_server()),
    };
    // Notifications counted, not decoded: the driver spends the least it can per message.
    let streaming =
        Shape { call: Call::subscribe_counting(&[LOAD_TOPIC]), connections: 4, per_connection: 64 };
    // Enough calls in flight that unary runs are bound by CPU rather than by round trips.
    let unary =
        Shape { call: Call::GetUser { user_id: "alice".into() }, connections: 4, per_connection: 256 };

    if held_only {
        table::print_held(&million::hold(&workspace, &stubs, &plan.held, ticks)?);
        return Ok(());
    }
    if idle_only {
        table::print_idle(&idle_rows(&runtime, &plan, &start)?);
        return Ok(());
    }
    let runs = ThroughputRuns { workspace: &workspace, runtime: &runtime, plan: &plan, ticks };
    let measure_proxy = || proxied::measure(&runs, &streaming, &unary, &|| start(ServerKind::Baseline));
    if proxy_only {
        table::print_proxy(&measure_proxy()?);
        return Ok(());
    }
    let proxy = (!throughput_only).then(measure_proxy).transpose()?;
    let servers = [start(ServerKind::Streamstorm)?, start(ServerKind::Baseline)?];
    let names = [ServerKind::Streamstorm.name(), ServerKind::Baseline.name()];
    let streamed = runs.compare("streaming", &servers, names, &streaming)?;
    let unaries = runs.compare("unary", &servers, names, &unary)?;
    let clients = runs.compare_clients(&servers[0], &streaming)?;
    drop(servers);
    let Some(proxy) = proxy else {
        table::print(&Figures { streamed, unaries, idle: Vec::new(), clients });
        return Ok(());
    };

    let idle = idle_rows(&runtime, &plan, &start)?;
    let held = million::hold(&workspace, &stubs, &plan.held, ticks)?;
    table::print(&Figures { streamed, unaries, idle, clients });
    table::print_held(&held);
    table::print_proxy(&proxy);
    Ok(())
}

/// What every throughput run needs.
pub struct ThroughputRuns<'a> {
    workspace: &'a Workspace,
    runtime: &'a Runtime,
    plan: &'a Plan,
    ticks: f64,
}

impl ThroughputRuns<'_> {
    /// Figures 1, 2, 5 and 6: the driver against both servers (named `names`), a one-second
    /// warm-up each, then alternating pairs.
    fn compare(
        &self,
        label: &str,
        servers: &[ServerProcess; 2],
        names: [&str; 2],
        shape: &Shape,
    ) -> Result<Pairs> {
        for server in servers {
            driven::throughput(self.runtime, server, shape, 1.0, self.ticks)?;
        }
        let mut runs = Pairs::default();
        for pair in 1..=self.plan.pairs {
            for (index, name) in names.into_iter().enumerate() {
                let run =
                    driven::throughput(self.runtime, &servers[index], shape, self.plan.seconds, self.ticks)?;
                runs[index].push(report(&format!("{label} run {pair}: {name:<11}"), run));
            }
        }
        Ok(runs)
    }

    /// Figure 4: the built-in load client and the driver, alternating, against `server` with the
    /// same streaming load.
    fn compare_clients(&self, server: &ServerProcess, streaming: &Shape) -> Result<Pairs> {
        let scenario = format!(
            "method: myapp.NotificationService/Subscribe\n      streams: {}\n      request: {{ topics: [{LOAD_TOPIC}] }}",
            streaming.connections * streaming.per_connection
        );
        let profile = self.workspace.load_profile("streaming", streaming.connections, &scenario)?;
        let (seconds, ticks) = (self.plan.seconds, self.ticks);
        let mut runs = Pairs::default();
        for pair in 1..=self.plan.pairs {
            let run = builtin::throughput(self.workspace, server, &profile, seconds, ticks)?;
            runs[0].push(report(&format!("clients run {pair}: built-in"), run));
            let run = driven::throughput(self.runtime, server, streaming, seconds, ticks)?;
            runs[1].push(report(&format!("clients run {pair}: driver  "), run));
        }
        Ok(runs)
    }
}

/// Prints one run's figures as it ends.
fn report(label: &str, run: Throughput) -> Throughput {
    println!(
        "{label} {:>9.0}/s  client {:.2} µs/msg  server {:.2} µs/msg",
        run.per_second,
        run.client_cpu_per_message * 1e6,
        run.server_cpu_per_message * 1e6
    );
    run
}

/// Figure 3: for each stream count and opening, a fresh server of each kind.
fn idle_rows(
    runtime: &Runtime,
    plan: &Plan,
    start: &dyn Fn(ServerKind) -> Result<ServerProcess>,
) -> Result<Vec<IdleRow>> {
    let mut rows = Vec::new();
    for &streams in &plan.idle_streams {
        for opening in [Opening::Burst, ramp(streams)] {
            let name = match opening {
                Opening::Burst => "burst".to_owned(),
                Opening::Ramp(over) => format!("ramp over {over:?}"),
            };
            rows.push(idle_row(runtime, start, streams, 1000, opening, name)?);
        }
    }
    let (streams, connections) = plan.burst;
    let name = format!("burst over {connections} connections");
    rows.push(idle_row(runtime, start, streams, streams / connections, Opening::Burst, name)?);
    Ok(rows)
}

/// One row of figure 3: the same idle streams against a fresh server of each kind.
fn idle_row(
    runtime: &Runtime,
    start: &dyn Fn(ServerKind) -> Result<ServerProcess>,
    streams: usize,
    per_connection: usize,
    opening: Opening,
    name: String,
) -> Result<IdleRow> {
    let kinds = [ServerKind::Streamstorm, ServerKind::Baseline];
    let mut sides = Vec::new();
    for kind in kinds {
        let idle = driven::idle_streams(runtime, start(kind)?, streams, per_connection, opening)?;
        println!(
            "idle {streams} streams, {name}: {:<11} server {:.0} B/stream, opened in {:.1} s, {} calls failed on {} connections",
            kind.name(),
            idle.bytes_per_stream,
            idle.open_time.as_secs_f64(),
            idle.failed_calls,
            idle.failed_connections,
        );
        sides.push(idle);
    }
    Ok(IdleRow { streams, opening: name, sides: [sides[0], sides[1]] })
}
