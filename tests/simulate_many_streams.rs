//! One process holds 10,000 concurrent streams: the embedded server and the load client
//! together, every stream opened, receiving, and still open when the run ends; reports the
//! process's peak resident memory per stream (both sides of each stream together).

mod common;

use std::time::Duration;

use streamstorm::cli::{SimulateArgs, run_simulation};
use streamstorm::report::progress::ProgressMode;

const STREAMS: u64 = 10_000;
/// Peak RSS, so it counts what opening 10,000 streams at once needs as well as what holding
/// them costs, with the client's fixed cost (HdrHistograms, about 10 MB) spread over them:
/// measured about 15 KiB per stream (16 KiB before the per-stream memory work). Generous for
/// noise; per-stream kilobytes more on either side fail it.
const MAX_BYTES_PER_STREAM: u64 = 24 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_streams_are_held_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let protos = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protos/myapp");
    let profile = dir.path().join("many.yaml");
    std::fs::write(
        &profile,
        format!(
            "server:\n  protos: [{}]\nload:\n  connections: 4\n  embedded: {{ stream_interval: 1s }}\n  scenarios:\n    - {{ method: myapp.NotificationService/Subscribe, streams: 10000, request: {{ topics: [a] }} }}\n",
            protos.display()
        ),
    )
    .unwrap();
    let args = SimulateArgs { duration: Some(Duration::from_secs(5)), ..SimulateArgs::for_profile(profile) };
    let baseline = common::resident_bytes(std::process::id());
    let report = run_simulation(&args, ProgressMode::Quiet).await.unwrap();
    let peak = common::peak_resident_bytes(std::process::id());
    let per_stream = peak.saturating_sub(baseline) / STREAMS;
    eprintln!("RSS {} KiB -> peak {} KiB: {per_stream} bytes per stream", baseline / 1024, peak / 1024);
    assert_eq!(report.streams.opened, 10_000, "{:#?}", report.streams);
    assert_eq!(report.streams.failed, 0, "{:?}", report.errors);
    assert_eq!(report.streams.cut_at_end, 10_000);
    // Every stream got its first message and then more, one a second.
    assert_eq!(report.time_to_first_message_ms.count, 10_000);
    assert!(report.messages.received >= 20_000, "{:?}", report.messages);
    assert!(report.timeline.iter().any(|point| point.streams_active == 10_000), "{:?}", report.timeline);
    assert!(per_stream <= MAX_BYTES_PER_STREAM, "{per_stream} bytes per stream (client and server)");
}
