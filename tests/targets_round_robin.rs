//! Load spread over server replicas: `simulate --target A,B` deals its connections round
//! robin, so each of two `serve` replicas accepts half of them and carries about half of the
//! calls — as each replica counts them, and as the report's per-target breakdown says.

mod common;

use common::scrape::sum;
use common::shards::{ServeProcess, read_json, streamstorm};

const PROFILE: &str = "\
load:
  connections: 6
  scenarios:
    - { method: myapp.UserService/GetUser, streams: 12, request: { user_id: u }, think_time: 2ms }
    - { method: myapp.NotificationService/Subscribe, streams: 12, request: { topics: [a] } }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_behind_a_target_list_each_get_half() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), PROFILE);
    let replicas = [ServeProcess::start(&profile).await, ServeProcess::start(&profile).await];
    let target = format!("{},{}", replicas[0].grpc, replicas[1].grpc);
    let report_path = dir.path().join("report.json");
    let args = [
        "simulate",
        "--quiet",
        "--metrics-listen",
        "127.0.0.1:0",
        "--duration",
        "2s",
        "--target",
        &target,
        "--profile",
        common::path_str(&profile),
        "--report",
        common::path_str(&report_path),
    ];
    let output = streamstorm(&args).await;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let report = read_json(&report_path);
    let rows = report["targets"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let total_calls = report["streams"]["opened"].as_u64().unwrap();
    for replica in &replicas {
        let row =
            rows.iter().find(|row| row["address"] == replica.grpc.to_string()).expect("a row per replica");
        let samples = replica.samples().await;
        assert_eq!(sum(&samples, "streamstorm_connections_accepted_total", &[]), 3.0, "{}", replica.grpc);
        assert_eq!(row["connections"], 3);
        let calls = sum(&samples, "streamstorm_streams_started_total", &[]) as u64;
        assert_eq!(
            row["calls"].as_u64().unwrap(),
            calls,
            "the report's breakdown is the replica's own count"
        );
        let share = calls as f64 / total_calls as f64;
        assert!((0.4..=0.6).contains(&share), "{} carried {calls} of {total_calls} calls", replica.grpc);
    }
}
