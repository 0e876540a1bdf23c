//! How scripts bind and fail: chosen by a stub's `output.script`, bound by path ahead of stubs,
//! run-time template errors ending only their stream, `error` entries with their code.

mod common;

use std::path::Path;

use common::{TestServer, call, json_message};
use serde_json::{Value, json};
use streamstorm::proto::json::{DefaultFields, FieldNames, message_to_json};
use tonic::Code;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn field(outcome: &common::CallOutcome, name: &str) -> Vec<Value> {
    outcome
        .responses
        .iter()
        .map(|m| message_to_json(m, FieldNames::Proto, DefaultFields::Skip).unwrap()[name].clone())
        .collect()
}

fn topics(outcome: &common::CallOutcome) -> Vec<Value> {
    field(outcome, "topic")
}

/// Plain-text entries fill the Notification's `message`, the field named like a body.
fn texts(outcome: &common::CallOutcome) -> Vec<Value> {
    field(outcome, "message")
}

async fn subscribe(server: &TestServer, request: Value) -> common::CallOutcome {
    let request = json_message(&server.pool, "myapp.SubscribeRequest", request);
    call(server.channel().await, &server.pool, "myapp.NotificationService/Subscribe", vec![request]).await
}

#[tokio::test]
async fn stubs_choose_scripts_by_request() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("stubs.yaml"),
        r#"
- service: myapp.NotificationService
  method: Subscribe
  input: { contains: { topics: ["news"] } }
  output: { script: scripts/news.jsonl }
- service: myapp.NotificationService
  method: Subscribe
  output: { data: { topic: "plain stub" } }
"#,
    );
    write(
        &dir.path().join("scripts/news.jsonl"),
        "{\"ts\":0,\"dir\":\"out\",\"text\":\"{\\\"topic\\\":\\\"{{request.topics[0]}} first\\\"}\"}\n{\"ts\":50,\"dir\":\"out\",\"text\":\"{\\\"topic\\\":\\\"then {{request.topics.length}}\\\"}\"}\n",
    );
    let server = TestServer::start_with_stubs(&["protos/myapp"], &[dir.path().to_str().unwrap()]).await;
    let outcome = subscribe(&server, json!({"topics": ["news", "sport"]})).await;
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    assert_eq!(topics(&outcome), [json!("news first"), json!("then 2")]);
    assert_eq!(topics(&subscribe(&server, json!({"topics": ["sport"]})).await), [json!("plain stub")]);
}

#[tokio::test]
async fn a_script_bound_by_path_answers_before_stubs() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("stubs.yaml"),
        "- service: myapp.NotificationService\n  method: Subscribe\n  output: { data: { topic: stub } }\n",
    );
    write(
        &dir.path().join("myapp.NotificationService/Subscribe.jsonl"),
        "{\"dir\":\"out\",\"text\":\"from the script\"}\n",
    );
    let server = TestServer::start_with_stubs(&["protos/myapp"], &[dir.path().to_str().unwrap()]).await;
    assert_eq!(texts(&subscribe(&server, json!({})).await), [json!("from the script")]);
}

#[tokio::test]
async fn a_template_failing_at_run_time_ends_only_its_stream() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("myapp.NotificationService/Subscribe.jsonl");
    write(
        &script,
        "{\"dir\":\"out\",\"text\":\"fine\"}\n{\"dir\":\"out\",\"text\":\"{{randInt request.interval 1}}\"}\n",
    );
    let server = TestServer::start_with_stubs(&["protos/myapp"], &[dir.path().to_str().unwrap()]).await;
    let failing = subscribe(&server, json!({"interval": 5})).await;
    assert_eq!(texts(&failing), [json!("fine")]);
    assert_eq!(failing.status.code(), Code::Internal);
    assert!(
        failing.status.message().starts_with(&format!("script {}:2: ", script.display())),
        "{:?}",
        failing.status
    );
    let fine = subscribe(&server, json!({"interval": 0})).await;
    assert_eq!(fine.status.code(), Code::Ok, "the next stream is unaffected: {:?}", fine.status);
}

#[tokio::test]
async fn error_entries_end_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("myapp.NotificationService/Subscribe.jsonl"),
        "{\"dir\":\"out\",\"text\":\"one\"}\n{\"ts\":10,\"dir\":\"out\",\"text\":\"quota used up\",\"error\":true,\"code\":\"RESOURCE_EXHAUSTED\"}\n{\"ts\":20,\"dir\":\"out\",\"text\":\"never\"}\n",
    );
    let server = TestServer::start_with_stubs(&["protos/myapp"], &[dir.path().to_str().unwrap()]).await;
    let outcome = subscribe(&server, json!({})).await;
    assert_eq!(texts(&outcome), [json!("one")]);
    assert_eq!((outcome.status.code(), outcome.status.message()), (Code::ResourceExhausted, "quota used up"));
}

