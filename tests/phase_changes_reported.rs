//! Phase changes are reported: logged at info as each phase begins, counted in
//! `streamstorm_phase_changes_total{phase}`, and shown in `/admin/chaos` with the wall-clock
//! time the phase in force began and its scheduled end (none while a phase is pinned), with
//! each phase's `on_enter`.

mod common;

use std::time::{Duration, SystemTime};

use common::scrape::{get, parse_samples, request, sum};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

const PROFILE: &str = "chaos:
  phases:
    - { name: steady, duration: 1500ms }
    - name: outage
      duration: 1s
      on_enter: { disconnect: goaway, fraction: 25%, method: myapp.NotificationService/Subscribe }
metrics:
  admin: read_write
";

fn wall(value: &Value) -> SystemTime {
    humantime::parse_rfc3339(value.as_str().unwrap_or_else(|| panic!("a time: {value}"))).unwrap()
}

async fn chaos(server: &common::ServeProcess) -> Value {
    serde_json::from_str(&get(server.metrics, "/admin/chaos").await).unwrap()
}

#[tokio::test]
async fn phase_changes_are_logged_counted_and_timed() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), PROFILE);
    let mut server = common::spawn_serve_process_with_stderr(
        &["--profile", common::path_str(&profile)],
        &[("RUST_LOG", "info")],
        std::process::Stdio::piped(),
    )
    .await;
    let state = chaos(&server).await;
    let outage = &state["phases"][1];
    assert_eq!(outage["on_enter"]["action"], "goaway", "{state}");
    assert_eq!(outage["on_enter"]["fraction"], 0.25, "{state}");
    assert_eq!(outage["on_enter"]["method"], "myapp.NotificationService/Subscribe", "{state}");
    assert_eq!(outage["outage"], true, "{state}");

    // Three boundaries: steady → outage → steady → outage.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let state = chaos(&server).await;
    let in_force = &state["phase_in_force"];
    let name = in_force["name"].as_str().unwrap();
    assert_eq!(Some(name), state["phase"].as_str(), "{state}");
    let (began, ends) = (wall(&in_force["started_at"]), wall(&in_force["ends_at"]));
    let expected = if name == "steady" { Duration::from_millis(1500) } else { Duration::from_secs(1) };
    assert_eq!(ends.duration_since(began).unwrap(), expected, "{in_force}");
    let now = SystemTime::now();
    assert!(began <= now && now <= ends, "now lies within the phase: {in_force}");
    assert_eq!(in_force["outage"], name == "outage", "{in_force}");

    let samples = parse_samples(&get(server.metrics, "/metrics").await);
    let changes = |phase: &str| sum(&samples, "streamstorm_phase_changes_total", &[("phase", phase)]);
    assert_eq!((changes("steady"), changes("outage")), (2.0, 2.0), "started in steady, 4.2 s in");

    let (status, body) = request(server.metrics, "POST", "/admin/phase/outage").await;
    assert_eq!(status, 200, "{body}");
    let pinned: Value = serde_json::from_str(&body).unwrap();
    let in_force = &pinned["phase_in_force"];
    assert_eq!((in_force["name"].as_str(), in_force["pinned"].as_bool()), (Some("outage"), Some(true)));
    assert!(in_force["ends_at"].is_null(), "a pinned phase has no scheduled end: {in_force}");
    let began = wall(&in_force["started_at"]);
    assert!(SystemTime::now().duration_since(began).unwrap() < Duration::from_secs(1), "{in_force}");
    let samples = parse_samples(&get(server.metrics, "/metrics").await);
    assert_eq!(
        sum(&samples, "streamstorm_phase_changes_total", &[("phase", "outage")]),
        3.0,
        "pinning is a change"
    );

    let released: Value =
        serde_json::from_str(&request(server.metrics, "DELETE", "/admin/phase").await.1).unwrap();
    assert!(released["phase_in_force"]["ends_at"].is_string(), "the clock again: {released}");

    let _ = server.child.start_kill();
    let stderr = server.child.stderr.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut began = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("Phase began.") {
            began.push(line);
        }
    }
    assert!(began.len() >= 5, "{began:#?}");
    assert!(began[0].contains("phase=steady") && began[0].contains("outage=false"), "{began:#?}");
    assert!(
        began[1].contains("phase=outage") && began[1].contains("outage=true") && began[1].contains("until="),
        "{began:#?}"
    );
}
