//! `simulate` on every shipped profile for a few seconds, with the embedded server: the report
//! has traffic for every scenario, and the client-observed errors reconcile with the faults the
//! server injected.

use std::path::PathBuf;
use std::time::Duration;

use streamstorm::cli::{SimulateArgs, run_simulation};
use streamstorm::report::Report;
use streamstorm::report::progress::ProgressMode;

fn profile(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles").join(name)
}

async fn simulate(name: &str, seconds: u64) -> Report {
    let args = SimulateArgs {
        duration: Some(Duration::from_secs(seconds)),
        ..SimulateArgs::for_profile(profile(name))
    };
    run_simulation(&args, ProgressMode::Quiet).await.unwrap_or_else(|error| panic!("{name}: {error}"))
}

/// What every run must show.
fn check_common(report: &Report, methods: &[&str]) {
    assert!((2.9..4.0).contains(&report.duration_s), "duration {}", report.duration_s);
    assert!(report.target.starts_with("embedded (127.0.0.1:"), "{}", report.target);
    let seen: Vec<&str> = report.scenarios.iter().map(|scenario| scenario.method.as_str()).collect();
    assert_eq!(seen, methods);
    for scenario in &report.scenarios {
        assert!(scenario.streams.opened >= u64::from(scenario.slots).min(50), "{scenario:?}");
        assert!(scenario.messages.received > 0, "{} received nothing", scenario.method);
    }
    let opened = report.streams.opened;
    assert_eq!(opened, report.streams.completed + report.streams.failed + report.streams.cut_at_end);
    assert_eq!(
        report.errors.values().sum::<u64>(),
        report.streams.failed - report.disconnects["idle_timeout"]
    );
    assert!(report.latency_ms.count > 0 && report.latency_ms.p50 <= report.latency_ms.p99);
    assert!(!report.timeline.is_empty());
    assert!(report.server_faults.is_some(), "the embedded server's faults are reported");
}

fn injected(report: &Report, kind: &str) -> u64 {
    let faults = report.server_faults.as_ref().unwrap();
    faults.injected.iter().filter(|fault| fault.kind == kind).map(|fault| fault.count).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn flaky() {
    let report = simulate("flaky.yaml", 3).await;
    check_common(&report, &["myapp.NotificationService/Subscribe", "myapp.UserService/GetUser"]);
    let faults = report.server_faults.as_ref().unwrap();
    assert!(faults.reconciled, "{faults:#?}");
    assert!(
        faults.status_codes.iter().any(|row| row.code == "UNAVAILABLE" && row.injected > 0),
        "{faults:#?}"
    );
    assert!(injected(&report, "abort") + injected(&report, "fail") > 0);
    assert!(report.reconnects > 0 && report.recovery_ms.count > 0, "{report:#?}");
    assert!(report.thresholds.passed, "{:#?}", report.thresholds);
    check_backoff_per_scenario(&report);
}

/// Each scenario reports its own backoff: Subscribe's policy starts at 100 ms, GetUser has
/// gRPC's default 1 s. The merged figure would hide one behind the other.
fn check_backoff_per_scenario(report: &Report) {
    let [subscribe, get_user] = &report.scenarios[..] else { panic!("two scenarios: {report:#?}") };
    let backoff = &subscribe.backoff_ms;
    assert!(backoff.count > 0 && (80.0..=400.0).contains(&backoff.p50), "Subscribe backoff: {backoff:?}");
    let backoff = &get_user.backoff_ms;
    assert!(backoff.count == 0 || backoff.p50 >= 800.0, "GetUser backoff: {backoff:?}");
    let json = serde_json::to_value(report).unwrap();
    for scenario in json["scenarios"].as_array().unwrap() {
        for measure in ["backoff_ms", "stream_duration_ms", "message_age_ms", "recovery_ms"] {
            assert!(scenario[measure]["p50"].is_number(), "{measure} in {scenario}");
        }
    }
    let summary = streamstorm::report::print::summary(report);
    let by_scenario = summary.split("by scenario").nth(1).expect("a section by scenario");
    for (method, kind) in [(&subscribe.method, "server streaming"), (&get_user.method, "unary")] {
        assert!(by_scenario.contains(&format!("{method} ({kind}, ")), "{summary}");
    }
    assert_eq!(by_scenario.matches("reconnect backoff").count(), 2, "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn capped() {
    let report = simulate("capped.yaml", 3).await;
    check_common(&report, &["myapp.NotificationService/Subscribe"]);
    let faults = report.server_faults.as_ref().unwrap();
    assert!(faults.reconciled, "{faults:#?}");
    // The ramp opens 25 streams a second, under the 50 calls/s limit: nothing is refused,
    // and the streams are still short of their 100-message cap.
    assert_eq!(
        injected(&report, "rate_limited"),
        report.errors.get("RESOURCE_EXHAUSTED").copied().unwrap_or(0)
    );
    assert!(report.error_rate < 0.2, "{report:#?}");
    let timeline = &report.timeline;
    let (first, third) = (timeline[0].streams_active, timeline[2].streams_active);
    assert!(first <= 35 && third >= 60, "the ramp opens 25 streams a second: {timeline:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn lossy_mobile() {
    let report = simulate("lossy-mobile.yaml", 3).await;
    check_common(&report, &["myapp.NotificationService/Subscribe", "myapp.ChatService/Chat"]);
    let chat = &report.scenarios[1];
    assert!(
        chat.messages.sent > chat.streams.opened,
        "bidi sends more than one message per stream: {chat:?}"
    );
    let faults = report.server_faults.as_ref().unwrap();
    if faults.injected.iter().any(|fault| fault.kind == "tcp_reset") {
        assert!(
            report.disconnects["transport"] > 0,
            "a TCP reset shows as a transport disconnect: {report:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn outage() {
    let report = simulate("outage.yaml", 3).await;
    check_common(&report, &["myapp.NotificationService/Subscribe"]);
    assert!(report.server_faults.as_ref().unwrap().reconciled);
    assert!(report.thresholds.passed, "{:#?}", report.thresholds);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow() {
    let report = simulate("slow.yaml", 3).await;
    check_common(&report, &["myapp.NotificationService/Subscribe", "myapp.UserService/GetUser"]);
    // Unary calls wait 500ms..3s for their reply.
    assert!(injected(&report, "latency") > 0);
    let unary = &report.scenarios[1];
    assert!(unary.latency_ms.p50 >= 500.0, "{unary:?}");
}
