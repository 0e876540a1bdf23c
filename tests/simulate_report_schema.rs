//! The JSON report checked against the committed schema (`schemas/report.schema.json`) by a
//! small validator for the keywords the schema uses, so neither can drift from the other.

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use streamstorm::cli::{SimulateArgs, run_simulation};
use streamstorm::report::progress::ProgressMode;

use common::schema::problems;

#[tokio::test(flavor = "multi_thread")]
async fn the_report_matches_the_committed_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("schemas/report.schema.json")).unwrap())
            .unwrap();
    let args = SimulateArgs {
        duration: Some(Duration::from_secs(2)),
        ..SimulateArgs::for_profile(root.join("profiles/flaky.yaml"))
    };
    let report = serde_json::to_value(run_simulation(&args, ProgressMode::Quiet).await.unwrap()).unwrap();
    assert_eq!(problems(&schema, &report), Vec::<String>::new());
    // The design's keys, by name.
    for pointer in
        ["/duration_s", "/streams/opened", "/messages/sent", "/errors", "/reconnects", "/latency_ms/p999"]
    {
        assert!(report.pointer(pointer).is_some(), "{pointer}");
    }
    assert!(report.pointer("/thresholds/passed").unwrap().is_boolean());
    assert_eq!(report["interrupted"], false, "a run that lasted its duration was not interrupted");
    // And the validator catches drift.
    let mut broken = report.clone();
    broken["streams"].as_object_mut().unwrap().remove("failed");
    broken["latency_ms"]["p50"] = Value::from("fast");
    broken["surprise"] = Value::from(1);
    let found = problems(&schema, &broken);
    assert_eq!(found.len(), 3, "{found:?}");
}
