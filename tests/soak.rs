//! Soak: a `serve` process under chaos (aborts, mid-stream failures, stream resets, message
//! caps, stream timeouts, GOAWAY with a grace, a maximum connection age) churned by rounds of
//! `simulate --target` processes calling every kind of method. After each round, once the load
//! has stopped, the server must be back where it started: no connection and no stream open,
//! the runtime's tasks and the open descriptors at their idle figures, and resident memory
//! within noise of its figure after a warm-up round. The load client's memory is sampled over
//! each of its runs and must stay flat too.
//!
//! `STREAMSTORM_SOAK_SECS` sets the total load time (default 120: a CI-sized run of about two
//! and a half minutes); README.md's "Soak" section gives the hour-long command.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::scrape::{get, parse_samples, sum};
use common::{
    ServeProcess, path_str, resident_bytes, spawn_serve_process, spawn_simulate_process, write_profile,
};

/// Faults on every method, connections drained by age and by GOAWAY faults; the default
/// responder's streams are short (20 messages 5 ms apart), so streams end and reopen quickly.
const PROFILE: &str = r#"
  limits:
    stream_timeout: 2s
chaos:
  seed: 7
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      latency: { first_message: 0ms..5ms }
      abort: { rate: 3%, code: UNAVAILABLE }
      fail: { rate: 5%, after_messages: 1..10, codes: { INTERNAL: 1, UNAVAILABLE: 1 } }
      disconnect: { rate: 3%, after_messages: 1..10, mode: reset_stream }
      message_cap: 15
    - match: { method: myapp.ChatService/Chat }
      fail: { rate: 5%, after_messages: 1..8, code: INTERNAL }
      disconnect: { rate: 0.5%, after_messages: 1..5, mode: goaway, grace: 300ms }
      stream_timeout: 1500ms
    - match: { method: myapp.UploadService/UploadFile }
      abort: { rate: 5%, code: RESOURCE_EXHAUSTED }
      disconnect: { rate: 3%, after: 5ms..30ms, mode: reset_stream }
    - abort: { rate: 5%, code: UNAVAILABLE }
  connections: { max_age: 4s, max_age_grace: 500ms }
load:
  connections: 4
  scenarios:
    - method: myapp.UserService/GetUser
      streams: 4
      request: { user_id: 'u{{stream.id}}' }
      think_time: 5ms..15ms
      reconnect: { initial_backoff: 10ms, max_backoff: 100ms }
    - method: myapp.NotificationService/Subscribe
      streams: 24
      request: { topics: [soak] }
      reconnect: { initial_backoff: 10ms, max_backoff: 100ms }
    - method: myapp.UploadService/UploadFile
      streams: 8
      request: { data: 'AAAA', sequence: 1 }
      messages_per_stream: 5
      send_rate: { per_second: 200 }
      reconnect: { initial_backoff: 10ms, max_backoff: 100ms }
    - method: myapp.ChatService/Chat
      streams: 8
      request: { user_id: soak, content: hello }
      messages_per_stream: 10
      send_rate: { per_second: 100 }
      reconnect: { initial_backoff: 10ms, max_backoff: 100ms }
"#;

/// The first round warms up (allocator arenas, lazily registered metrics); the others churn.
const ROUNDS: u32 = 6;
/// How long the server may take to close what the load left once it stops: the GOAWAY and
/// maximum-age graces are under a second; the rest is a loaded machine's slack.
const SETTLE: Duration = Duration::from_secs(20);
/// Resident memory may end this far above its post-warm-up figure: allocators keep freed pages
/// and fragment; measured runs moved by a few MiB either way (see README.md, "Soak").
const RSS_NOISE_BYTES: u64 = 16 * 1024 * 1024;
const RSS_NOISE_FRACTION: f64 = 0.10;

/// What the server looked like once a round's load had stopped.
#[derive(Debug, Clone, Copy)]
struct Sample {
    resident: u64,
    tasks: f64,
    fds: f64,
    streams_started: f64,
    connections_accepted: f64,
}

/// The load client's resident memory early in its run and at its end.
#[derive(Debug, Clone, Copy)]
struct ClientMemory {
    early: u64,
    last: u64,
}

fn soak_duration() -> Duration {
    let secs = std::env::var("STREAMSTORM_SOAK_SECS").ok().map_or(120, |secs| {
        secs.parse().unwrap_or_else(|_| panic!("STREAMSTORM_SOAK_SECS={secs:?} is not a number of seconds"))
    });
    Duration::from_secs(secs)
}

async fn scrape(metrics: SocketAddr) -> Vec<(common::scrape::Series, f64)> {
    parse_samples(&get(metrics, "/metrics").await)
}

