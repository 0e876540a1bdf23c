//! Hot reload of stub files under live traffic: new calls see the new stubs, calls in flight
//! finish with the stubs they started with, and a broken edit keeps the old stubs serving.

mod common;

use std::time::Duration;

use common::{call, json_message};
use prost_reflect::DescriptorPool;
use serde_json::json;
use streamstorm::proto::json::{DefaultFields, FieldNames, message_to_json};
use tonic::Code;
use tonic::transport::Channel;

fn stubs(version: &str) -> String {
    format!(
        r#"
- service: myapp.UserService
  method: GetUser
  output: {{ data: {{ name: "{version}" }} }}
- service: myapp.NotificationService
  method: Subscribe
  output:
    delay: 300ms
    stream: [ {{ message: "{version}" }}, {{ message: "{version}" }}, {{ message: "{version}" }} ]
"#
    )
}

async fn user_name(channel: Channel, pool: &DescriptorPool) -> String {
    let request = json_message(pool, "myapp.GetUserRequest", json!({}));
    let outcome = call(channel, pool, "myapp.UserService/GetUser", vec![request]).await;
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    let json = message_to_json(&outcome.responses[0], FieldNames::Proto, DefaultFields::Skip).unwrap();
    json["name"].as_str().unwrap().to_owned()
}

async fn name_becomes(channel: &Channel, pool: &DescriptorPool, wanted: &str) -> bool {
    for _ in 0..100 {
        if user_name(channel.clone(), pool).await == wanted {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn edits_apply_to_new_calls_and_live_streams_finish_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stubs.yaml");
    std::fs::write(&file, stubs("v1")).unwrap();
    let protos = common::repo_root().join("protos/myapp");
    let (_server, addr) = common::spawn_serve_with(&[
        "--protos",
        common::path_str(&protos),
        "--stubs",
        common::path_str(dir.path()),
    ])
    .await;
    let pool = streamstorm::proto::load_pool(&[protos], &[]).unwrap();
    let channel = common::connect(addr).await;
    assert_eq!(user_name(channel.clone(), &pool).await, "v1");

    let request = json_message(&pool, "myapp.SubscribeRequest", json!({}));
    let live =
        tokio::spawn(call(channel.clone(), &pool, "myapp.NotificationService/Subscribe", vec![request]));
    tokio::time::sleep(Duration::from_millis(100)).await;

    std::fs::write(&file, stubs("v2")).unwrap();
    assert!(name_becomes(&channel, &pool, "v2").await, "the edit never took effect");

    let live = live.await.unwrap();
    assert_eq!(live.status.code(), Code::Ok, "the stream in flight was not disturbed");
    let messages: Vec<_> = live
        .responses
        .iter()
        .map(|m| message_to_json(m, FieldNames::Proto, DefaultFields::Skip).unwrap()["message"].clone())
        .collect();
    assert_eq!(messages, [json!("v1"), json!("v1"), json!("v1")]);

    std::fs::write(&file, "- service: myapp.UserService\n  method: Nope\n").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(user_name(channel.clone(), &pool).await, "v2", "a broken edit must keep the old stubs");

    std::fs::write(&file, stubs("v3")).unwrap();
    assert!(name_becomes(&channel, &pool, "v3").await, "a fixed edit takes effect again");
}
