//! `simulate --upstream` (and `load.upstream`) against the Python grpcio upstream: the
//! embedded server is the proxy, the built-in load client drives the real server through the
//! chaos, and the report reconciles exactly what was injected with what the client saw — while
//! the upstream's own record shows which calls reached it.

mod common;

use std::time::Duration;

use common::proxy::Upstream;
use serde_json::Value;

/// Every GetUser aborted, every Subscribe reset after two of the upstream's five messages.
const PROFILE: &str = "chaos:
  seed: 5
  rules:
    - match: { method: myapp.UserService/GetUser }
      abort: { rate: 100%, code: PERMISSION_DENIED }
    - match: { method: myapp.NotificationService/Subscribe }
      disconnect: { rate: 100%, after_messages: 2, mode: reset_stream }
load:
  connections: 2
  scenarios:
    - method: myapp.UserService/GetUser
      streams: 4
      request: { user_id: 'u{{stream.id}}' }
      reconnect: { initial_backoff: 20ms, max_backoff: 100ms, multiplier: 2, jitter: 0.1 }
    - method: myapp.NotificationService/Subscribe
      streams: 4
      request: { topics: [s] }
      reconnect: { initial_backoff: 20ms, max_backoff: 100ms, multiplier: 2, jitter: 0.1 }
";

/// Runs `simulate` for two seconds with `body` after the profile's `server` section, and
/// `args`; returns the JSON report.
async fn simulate(body: &str, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), body);
    let report = dir.path().join("report.json");
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
            .args(["simulate", "--quiet", "--metrics-listen", "127.0.0.1:0", "--duration", "2s", "--profile"])
            .arg(&profile)
            .arg("--report")
            .arg(&report)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("simulate ends within a minute")
    .expect("the binary starts");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(matches!(output.status.code(), Some(0 | 1)), "simulate failed ({}): {stderr}", output.status);
    serde_json::from_slice(&std::fs::read(&report).unwrap_or_else(|_| panic!("no report: {stderr}"))).unwrap()
}

/// Asserts the report reconciles exactly, with enough of each fault to mean something.
fn assert_reconciled(report: &Value) {
    let faults = &report["server_faults"];
    assert_eq!(faults["reconciled"], true, "{faults:#}");
    let denied = faults["status_codes"]
        .as_array()
        .expect("status codes")
        .iter()
        .find(|row| row["code"] == "PERMISSION_DENIED")
        .unwrap_or_else(|| panic!("no aborts counted: {faults:#}"));
    assert!(denied["injected"].as_u64().unwrap() > 10, "{faults:#}");
    assert_eq!(denied["injected"], denied["observed"], "{faults:#}");
    assert_eq!(report["errors"]["PERMISSION_DENIED"], denied["injected"]);
    let resets = &faults["resets"];
    assert!(resets["injected"].as_u64().unwrap() > 10, "{faults:#}");
    assert_eq!(resets["injected"], resets["observed"], "{faults:#}");
    assert_eq!(report["disconnects"]["reset"], resets["injected"]);
}

/// The upstream saw Subscribe calls and not one GetUser (all aborted at the proxy).
fn assert_upstream_saw_only_subscribes(upstream: &Upstream, report: &Value) {
    let calls = upstream.calls();
    let methods: std::collections::BTreeSet<&str> =
        calls.iter().filter_map(|c| c["method"].as_str()).collect();
    assert_eq!(methods.into_iter().collect::<Vec<_>>(), ["myapp.NotificationService/Subscribe"]);
    // Every reset stream reached it (a call may still be ending as the run stops).
    let resets = report["server_faults"]["resets"]["injected"].as_u64().unwrap() as usize;
    assert!(calls.len() + 8 >= resets, "{} upstream calls for {resets} resets", calls.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_with_upstream_flag_reconciles_exactly() {
    let upstream = Upstream::start().await;
    let report = simulate(PROFILE, &["--upstream", &upstream.addr.to_string()]).await;
    assert_reconciled(&report);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_upstream_saw_only_subscribes(&upstream, &report);
}

#[tokio::test(flavor = "multi_thread")]
async fn simulate_with_load_upstream_in_the_profile_reconciles_exactly() {
    let upstream = Upstream::start().await;
    let body = PROFILE.replace("load:\n", &format!("load:\n  upstream: {}\n", upstream.addr));
    let report = simulate(&body, &[]).await;
    assert_reconciled(&report);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_upstream_saw_only_subscribes(&upstream, &report);
}
