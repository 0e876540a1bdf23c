//! Figure 9: many concurrent streams held by `streamstorm serve` and the built-in load client
//! (`streamstorm simulate --target`), each its own process, opened in a ramp: the time until the
//! server holds them all, memory per stream on both sides once each has its first message, CPU
//! while they idle, and whether any connection or call was lost.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use streamstorm_baseline::IDLE_TOPIC;
use streamstorm_driver::harness::process::{ServerProcess, cpu, rss_bytes};

use crate::setup::Workspace;

/// How fast the client opens streams: below the ~12,600 a second that `serve` and the client
/// together reach on two cores. Opened faster (a million at once), the client process is so
/// busy that some connections miss the server's handshake timeout or their keepalive pings, and
/// are closed with their streams.
const OPENED_PER_SECOND: f64 = 10_000.0;

/// What holding the streams measured.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    pub streams: usize,
    pub connections: usize,
    /// From the client's start until the server counted every stream open.
    pub open_time: Duration,
    /// RSS growth per stream: the server from before the client started, the client from when
    /// the server saw its first stream (the client's own start-up left out).
    pub server_bytes_per_stream: f64,
    pub client_bytes_per_stream: f64,
    /// CPU while every stream idles, in cores (1.0 = one core busy).
    pub server_idle_cores: f64,
    pub client_idle_cores: f64,
    /// Connections the server closed on an error, and calls the client saw fail.
    pub connections_lost: f64,
    pub failed_calls: u64,
}

/// The run's size: streams over connections, held this long once all are open.
pub struct Size {
    pub streams: usize,
    pub connections: usize,
    pub hold: Duration,
}

/// Opens `size.streams` idle streams from the built-in client against a fresh streamstorm
/// server, holds them for `size.hold`, then stops the client (as Ctrl-C would) and reads its
/// report.
pub fn hold(workspace: &Workspace, stubs: &Path, size: &Size, ticks: f64) -> Result<Held> {
    let server = ServerProcess::start_with_metrics(workspace.streamstorm_server(stubs))?;
    // The client's own footprint: the same client holding one stream. The server is measured
    // after it, warmed by that call.
    let client_before = {
        let mut client = start_client(workspace, &server, 1, 1)?;
        wait_for(&server, Duration::from_secs(30), |active| active >= 1.0)?;
        std::thread::sleep(Duration::from_millis(500));
        let rss = rss_bytes(client.child.id())?;
        client.stop()?;
        rss
    };
    std::thread::sleep(Duration::from_millis(500));
    let server_before = rss_bytes(server.pid())?;
    let started = Instant::now();
    let mut client = start_client(workspace, &server, size.streams, size.connections)?;
    let open_limit =
        Duration::from_secs(60) + Duration::from_secs_f64(size.streams as f64 / OPENED_PER_SECOND);
    wait_for(&server, open_limit, |active| active >= size.streams as f64)?;
    let open_time = started.elapsed();
    println!("{} streams open after {:.1} s", size.streams, open_time.as_secs_f64());
    std::thread::sleep(Duration::from_secs(1));
    let per_stream = |after: u64, before: u64| (after as f64 - before as f64) / size.streams as f64;
    let server_bytes_per_stream = per_stream(rss_bytes(server.pid())?, server_before);
    let client_bytes_per_stream = per_stream(rss_bytes(client.child.id())?, client_before);
    let cpu_now = || -> Result<[f64; 2]> {
        Ok([cpu(server.pid(), ticks)?.seconds, cpu(client.child.id(), ticks)?.seconds])
    };
    let (idle_from, idle_since) = (cpu_now()?, Instant::now());
    std::thread::sleep(size.hold);
    let idle_to = cpu_now()?;
    let idle = idle_since.elapsed().as_secs_f64();
    let still_open = server.metric("streamstorm_streams_active")?;
    let connections_lost = closed_on_error(&server)?;
    if still_open < size.streams as f64 {
        bail!("only {still_open} of {} streams were still open after {:?}", size.streams, size.hold);
    }
    let failed_calls = client.stop()?;
    Ok(Held {
        streams: size.streams,
        connections: size.connections,
        open_time,
        server_bytes_per_stream,
        client_bytes_per_stream,
        server_idle_cores: (idle_to[0] - idle_from[0]) / idle,
        client_idle_cores: (idle_to[1] - idle_from[1]) / idle,
        connections_lost,
        failed_calls,
    })
}

/// The built-in client holding `streams` idle streams over `connections` against `server`,
/// until stopped.
fn start_client(
    workspace: &Workspace,
    server: &ServerProcess,
    streams: usize,
    connections: usize,
) -> Result<ClientProcess> {
    let ramp = Duration::from_secs_f64(streams as f64 / OPENED_PER_SECOND);
    let scenario = format!(
        "method: myapp.NotificationService/Subscribe\n      streams: {streams}\n      ramp: {{ from: 0, over: {}ms }}\n      request: {{ topics: [{IDLE_TOPIC}] }}",
        ramp.as_millis().max(1)
    );
    let profile = workspace.load_profile("held", connections, &scenario)?;
    let report = workspace.scratch.join("held.json");
    let child = workspace
        .client(&profile, server.addr, 24.0 * 3600.0, &report)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(ClientProcess { child, report })
}

/// Connections the server closed on an error (a GOAWAY for a protocol error or a flood among them).
fn closed_on_error(server: &ServerProcess) -> Result<f64> {
    server.metric("streamstorm_connections_closed_total{reason=\"error\"}")
}

/// Polls the server's open streams until `done` says so, or fails after `limit`.
fn wait_for(server: &ServerProcess, limit: Duration, done: impl Fn(f64) -> bool) -> Result<()> {
    let started = Instant::now();
    loop {
        let active = server.metric("streamstorm_streams_active")?;
        if done(active) {
            return Ok(());
        }
        if started.elapsed() > limit {
            bail!(
                "{active} streams open after {limit:?}; connections closed on error: {}",
                closed_on_error(server)?
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The load client and where it writes its report; killed if dropped before it is stopped.
struct ClientProcess {
    child: Child,
    report: PathBuf,
}

impl ClientProcess {
    /// Interrupts the client, waits for it to write its report, and returns the calls it saw
    /// fail.
    fn stop(&mut self) -> Result<u64> {
        // SAFETY: sending a signal to a child process we own and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let status = self.child.wait()?;
        if !status.success() && status.code() != Some(1) {
            bail!("the load client failed: {status}");
        }
        let report: Value = serde_json::from_str(&std::fs::read_to_string(&self.report)?)?;
        let failed = report["streams"]["failed"].as_u64().context("report without streams.failed")?;
        if failed > 0 {
            println!("the client's report: {} calls failed: {}", failed, report["errors"]);
        }
        Ok(failed)
    }
}

impl Drop for ClientProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
