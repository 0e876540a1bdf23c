//! The one-million-streams benchmark (`cargo run --release -p streamstorm-bench -- --held-only`)
//! at CI size: `streamstorm serve` and `streamstorm simulate --target`, each its own process, open
//! 50,000 idle streams over 50 connections at once and hold them; no connection may be closed on
//! an error and no call may fail, and each side's memory per stream stays bounded.

mod common;

use std::time::{Duration, Instant};

use common::scrape::{get, parse_samples, sum};

const STREAMS: u64 = 50_000;
const CONNECTIONS: u64 = 50;
const HOLD: Duration = Duration::from_secs(10);
/// Server RSS growth per held stream: measured 4–6 KiB (after its first message, opened at once).
/// Generous for a busy machine; a stream costing twice that fails it.
const MAX_SERVER_BYTES_PER_STREAM: u64 = 12 * 1024;
/// The client process's whole RSS per stream, its fixed start-up cost included: measured
/// 10–12 KiB.
const MAX_CLIENT_BYTES_PER_STREAM: u64 = 24 * 1024;

async fn metric(metrics: std::net::SocketAddr, name: &str, labels: &[(&str, &str)]) -> f64 {
    sum(&parse_samples(&get(metrics, "/metrics").await), name, labels)
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_thousand_streams_are_held_by_serve_and_the_built_in_client() {
    let dir = tempfile::tempdir().unwrap();
    let protos = common::repo_root().join("protos/myapp");
    let protos = common::path_str(&protos);
    // One message at once, the next after an hour: streams that are open and idle.
    let server = common::spawn_serve_process(
        &["--protos", protos, "--default-stream-messages", "2", "--default-stream-interval", "1h"],
        &[],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server_before = common::resident_bytes(server.child.id().unwrap());
    let profile = dir.path().join("held.yaml");
    std::fs::write(
        &profile,
        format!(
            "load:\n  connections: {CONNECTIONS}\n  scenarios:\n    - {{ method: myapp.NotificationService/Subscribe, streams: {STREAMS}, request: {{ topics: [a] }} }}\n"
        ),
    )
    .unwrap();
    let report = dir.path().join("report.json");
    let started = Instant::now();
    let mut client = common::spawn_simulate_process(&[
        "--profile",
        common::path_str(&profile),
        "--target",
        &server.addr.to_string(),
        "--protos",
        protos,
        "--duration",
        "10m",
        "--report",
        common::path_str(&report),
    ])
    .await;
    let active = || metric(server.metrics, "streamstorm_streams_active", &[]);
    while active().await < STREAMS as f64 {
        assert!(started.elapsed() < Duration::from_secs(120), "{} streams open after 120 s", active().await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let open_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let server_per_stream = (common::resident_bytes(server.child.id().unwrap()) - server_before) / STREAMS;
    let client_per_stream = common::resident_bytes(client.child.id().unwrap()) / STREAMS;
    eprintln!(
        "{STREAMS} streams open after {open_time:?}: server {server_per_stream} B, client {client_per_stream} B per stream"
    );
    tokio::time::sleep(HOLD).await;
    assert_eq!(active().await, STREAMS as f64, "streams ended while held");
    let errors = metric(server.metrics, "streamstorm_connections_closed_total", &[("reason", "error")]).await;
    let timeouts =
        metric(server.metrics, "streamstorm_connections_closed_total", &[("reason", "handshake_timeout")])
            .await;
    assert_eq!((errors, timeouts), (0.0, 0.0), "connections closed on errors and handshake timeouts");
    // Stopped as Ctrl-C stops it: the client writes its report.
    // SAFETY: signalling a child process we own and have not reaped.
    unsafe { libc::kill(client.child.id().unwrap() as libc::pid_t, libc::SIGINT) };
    let status = tokio::time::timeout(Duration::from_secs(60), client.child.wait()).await.unwrap().unwrap();
    assert!(status.code().is_some_and(|code| code <= 1), "simulate ended with {status}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["streams"]["failed"], 0, "{}", report["errors"]);
    assert_eq!(report["streams"]["opened"], STREAMS, "{}", report["streams"]);
    assert!(server_per_stream <= MAX_SERVER_BYTES_PER_STREAM, "server: {server_per_stream} B per stream");
    assert!(client_per_stream <= MAX_CLIENT_BYTES_PER_STREAM, "client: {client_per_stream} B per stream");
}