/// Polls the server until no connection or stream is open and its tasks and descriptors are
/// back at `idle` (when given), then samples it; panics with the last figures after [`SETTLE`].
async fn settle(server: &ServeProcess, idle: Option<(f64, f64)>, round: u32) -> Sample {
    let pid = server.child.id().expect("the server runs");
    let deadline = Instant::now() + SETTLE;
    loop {
        let samples = scrape(server.metrics).await;
        let connections = sum(&samples, "streamstorm_connections_active", &[]);
        let streams = sum(&samples, "streamstorm_streams_active", &[]);
        let tasks = sum(&samples, "streamstorm_runtime_tasks_alive", &[]);
        let fds = sum(&samples, "streamstorm_process_open_fds", &[]);
        let back = idle.is_none_or(|(idle_tasks, idle_fds)| tasks == idle_tasks && fds == idle_fds);
        if connections == 0.0 && streams == 0.0 && back {
            let streams_started = sum(&samples, "streamstorm_streams_started_total", &[]);
            let connections_accepted = sum(&samples, "streamstorm_connections_accepted_total", &[]);
            return Sample {
                resident: resident_bytes(pid),
                tasks,
                fds,
                streams_started,
                connections_accepted,
            };
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: {SETTLE:?} after the load stopped, {connections} connections and {streams} \
             streams are open, {tasks} tasks alive and {fds} descriptors open (idle: {idle:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs one `simulate --target` process for `duration`, sampling its memory as it goes.
async fn load_round(profile: &Path, target: SocketAddr, duration: Duration) -> ClientMemory {
    let target = target.to_string();
    let duration_arg = format!("{}ms", duration.as_millis());
    let mut client = spawn_simulate_process(&[
        "--profile",
        path_str(profile),
        "--target",
        &target,
        "--duration",
        &duration_arg,
    ])
    .await;
    let pid = client.child.id().expect("simulate runs");
    let started = Instant::now();
    let mut early = None;
    let mut last = 0;
    let status = loop {
        tokio::select! {
            status = client.child.wait() => break status.unwrap(),
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                // The process may have ended since the wait (a zombie reports no memory).
                let Some(resident) = common::resident_bytes_now(pid) else { continue };
                last = resident;
                // Early: once the scenarios have started and every slot holds its stream.
                if early.is_none() && started.elapsed() >= duration / 4 {
                    early = Some(last);
                }
            }
        }
    };
    assert!(status.success(), "simulate exited with {status}");
    ClientMemory { early: early.unwrap_or(last), last }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::test]
async fn churned_streams_leave_nothing_behind() {
    let total = soak_duration();
    let round = (total / ROUNDS).max(Duration::from_secs(5));
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(dir.path(), PROFILE);
    let server = spawn_serve_process(
        &[
            "--profile",
            path_str(&profile),
            "--default-stream-messages",
            "20",
            "--default-stream-interval",
            "5ms",
        ],
        &[("STREAMSTORM_LOG", "warn")],
    )
    .await;
    let idle = settle(&server, None, 0).await;
    println!(
        "soak: {ROUNDS} rounds of {round:?}; idle server: {:.1} MiB resident, {} tasks, {} descriptors",
        mib(idle.resident),
        idle.tasks,
        idle.fds
    );

    let started = Instant::now();
    let mut warm = None;
    let mut clients = Vec::new();
    let mut last = idle;
    for index in 1..=ROUNDS {
        clients.push(load_round(&profile, server.addr, round).await);
        last = settle(&server, Some((idle.tasks, idle.fds)), index).await;
        println!(
            "round {index}: {:.0} streams so far, server {:.1} MiB resident, {} tasks, {} descriptors; \
             client {:.1} MiB early, {:.1} MiB at the end",
            last.streams_started,
            mib(last.resident),
            last.tasks,
            last.fds,
            mib(clients.last().unwrap().early),
            mib(clients.last().unwrap().last),
        );
        warm.get_or_insert(last);
    }
    let warm = warm.expect("at least one round ran");
    let allowed = RSS_NOISE_BYTES.max((warm.resident as f64 * RSS_NOISE_FRACTION) as u64);
    println!(
        "soak: {:.0?} in all, {:.0} streams and {:.0} connections churned; server resident {:.1} MiB after warm-up, {:.1} MiB \
         at the end ({:+.1} MiB, {:.1} MiB allowed); tasks {} idle, {} at the end; descriptors {} idle, \
         {} at the end",
        started.elapsed(),
        last.streams_started,
        last.connections_accepted,
        mib(warm.resident),
        mib(last.resident),
        mib(last.resident) - mib(warm.resident),
        mib(allowed),
        idle.tasks,
        last.tasks,
        idle.fds,
        last.fds,
    );
    assert!(last.streams_started > 10_000.0, "too little churn to find a leak: {}", last.streams_started);
    assert!(
        last.resident <= warm.resident + allowed,
        "server memory grew from {:.1} MiB to {:.1} MiB",
        mib(warm.resident),
        mib(last.resident)
    );
    for (index, client) in clients.iter().enumerate() {
        let allowed = RSS_NOISE_BYTES.max((client.early as f64 * RSS_NOISE_FRACTION) as u64);
        assert!(
            client.last <= client.early + allowed,
            "round {}: the load client's memory grew from {:.1} MiB to {:.1} MiB during its run",
            index + 1,
            mib(client.early),
            mib(client.last)
        );
    }
}