/// Recorded client messages that are the same are told apart by a per-stream counter: the
/// k-th message fires the entry whose condition wants k - 1 messages before it, wherever that
/// entry sits in the file.
#[tokio::test]
async fn a_counter_in_state_orders_identical_recorded_messages() {
    let dir = tempfile::tempdir().unwrap();
    let entry = |k: u32, reply: &str| {
        format!(
            r#"{{"ts":0,"dir":"in","text":{{"content":"ping"}},"condition":"{{{{(request.ws.state.received || 0) == {}}}}}","received":"{{{{(request.ws.state.received || 0) + 1}}}}","responses":[{{"ts":0,"text":"{reply}"}}]}}"#,
            k - 1
        )
    };
    let script = [entry(3, "third"), entry(1, "first"), entry(2, "second")].join("\n");
    write(&dir.path().join("myapp.ChatService/Chat.jsonl"), &script);
    let server = TestServer::start_with_stubs(&["protos/myapp"], &[dir.path().to_str().unwrap()]).await;
    let ping = || json_message(&server.pool, "myapp.ChatMessage", json!({"user_id": "u", "content": "ping"}));
    let outcome = call(
        server.channel().await,
        &server.pool,
        "myapp.ChatService/Chat",
        vec![ping(), ping(), ping(), ping()],
    )
    .await;
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    // The fourth matches no entry: it gets no reply.
    assert_eq!(field(&outcome, "content"), [json!("first"), json!("second"), json!("third")]);
}

/// A stub's trailers go with the status a script it chose fails with.
#[tokio::test]
async fn a_failing_script_still_carries_the_stub_trailers() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("stubs.yaml"),
        r#"
- service: myapp.NotificationService
  method: Subscribe
  output: { script: broken.jsonl, headers: { x-h: "h" }, trailers: { x-served-by: "t-{{request.topics[0]}}" } }
"#,
    );
    write(
        &dir.path().join("broken.jsonl"),
        "{\"ts\":0,\"dir\":\"out\",\"text\":\"sent\"}\n{\"ts\":\"{{'soon'}}\",\"dir\":\"out\",\"text\":\"never\"}\n",
    );
    let server = TestServer::start_with_stubs(&["protos/myapp"], &[dir.path().to_str().unwrap()]).await;
    let outcome = subscribe(&server, json!({"topics": ["news"]})).await;
    assert_eq!(outcome.status.code(), Code::Internal, "{:?}", outcome.status);
    assert!(outcome.status.message().contains("broken.jsonl:2"), "{:?}", outcome.status);
    assert_eq!(texts(&outcome), [json!("sent")]);
    assert_eq!(outcome.status.metadata().get("x-served-by").and_then(|v| v.to_str().ok()), Some("t-news"));
}

/// An inbound `error` entry ends the stream at its `ts` after the message: with its `response`
/// as the status message and its `details`, or with no message when it has no `response`.
#[tokio::test]
async fn inbound_error_entries_end_at_their_time() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("myapp.ChatService/Chat.jsonl"),
        concat!(
            r#"{"ts":40,"dir":"in","text":{"content":"stop"},"error":true,"code":"ABORTED","response":"stopped {{request.ws.message.user_id}}","details":[{"@type":"google.rpc.ErrorInfo","reason":"STOP"}]}"#,
            "\n",
            r#"{"ts":10,"dir":"in","text":{"content":"quiet"},"error":true,"code":"DATA_LOSS"}"#,
            "\n"
        ),
    );
    let server = TestServer::start_with_stubs(&["protos/myapp"], &[dir.path().to_str().unwrap()]).await;
    let message = |content: &str| {
        json_message(&server.pool, "myapp.ChatMessage", json!({"user_id": "u9", "content": content}))
    };
    let started = std::time::Instant::now();
    let outcome =
        call(server.channel().await, &server.pool, "myapp.ChatService/Chat", vec![message("stop")]).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(40), "{:?}", started.elapsed());
    assert_eq!((outcome.status.code(), outcome.status.message()), (Code::Aborted, "stopped u9"));
    let details = <tonic_types::pb::Status as prost::Message>::decode(outcome.status.details()).unwrap();
    assert_eq!((details.code, details.message.as_str()), (Code::Aborted as i32, "stopped u9"));
    assert_eq!(details.details[0].type_url, "type.googleapis.com/google.rpc.ErrorInfo");
    let outcome =
        call(server.channel().await, &server.pool, "myapp.ChatService/Chat", vec![message("quiet")]).await;
    assert_eq!((outcome.status.code(), outcome.status.message()), (Code::DataLoss, ""));
}
