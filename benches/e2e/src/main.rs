//! The end-to-end benchmark: `cargo run --release -p streamstorm-bench [-- --quick]`.
//!
//! Starts streamstorm (`serve --profile benches/e2e/profile.yaml`, stubs sending the baseline's
//! messages, a chaos plan injecting nothing, metrics on) and the baseline tonic server as
//! separate processes on loopback, drives both with the same load client (`streamstorm
//! simulate --target`), alternating runs, and prints four figures as ratios:
//!
//! 1. server-streaming messages/s, streamstorm / baseline;
//! 2. unary calls/s, streamstorm / baseline;
//! 3. resident memory per idle stream (server and load client) at 10k, 50k and 100k streams,
//!    against grpc-java's 2.45 KB and the 2 KiB goal;
//! 4. the load client's CPU per message against the server's.

mod figures;
mod setup;

use std::time::Duration;

use anyhow::Result;

use figures::{IdleMemory, Throughput, idle_memory, throughput};
use setup::{LOAD_TOPIC, Workspace};
use streamstorm_driver::harness::process::{ServerKind, ServerProcess, ticks_per_second};

/// grpc-java's memory per idle stream, in bytes (2.45 KB).
const GRPC_JAVA_BYTES_PER_STREAM: f64 = 2450.0;
/// The goal: at most 2 KiB of server memory per idle stream.
const GOAL_BYTES_PER_STREAM: f64 = 2048.0;
/// The goal for figures 1 and 2: at least this share of the baseline.
const GOAL_THROUGHPUT_RATIO: f64 = 0.85;

/// How much a run measures.
struct Plan {
    /// Alternating pairs (streamstorm, baseline) per throughput figure.
    pairs: usize,
    /// Length of one throughput run.
    seconds: f64,
    /// Idle stream counts for figure 3, and how long each half step is held.
    idle_streams: Vec<(u64, Duration)>,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self { pairs: 1, seconds: 2.0, idle_streams: vec![(5_000, Duration::from_secs(3))] }
        } else {
            Self {
                pairs: 3,
                seconds: 5.0,
                idle_streams: vec![
                    (10_000, Duration::from_secs(5)),
                    (50_000, Duration::from_secs(12)),
                    (100_000, Duration::from_secs(25)),
                ],
            }
        }
    }
}

fn main() -> Result<()> {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let plan = Plan::new(quick);
    let workspace = Workspace::prepare(1000)?;
    let stubs = workspace.write_stubs()?;
    let ticks = ticks_per_second();
    let start = |kind: ServerKind| match kind {
        ServerKind::Streamstorm => ServerProcess::start(workspace.streamstorm_server(&stubs)),
        ServerKind::Baseline => ServerProcess::start(workspace.baseline_server()),
    };

    let streaming = workspace.load_profile(
        "streaming",
        2,
        &format!("method: myapp.NotificationService/Subscribe\n      streams: 32\n      request: {{ topics: [{LOAD_TOPIC}] }}"),
    )?;
    // Enough calls in flight that unary runs are bound by CPU rather than by round trips.
    let unary = workspace.load_profile(
        "unary",
        4,
        "method: myapp.UserService/GetUser\n      streams: 256\n      request: { user_id: alice }",
    )?;
    let servers = [start(ServerKind::Streamstorm)?, start(ServerKind::Baseline)?];
    let kinds = [ServerKind::Streamstorm, ServerKind::Baseline];
    let compare = |label: &str, profile: &std::path::Path| -> Result<[Vec<Throughput>; 2]> {
        // A short warm-up each, then A B A B …
        for server in &servers {
            throughput(&workspace, server, profile, 1.0, ticks)?;
        }
        let mut runs: [Vec<Throughput>; 2] = Default::default();
        for pair in 0..plan.pairs {
            for (index, server) in servers.iter().enumerate() {
                let run = throughput(&workspace, server, profile, plan.seconds, ticks)?;
                println!(
                    "{label} run {}: {:<11} {:>9.0}/s  client {:.2} µs/msg  server {:.2} µs/msg",
                    pair + 1,
                    kinds[index].name(),
                    run.per_second,
                    run.client_cpu_per_message * 1e6,
                    run.server_cpu_per_message * 1e6
                );
                runs[index].push(run);
            }
        }
        Ok(runs)
    };
    let streamed = compare("streaming", &streaming)?;
    let unaries = compare("unary", &unary)?;
    drop(servers);

    let mut memory: Vec<[IdleMemory; 2]> = Vec::new();
    for &(streams, hold) in &plan.idle_streams {
        let mut pair = Vec::new();
        for kind in kinds {
            let measured = idle_memory(&workspace, start(kind)?, streams, hold)?;
            println!(
                "idle {streams} streams: {:<11} server {:.0} B/stream, load client {:.0} B/stream ({} open)",
                kind.name(),
                measured.server_bytes_per_stream,
                measured.client_bytes_per_stream,
                measured.streams
            );
            pair.push(measured);
        }
        memory.push([pair[0], pair[1]]);
    }
    print_table(&streamed, &unaries, &memory);
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 0 { (values[middle - 1] + values[middle]) / 2.0 } else { values[middle] }
}

