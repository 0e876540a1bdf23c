//! `simulate` marks the embedded server's phase changes: the report lists each occurrence of a
//! phase with the calls, errors and latency seen during it (an outage that cuts live streams
//! shows its errors there, and the steady phases around it show none), the printed report has
//! a table of them, and the plot marks each phase's span.

mod common;

use std::process::Command;

use serde_json::Value;

const PROFILE: &str = "chaos:
  seed: 5
  linger: 0ms
  phases:
    - { name: steady, duration: 1500ms }
    - name: outage
      duration: 1s
      abort: { rate: 100%, code: UNAVAILABLE }
      on_enter: { fail: { code: UNAVAILABLE, message: cut } }
load:
  target: embedded
  connections: 2
  scenarios:
    - method: myapp.NotificationService/Subscribe
      streams: 20
      reconnect: { initial_backoff: 50ms, max_backoff: 200ms, multiplier: 2, jitter: 0.1 }
";

#[test]
fn each_phase_occurrence_is_reported_printed_and_plotted() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), PROFILE);
    let (report_path, plot_path) = (dir.path().join("report.json"), dir.path().join("plot.svg"));
    let output = Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args(["simulate", "--duration", "5500ms", "--metrics-listen", "127.0.0.1:0", "--profile"])
        .arg(&profile)
        .arg("--report")
        .arg(&report_path)
        .arg("--plot")
        .arg(&plot_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let phases = report["phases"].as_array().expect("phases in the report");
    let names: Vec<&str> = phases.iter().map(|phase| phase["name"].as_str().unwrap()).collect();
    // Steady 1.5 s, outage 1 s, from the server's start, which comes just before the load's.
    assert_eq!(names[..4], ["steady", "outage", "steady", "outage"], "{report:#}");
    for pair in phases.windows(2) {
        let (ended, began) = (pair[0]["ended_s"].as_f64().unwrap(), pair[1]["started_s"].as_f64().unwrap());
        assert!((ended - began).abs() < 0.1, "phases follow each other: {pair:?}");
    }
    let (steady, outage) = (&phases[2], &phases[3]);
    let lasted = |phase: &Value| phase["ended_s"].as_f64().unwrap() - phase["started_s"].as_f64().unwrap();
    assert!((lasted(steady) - 1.5).abs() < 0.15, "{steady}");
    assert_eq!((steady["outage"].as_bool(), outage["outage"].as_bool()), (Some(false), Some(true)));
    assert!(steady["latency_ms"]["count"].as_u64().unwrap() > 0, "{steady}");
    assert!(steady["calls"].as_u64().unwrap() > 0, "{steady}");
    // The outage ends the 20 live subscriptions as it begins, then refuses every retry.
    let outage_errors = outage["errors_by_code"]["UNAVAILABLE"].as_u64().unwrap_or(0);
    assert!(outage_errors >= 20, "{outage}");
    assert!(outage["error_rate"].as_f64().unwrap() > 0.9, "{outage}");
    assert!(steady["errors"].as_u64().unwrap() < outage_errors / 4, "{steady} {outage}");

    assert!(stdout.contains("by phase"), "{stdout}");
    assert!(stdout.lines().any(|line| line.trim_start().starts_with("outage (outage)")), "{stdout}");

    let svg_text = std::fs::read_to_string(&plot_path).unwrap();
    let svg = roxmltree::Document::parse(&svg_text).unwrap();
    let marks: Vec<_> = svg.descendants().filter(|node| node.attribute("class") == Some("phase")).collect();
    assert_eq!(marks.len(), phases.len(), "one mark per phase occurrence");
    assert_eq!(marks[1].attribute("data-phase"), Some("outage"));
    assert_eq!(marks[1].attribute("data-outage"), Some("true"));
    assert!(marks[1].children().any(|node| node.has_tag_name("rect")), "outages are shaded");
}
