//! `serve --profile`: the profile's protos, limits and chaos plan take effect; flags override
//! it; every shipped profile starts a server.

mod common;

use common::{call, json_message};
use serde_json::json;
use tonic::Code;

#[tokio::test]
async fn a_profile_rule_aborts_its_method_only() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("abort.yaml");
    let protos = common::repo_root().join("protos/myapp");
    std::fs::write(
        &profile,
        format!(
            "server:\n  protos: [{}]\nchaos:\n  seed: 7\n  rules:\n    - match: {{ method: myapp.UserService/GetUser }}\n      abort: {{ rate: 100%, code: PERMISSION_DENIED, message: \"no entry\" }}\n",
            protos.display()
        ),
    )
    .unwrap();
    // One message per server stream, so Subscribe ends by itself.
    let args = ["--profile", common::path_str(&profile), "--default-stream-messages", "1"];
    let (_server, addr) = common::spawn_serve_with(&args).await;
    let pool = common::example_pool();
    let channel = common::connect(addr).await;
    let request = json_message(&pool, "myapp.GetUserRequest", json!({}));
    let outcome = call(channel.clone(), &pool, "myapp.UserService/GetUser", vec![request]).await;
    assert_eq!((outcome.status.code(), outcome.status.message()), (Code::PermissionDenied, "no entry"));
    let request = json_message(&pool, "myapp.SubscribeRequest", json!({}));
    let outcome = call(channel, &pool, "myapp.NotificationService/Subscribe", vec![request]).await;
    assert_eq!(outcome.status.code(), Code::Ok, "other methods are untouched: {:?}", outcome.status);
}

#[tokio::test]
async fn a_rule_naming_a_missing_method_stops_serve() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("typo.yaml");
    let protos = common::repo_root().join("protos/myapp");
    std::fs::write(
        &profile,
        format!("server:\n  protos: [{}]\nchaos:\n  rules:\n    - match: {{ method: myapp.UserService/GetUsr }}\n      message_cap: 1\n", protos.display()),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args(["serve", "--listen", "127.0.0.1:0", "--profile", common::path_str(&profile)])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{}:5:", profile.display())) && stderr.contains("GetUsr"), "{stderr}");
}

#[tokio::test]
async fn every_shipped_profile_serves() {
    for profile in std::fs::read_dir(common::repo_root().join("profiles")).unwrap() {
        let profile = profile.unwrap().path();
        let (_server, addr) = common::spawn_serve_with(&["--profile", common::path_str(&profile)]).await;
        let mut health = tonic_health::pb::health_client::HealthClient::new(common::connect(addr).await);
        let status = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await;
        assert!(status.is_ok(), "{}: {status:?}", profile.display());
    }
}
