//! What the load client reads from reply content: gaps in a sequence field count as missed
//! messages, and a timestamp field gives each message's end-to-end age.

use std::time::Duration;

use streamstorm::cli::{SimulateArgs, run_simulation};
use streamstorm::report::progress::ProgressMode;

/// Every Subscribe stream sends sequence numbers 1, 2, 3, 6, 7 (two missing), stamped now.
const STUB: &str = r#"
service: myapp.NotificationService
method: Subscribe
input: { equals: {} }
output:
  stream:
    - { sequence: 1, timestamp: "{{now}}" }
    - { sequence: 2, timestamp: "{{now}}" }
    - { sequence: 3, timestamp: "{{now}}" }
    - { sequence: 6, timestamp: "{{now}}" }
    - { sequence: 7, timestamp: "{{now}}" }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn sequence_gaps_are_missed_messages_and_timestamps_give_the_age() {
    let dir = tempfile::tempdir().unwrap();
    let stubs = dir.path().join("stubs");
    std::fs::create_dir(&stubs).unwrap();
    std::fs::write(stubs.join("subscribe.yaml"), STUB).unwrap();
    let protos = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protos/myapp");
    let profile = dir.path().join("p.yaml");
    std::fs::write(
        &profile,
        format!(
            "server:\n  protos: [{}]\n  stubs: [{}]\nload:\n  scenarios:\n    - method: myapp.NotificationService/Subscribe\n      streams: 4\n      think_time: 20ms\n      sequence_field: sequence\n      timestamp_field: timestamp\n",
            protos.display(),
            stubs.display()
        ),
    )
    .unwrap();
    let args = SimulateArgs { duration: Some(Duration::from_secs(1)), ..SimulateArgs::for_profile(profile) };
    let report = run_simulation(&args, ProgressMode::Quiet).await.unwrap();
    let completed = report.streams.completed;
    assert!(completed >= 8, "{report:#?}");
    // Two missing per complete stream; a stream cut at the end may or may not have passed its gap.
    let missed = report.messages.missed;
    assert!(
        (2 * completed..=2 * (completed + 4)).contains(&missed),
        "{missed} missed, {completed} completed"
    );
    assert!(report.message_age_ms.count >= 5 * completed, "{:?}", report.message_age_ms);
    assert!(report.message_age_ms.p50 < 1000.0, "loopback messages are young: {:?}", report.message_age_ms);
}
