//! The measurements: one throughput run of the load client against a running server (rate,
//! client and server CPU per message), and one idle-streams run against a fresh server (memory
//! per stream of the server and of the client).

use std::io::BufReader;
use std::path::Path;
use std::process::{ChildStderr, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use streamstorm_baseline::IDLE_TOPIC;
use streamstorm_driver::harness::process::{ServerProcess, cpu, rss_bytes, run_to_end, wait_for_streams};

use crate::setup::Workspace;

/// What one throughput run measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Messages (server streaming) or replies (unary) received per second.
    pub per_second: f64,
    /// The load client's CPU seconds per message received.
    pub client_cpu_per_message: f64,
    /// The server's CPU seconds per message sent.
    pub server_cpu_per_message: f64,
}

/// Drives `server` with the load in `profile` for `seconds`.
pub fn throughput(
    workspace: &Workspace,
    server: &ServerProcess,
    profile: &Path,
    seconds: f64,
    ticks: f64,
) -> Result<Throughput> {
    let report_path = workspace.scratch.join("throughput.json");
    let server_before = cpu(server.pid(), ticks)?.seconds;
    let client = workspace
        .client(profile, server.addr, seconds, &report_path)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let client_cpu = run_to_end(client, ticks, Duration::from_secs_f64(seconds + 30.0))?;
    let server_cpu = cpu(server.pid(), ticks)?.seconds - server_before;
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report_path)?)?;
    let received = report["messages"]["received"].as_f64().context("report without messages")?;
    let duration = report["duration_s"].as_f64().context("report without duration")?;
    let failed = report["streams"]["failed"].as_u64().unwrap_or(0);
    if received == 0.0 || failed > 0 {
        bail!("the run did not go cleanly: {received} messages received, {failed} calls failed");
    }
    Ok(Throughput {
        per_second: received / duration,
        client_cpu_per_message: client_cpu / received,
        server_cpu_per_message: server_cpu / received,
    })
}

/// What one idle-streams run measured.
#[derive(Debug, Clone, Copy)]
pub struct IdleMemory {
    pub streams: u64,
    /// Server RSS growth from before the client connected, per stream.
    pub server_bytes_per_stream: f64,
    /// Load client RSS growth from half the streams to all of them, per stream added.
    pub client_bytes_per_stream: f64,
}

/// Holds `streams` idle `Subscribe` streams (1,000 per connection) against a fresh server:
/// half of them first, then all, each step held `hold` so it can be measured.
pub fn idle_memory(
    workspace: &Workspace,
    server: ServerProcess,
    streams: u64,
    hold: Duration,
) -> Result<IdleMemory> {
    std::thread::sleep(Duration::from_millis(500));
    let server_idle = rss_bytes(server.pid())?;
    let connections = streams.div_ceil(1000);
    let scenario = format!(
        "method: myapp.NotificationService/Subscribe\n      streams: {streams}\n      \
         request: {{ topics: [{IDLE_TOPIC}] }}\n      ramp: {{ from: 0, over: {}ms, steps: 2 }}",
        hold.as_millis() * 2
    );
    let profile = workspace.load_profile("idle", connections as usize, &scenario)?;
    // Under two minutes, so progress comes every second.
    let seconds = (hold.as_secs_f64() * 2.0 + 60.0).min(115.0);
    let report = workspace.scratch.join("idle.json");
    let mut client = workspace
        .client(&profile, server.addr, seconds, &report)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut progress = BufReader::new(client.stderr.take().expect("stderr is piped"));
    let processes = Processes { client: client.id(), server: server.pid(), server_idle };
    let measured = measure_steps(&mut progress, processes, streams, hold, Duration::from_secs_f64(seconds));
    let _ = client.kill();
    let _ = client.wait();
    drop(server);
    measured
}

/// The processes of an idle-streams run, and the server's memory before the client came.
#[derive(Clone, Copy)]
struct Processes {
    client: u32,
    server: u32,
    server_idle: u64,
}

/// Reads both processes' memory once half the streams are open, and again once all are.
fn measure_steps(
    progress: &mut BufReader<ChildStderr>,
    processes: Processes,
    streams: u64,
    hold: Duration,
    limit: Duration,
) -> Result<IdleMemory> {
    let half = wait_for_streams(progress, streams / 2, hold * 2)?;
    let client_half = rss_bytes(processes.client)?;
    let full = wait_for_streams(progress, streams, limit)?;
    std::thread::sleep(Duration::from_secs(1));
    let client_full = rss_bytes(processes.client)?;
    let server_full = rss_bytes(processes.server)?;
    Ok(IdleMemory {
        streams: full,
        server_bytes_per_stream: (server_full as f64 - processes.server_idle as f64) / full as f64,
        client_bytes_per_stream: (client_full as f64 - client_half as f64) / (full - half).max(1) as f64,
    })
}
