//! `report merge` refuses a set that is not every shard of one run exactly once — a shard
//! missing, one given twice, a shard of another profile — and a corrupted histogram, naming
//! the shard or the file and field; and it merges a hundred shard reports within a second.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use common::shards::{ServeProcess, merge, read_json, run_shards};

const PROFILE: &str = "\
load:
  scenarios:
    - { method: myapp.NotificationService/Subscribe, streams: 5, request: { topics: [a] } }
    - { method: myapp.UserService/GetUser, streams: 3, request: { user_id: u } }
";

fn write(dir: &Path, name: &str, report: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string(report).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_set_of_shards_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), PROFILE);
    let server = ServeProcess::start(&profile).await;
    let shards = run_shards(&profile, &server.grpc.to_string(), "1s", 3, dir.path(), 0).await;
    let out = dir.path().join("merged.json");

    let (code, stderr, merged) = merge(&shards[..2], &[], &out).await;
    assert_eq!((code, merged.is_none()), (Some(2), true), "{stderr}");
    assert!(stderr.contains("shard 2/3 missing"), "{stderr}");

    let twice = [shards[0].clone(), shards[1].clone(), shards[1].clone(), shards[2].clone()];
    let (code, stderr, _) = merge(&twice, &[], &out).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("shard 1/3 is given twice") && stderr.contains("shard-1.json"), "{stderr}");

    let mut other = read_json(&shards[2]);
    other["profile"]["digest"] = Value::from("0123456789abcdef");
    let other = write(dir.path(), "other-profile.json", &other);
    let (code, stderr, _) = merge(&[shards[0].clone(), shards[1].clone(), other], &[], &out).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("other-profile.json has profile") && stderr.contains("shards of different runs"),
        "{stderr}"
    );

    let mut reseeded = read_json(&shards[2]);
    reseeded["seed"] = Value::from(99);
    let reseeded = write(dir.path(), "reseeded.json", &reseeded);
    let (code, stderr, _) = merge(&[shards[0].clone(), shards[1].clone(), reseeded], &[], &out).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("reseeded.json has seed 99"), "{stderr}");

    let mut corrupt = read_json(&shards[1]);
    corrupt["scenarios"][1]["histograms"]["backoff"] = Value::from("AAAAAAAA");
    let corrupt = write(dir.path(), "corrupt.json", &corrupt);
    let (code, stderr, _) = merge(&[shards[0].clone(), corrupt, shards[2].clone()], &[], &out).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("corrupt.json: scenarios[1].histograms.backoff: not an HdrHistogram"),
        "{stderr}"
    );

    let other_profile = dir.path().join("another.yaml");
    std::fs::write(&other_profile, "load:\n  scenarios: []\n").unwrap();
    let (code, stderr, _) = merge(&shards, &["--profile", common::path_str(&other_profile)], &out).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("another.yaml (digest") && stderr.contains("given with --profile"), "{stderr}");

    // A hundred shards: one real report renumbered, merged in under a second.
    let template = read_json(&shards[0]);
    let many: Vec<PathBuf> = (0..100)
        .map(|index| {
            let mut shard = template.clone();
            shard["shard"]["index"] = Value::from(index);
            shard["shard"]["count"] = Value::from(100);
            write(dir.path(), &format!("many-{index}.json"), &shard)
        })
        .collect();
    let started = Instant::now();
    let (code, stderr, merged) = merge(&many, &[], &out).await;
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{stderr}");
    let merged = merged.unwrap();
    assert_eq!(
        merged["streams"]["opened"].as_u64().unwrap(),
        100 * template["streams"]["opened"].as_u64().unwrap()
    );
    assert!(took.as_secs_f64() < 1.0, "merging 100 shards took {took:?}");
}
