//! Recording's bounds and refusals: the per-method and total caps stop recording with one
//! clear message each while every call is still relayed; `record` refuses a profile with
//! chaos, and `--record` without protos (the grpcio upstream has no reflection) says to pass
//! `--protos`.

mod common;

use std::time::Duration;

use common::interop::{Client, ClientCall};
use common::proxy::{Upstream, spawn_recorder};
use common::{path_str, repo_root, write_profile};
use serde_json::json;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn caps_stop_recording_with_one_message_each_and_relaying_goes_on() {
    let upstream = Upstream::start().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("recorded");
    let (mut recorder, _stdout) = spawn_recorder(
        upstream.addr,
        &dir,
        &["--record-max-per-method", "2", "--record-max-calls", "3"],
        std::process::Stdio::piped(),
    )
    .await;
    let calls = [
        ("myapp.UserService/GetUser", json!([{"user_id": "a"}])),
        ("myapp.UserService/GetUser", json!([{"user_id": "b"}])),
        ("myapp.UserService/GetUser", json!([{"user_id": "c"}])),
        ("myapp.UserService/GetUser", json!([{"user_id": "d"}])),
        ("myapp.NotificationService/Subscribe", json!([{"topics": ["t"]}])),
        ("myapp.ChatService/Chat", json!([{"content": "after the cap"}])),
    ];
    for (method, requests) in calls {
        let outcome = ClientCall::new(Client::Python, recorder.addr, method).requests(requests).run().await;
        assert_eq!(outcome.code, "OK", "{method}: {}", outcome.details);
        assert!(!outcome.responses.is_empty(), "{method} relayed");
    }
    let users = dir.join("myapp.UserService/GetUser.yaml");
    let subscribe = dir.join("myapp.NotificationService/Subscribe.yaml");
    let written = common::eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(&users).is_ok_and(|text| text.contains("user_id: b")) && subscribe.exists()
    })
    .await;
    assert!(written, "the first calls are recorded");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(&users).unwrap();
    assert_eq!(text.matches("\n- service:").count(), 2, "{text}");
    assert!(!text.contains("user_id: c") && !text.contains("user_id: d"), "{text}");
    assert!(!dir.join("myapp.ChatService").exists(), "the call after the total cap is not recorded");

    recorder.child.start_kill().unwrap();
    let mut log = String::new();
    recorder.child.stderr.take().unwrap().read_to_string(&mut log).await.unwrap();
    let per_method = "Recording stopped for myapp.UserService/GetUser: 2 calls recorded (--record-max-per-method); relaying goes on.";
    let total = "Recording stopped: 3 calls recorded (--record-max-calls); relaying goes on.";
    assert_eq!(log.matches(per_method).count(), 1, "{log}");
    assert_eq!(log.matches(total).count(), 1, "{log}");
}

#[tokio::test]
async fn record_refuses_chaos_and_needs_protos() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("recorded");
    let profile = write_profile(work.path(), "chaos:\n  rules:\n    - latency: { per_message: 10ms }\n");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
            .args(["record", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap()
    };
    let refused =
        run(&["--upstream", "127.0.0.1:1", "--record", path_str(&dir), "--profile", path_str(&profile)]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("chaos: `streamstorm record` records without chaos"), "{stderr}");
    assert!(stderr.contains("streamstorm proxy --record DIR"), "{stderr}");

    let no_protos = run(&["--upstream", "127.0.0.1:1", "--record", path_str(&dir)]);
    let stderr = String::from_utf8_lossy(&no_protos.stderr);
    assert_eq!(no_protos.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--record needs the upstream's protos to decode what it records: pass --protos"),
        "{stderr}"
    );

    let nowhere = run(&["--upstream", "127.0.0.1:1"]);
    let stderr = String::from_utf8_lossy(&nowhere.stderr);
    assert_eq!(nowhere.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("nowhere to record: pass --record DIR"), "{stderr}");

    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("old.yaml"), "[]\n").unwrap();
    let protos = repo_root().join("protos/myapp");
    let not_empty =
        run(&["--upstream", "127.0.0.1:1", "--protos", path_str(&protos), "--record", path_str(&dir)]);
    let stderr = String::from_utf8_lossy(&not_empty.stderr);
    assert_eq!(not_empty.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the directory is not empty"), "{stderr}");
}
