//! On a quiet profile (no faults) four shards merged agree with one process running the
//! whole: the same slots, calls and messages within 10% (the shards start a few
//! milliseconds apart and each drains on its own), no errors, and the per-message latency
//! — the server's 20 ms gap between messages — within 2 ms at the median and p90.

mod common;

use serde_json::Value;

use common::shards::{ServeProcess, merge, read_json, run_shards, streamstorm};

const PROFILE: &str = "\
load:
  connections: 4
  scenarios:
    - { method: myapp.NotificationService/Subscribe, streams: 41, request: { topics: [a] } }
    - { method: myapp.UserService/GetUser, streams: 5, request: { user_id: u }, think_time: 10ms }
";

fn number(report: &Value, pointer: &str) -> f64 {
    report.pointer(pointer).and_then(Value::as_f64).unwrap_or_else(|| panic!("{pointer} in {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_merged_shards_agree_with_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), PROFILE);
    let server = ServeProcess::start(&profile).await;
    let target = server.grpc.to_string();
    let whole_path = dir.path().join("whole.json");
    let args = [
        "simulate",
        "--quiet",
        "--metrics-listen",
        "127.0.0.1:0",
        "--duration",
        "3s",
        "--target",
        &target,
        "--profile",
        common::path_str(&profile),
        "--report",
        common::path_str(&whole_path),
    ];
    let output = streamstorm(&args).await;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let whole = read_json(&whole_path);
    let shards = run_shards(&profile, &target, "3s", 4, dir.path(), 0).await;
    let (code, stderr, merged) = merge(&shards, &[], &dir.path().join("merged.json")).await;
    assert_eq!(code, Some(0), "{stderr}");
    let merged = merged.unwrap();

    assert_eq!(merged["errors"], serde_json::json!({}));
    for index in 0..2 {
        assert_eq!(merged["scenarios"][index]["slots"], whole["scenarios"][index]["slots"]);
    }
    for pointer in [
        "/streams/opened",
        "/messages/received",
        "/scenarios/0/streams/opened",
        "/scenarios/1/streams/opened",
    ] {
        let (one, four) = (number(&whole, pointer), number(&merged, pointer));
        assert!((four - one).abs() <= one * 0.10, "{pointer}: one process {one}, four shards {four}");
    }
    for pointer in ["/scenarios/0/latency_ms/p50", "/scenarios/0/latency_ms/p90"] {
        let (one, four) = (number(&whole, pointer), number(&merged, pointer));
        assert!((four - one).abs() <= 2.0, "{pointer}: one process {one} ms, four shards {four} ms");
    }
}
