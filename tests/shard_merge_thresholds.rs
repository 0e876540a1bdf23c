//! Thresholds are judged on the merged run: four shards that each stay under an absolute
//! error count alone fail it together, and `report merge` exits 1 as `simulate` does. Every
//! call fails here (a 100% abort); 4 slots and a budget of 40 calls give each shard 10.

mod common;

use common::shards::{ServeProcess, merge, run_shards};

const PROFILE: &str = "\
chaos:
  rules:
    - match: { method: myapp.UserService/GetUser }
      abort: { rate: 100%, code: UNAVAILABLE }
load:
  calls: 40
  scenarios:
    - { method: myapp.UserService/GetUser, streams: 4, request: { user_id: u }, reconnect: { initial_backoff: 1ms, max_backoff: 2ms } }
  thresholds:
    errors: \"< 15\"
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_every_shard_passes_alone_fails_the_merged_run() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), PROFILE);
    let server = ServeProcess::start(&profile).await;
    // Exit 0: each shard's 10 errors are under 15.
    let shards = run_shards(&profile, &server.grpc.to_string(), "20s", 4, dir.path(), 0).await;
    for shard in &shards {
        let report = common::shards::read_json(shard);
        assert_eq!(report["streams"]["failed"], 10, "{}", shard.display());
        assert_eq!(report["thresholds"]["passed"], true);
    }
    let (code, stderr, merged) = merge(&shards, &[], &dir.path().join("merged.json")).await;
    assert_eq!(code, Some(1), "{stderr}");
    let merged = merged.expect("the merged report is written even when it fails");
    assert_eq!(merged["errors"]["UNAVAILABLE"], 40);
    let result = &merged["thresholds"]["results"][0];
    assert_eq!((result["name"].as_str(), result["measured"].as_f64()), (Some("errors"), Some(40.0)));
    assert_eq!(result["passed"], false);
    assert_eq!(merged["thresholds"]["passed"], false);
}