/// The median over pairs of streamstorm / baseline, and the median of each side.
fn ratio_of(runs: &[Vec<Throughput>; 2], value: impl Fn(&Throughput) -> f64) -> (f64, f64, f64) {
    let ratios = runs[0].iter().zip(&runs[1]).map(|(ours, theirs)| value(ours) / value(theirs)).collect();
    let side = |index: usize| median(runs[index].iter().map(&value).collect());
    (median(ratios), side(0), side(1))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn print_table(streamed: &[Vec<Throughput>; 2], unaries: &[Vec<Throughput>; 2], memory: &[[IdleMemory; 2]]) {
    println!();
    println!("| figure | streamstorm | baseline | ratio | goal |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, runs) in [("1. server streaming, msg/s", streamed), ("2. unary, calls/s", unaries)] {
        let (ratio, ours, theirs) = ratio_of(runs, |run| run.per_second);
        println!(
            "| {label} | {ours:.0} | {theirs:.0} | {ratio:.2} | ≥ {GOAL_THROUGHPUT_RATIO:.2}: {} |",
            verdict(ratio >= GOAL_THROUGHPUT_RATIO)
        );
    }
    // Calls/s swing with the machine's other load; CPU per call is the steadier comparison.
    let (ratio, ours, theirs) = ratio_of(unaries, |run| run.server_cpu_per_message);
    println!(
        "| 2. unary, server CPU per call | {:.1} µs | {:.1} µs | {ratio:.2} (baseline / streamstorm: {:.2}) | |",
        ours * 1e6,
        theirs * 1e6,
        1.0 / ratio
    );
    for [ours, theirs] in memory {
        let per_stream = ours.server_bytes_per_stream;
        println!(
            "| 3. server memory per idle stream at {}k | {per_stream:.0} B | {:.0} B | {:.2} × baseline, {:.2} × grpc-java 2.45 KB, {:.2} × 2 KiB | ≤ 2 KiB: {} |",
            ours.streams / 1000,
            theirs.server_bytes_per_stream,
            per_stream / theirs.server_bytes_per_stream,
            per_stream / GRPC_JAVA_BYTES_PER_STREAM,
            per_stream / GOAL_BYTES_PER_STREAM,
            verdict(per_stream <= GOAL_BYTES_PER_STREAM)
        );
        println!(
            "| 3. load client memory per idle stream at {}k | {:.0} B (against streamstorm) | {:.0} B (against baseline) | {:.2} × grpc-java 2.45 KB | |",
            ours.streams / 1000,
            ours.client_bytes_per_stream,
            theirs.client_bytes_per_stream,
            ours.client_bytes_per_stream / GRPC_JAVA_BYTES_PER_STREAM
        );
    }
    let client = median(streamed[0].iter().map(|run| run.client_cpu_per_message).collect());
    let server = median(streamed[0].iter().map(|run| run.server_cpu_per_message).collect());
    let baseline_server = median(streamed[1].iter().map(|run| run.server_cpu_per_message).collect());
    println!(
        "| 4. CPU per streamed message: load client / server | client {:.2} µs, server {:.2} µs | server {:.2} µs | {:.2} | < 1: {} |",
        client * 1e6,
        server * 1e6,
        baseline_server * 1e6,
        client / server,
        verdict(client < server)
    );
}
