//! Every JSONL example of the MockForge streaming guide, as shipped under `stubs/scripts/`,
//! driven by real clients (Python grpcio, Node grpc-js): content, order, timing, state and
//! endings.

mod common;

use common::TestServer;
use common::interop::{Client, ClientCall, ClientOutcome};
use serde_json::{Value, json};

const SUBSCRIBE: &str = "myapp.NotificationService/Subscribe";
const UPLOAD: &str = "myapp.UploadService/UploadFile";
const CHAT: &str = "myapp.ChatService/Chat";

async fn serve(example: &str) -> TestServer {
    TestServer::start_with_stubs(&["protos/myapp"], &[&format!("stubs/scripts/{example}")]).await
}

fn field<'a>(outcome: &'a ClientOutcome, name: &str) -> Vec<&'a str> {
    outcome.responses.iter().map(|response| response[name].as_str().unwrap_or_default()).collect()
}

/// Asserts that message `index` arrived `expected_ms` after the call started, within the
/// tolerance a loaded two-core machine needs (timers fire late, never early).
fn assert_arrival(outcome: &ClientOutcome, index: usize, expected_ms: f64) {
    let at = outcome.received_at_ms[index];
    assert!(
        at >= expected_ms - 20.0 && at <= expected_ms + 400.0,
        "message {index} at {at} ms, expected {expected_ms} ms"
    );
}

fn is_uuid(text: &str) -> bool {
    regex::Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        .unwrap()
        .is_match(text)
}

#[tokio::test]
async fn basic_server_streaming_follows_the_timeline() {
    let server = serve("notifications-basic").await;
    let outcome = ClientCall::new(Client::Python, server.addr, SUBSCRIBE)
        .requests(json!([{"topics": ["user"]}]))
        .run()
        .await;
    assert_eq!(outcome.code, "OK", "{}", outcome.details);
    assert_eq!(
        field(&outcome, "message"),
        ["Connected", "New user registered", "Payment processed", "Maintenance scheduled"]
    );
    assert_eq!(outcome.responses[3]["severity"], json!("WARNING"));
    for (index, expected) in [0.0, 1000.0, 2000.0, 3000.0].into_iter().enumerate() {
        assert_arrival(&outcome, index, expected);
    }
}

#[tokio::test]
async fn dynamic_server_streaming_reads_the_request_and_is_reproducible() {
    let request = json!([{"topics": ["user", "payment"], "type": "REALTIME"}]);
    let first = serve("notifications-dynamic").await;
    let outcome = ClientCall::new(Client::Node, first.addr, SUBSCRIBE).requests(request.clone()).run().await;
    assert_eq!(outcome.code, "OK", "{}", outcome.details);
    assert_eq!(outcome.responses.len(), 4);
    assert_eq!(outcome.responses[0]["topic"], json!("user"));
    assert_eq!(outcome.responses[0]["message"], json!("Subscribed to 2 topics"));
    for response in &outcome.responses[1..3] {
        assert!(["user", "payment"].contains(&response["topic"].as_str().unwrap()), "{response}");
        assert!(response["message"].as_str().unwrap().len() > 10, "random text: {response}");
    }
    assert_eq!(outcome.responses[3]["message"], json!("Stream ending"));
    let stamped = outcome.responses[0]["timestamp"]["seconds"].as_str().unwrap().parse::<u64>().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(now.abs_diff(stamped) < 30, "{{{{now}}}} is the current time");
    assert_arrival(&outcome, 3, 5000.0);

    // Same seed, same stream id: the same random text.
    let second = serve("notifications-dynamic").await;
    let again = ClientCall::new(Client::Node, second.addr, SUBSCRIBE).requests(request).run().await;
    assert_eq!(field(&again, "message")[1..3], field(&outcome, "message")[1..3]);
}

#[tokio::test]
async fn client_streaming_answers_once_with_a_fresh_id() {
    let server = serve("upload-basic").await;
    let outcome = ClientCall::new(Client::Python, server.addr, UPLOAD)
        .requests(json!([{"data": "Y2h1bmsx", "sequence": 0}, {"data": "Y2h1bmsy", "sequence": 1}]))
        .run()
        .await;
    assert_eq!(outcome.code, "OK", "{}", outcome.details);
    assert_eq!(outcome.responses.len(), 1);
    assert!(is_uuid(outcome.responses[0]["file_id"].as_str().unwrap()), "{:?}", outcome.responses);
    assert_eq!(outcome.responses[0]["total_size"], json!("1024"));
}

#[tokio::test]
async fn client_streaming_keeps_state_across_chunks() {
    let server = serve("upload-stateful").await;
    let chunks = json!([
        {"data": "Y2h1bmsx", "sequence": 0},
        {"data": "Y2h1bmsy", "sequence": 1},
        {"data": "Y2h1bmsz", "sequence": 2, "is_last": true}
    ]);
    let outcome = ClientCall::new(Client::Python, server.addr, UPLOAD).requests(chunks).run().await;
    assert_eq!(outcome.code, "OK", "{}", outcome.details);
    let response = &outcome.responses[0];
    assert!(is_uuid(response["file_id"].as_str().unwrap()), "{response}");
    // Two chunks counted before the last one: 2 × 1024.
    assert_eq!(response["total_size"], json!("2048"));

    // One chunk only: its own entry answers, as plain text in the first string field.
    let outcome =
        ClientCall::new(Client::Python, server.addr, UPLOAD).requests(json!([{"sequence": 0}])).run().await;
    assert_eq!(outcome.responses, [json!({"file_id": "Chunk 0 received"})]);
}

#[tokio::test]
async fn chat_welcomes_then_answers_join_text_and_leave() {
    let server = serve("chat").await;
    let outcome = ClientCall::new(Client::Node, server.addr, CHAT)
        .requests(json!([
            {"user_id": "user123", "content": "Joined chat", "type": "JOIN"},
            {"user_id": "user123", "content": "Hello from client", "type": "TEXT"},
            {"user_id": "user123", "content": "Leaving chat", "type": "LEAVE"}
        ]))
        .arg("--send-interval-ms")
        .arg("300")
        .arg("--cancel-after")
        .arg("4")
        .run()
        .await;
    assert_eq!(
        field(&outcome, "content"),
        ["Welcome to chat!", "user123 joined the chat", "Hello from client", "user123 left the chat"]
    );
    assert_eq!(field(&outcome, "user_id"), ["system", "system", "user123", "system"]);
    assert_eq!(outcome.responses[1]["type"], json!("SYSTEM"));
    // TEXT is the enum's default, which proto-loader (defaults: false) leaves out.
    assert_eq!(outcome.responses[2].get("type"), None);
    // The welcome is sent before the client says anything.
    assert!(outcome.received_at_ms[0] < outcome.sent_at_ms[1], "{outcome:?}");
}

#[tokio::test]
async fn auth_state_machine() {
    let server = serve("chat-auth").await;
    let said = |content: &str| json!({"user_id": "u1", "content": content});
    let outcome = ClientCall::new(Client::Python, server.addr, CHAT)
        .requests(json!([
            said("hello"),
            said("AUTH"),
            said("hi there"),
            said("HELP"),
            said("STATUS"),
            said("QUIT"),
            said("ignored")
        ]))
        .arg("--send-interval-ms")
        .arg("50")
        .run()
        .await;
    assert_eq!(outcome.code, "OK", "QUIT closes the stream normally: {}", outcome.details);
    let replies = field(&outcome, "content");
    assert_eq!(
        replies[..4],
        ["Please authenticate first", "Authenticated", "hi there", "Available commands: MSG, QUIT, STATUS"]
    );
    // Plain-text replies fill `content`, the field named like a message body, not `user_id`,
    // the first string field; the echo is an object and keeps its `user_id`.
    assert_eq!(outcome.responses[2]["user_id"], json!("u1"), "authenticated messages are echoed");
    let status: u32 = replies[4].strip_prefix("Connected users: ").unwrap().parse().unwrap();
    assert!((1..=50).contains(&status));
    assert_eq!(replies[5], "Goodbye!");
    assert_eq!(replies.len(), 6, "nothing after QUIT");
}

#[tokio::test]
async fn message_limit_counts_per_stream() {
    let server = serve("message-limit").await;
    let requests: Vec<Value> = (0..103).map(|i| json!({"content": format!("m{i}")})).collect();
    let outcome = ClientCall::new(Client::Python, server.addr, CHAT).requests(json!(requests)).run().await;
    assert_eq!(outcome.code, "OK", "{}", outcome.details);
    let replies = field(&outcome, "content");
    assert_eq!(replies.len(), 103);
    assert!(replies[..100].iter().all(|reply| *reply == "Message received"));
    assert!(replies[100..].iter().all(|reply| *reply == "Message limit reached"));
}

#[tokio::test]
async fn stream_control_conditions_and_dynamic_intervals() {
    let server = serve("stream-control").await;
    let outcome = ClientCall::new(Client::Python, server.addr, SUBSCRIBE)
        .requests(json!([{"stream_enabled": true, "interval": 500}]))
        .run()
        .await;
    assert_eq!(outcome.code, "OK", "{}", outcome.details);
    assert_eq!(
        field(&outcome, "message"),
        ["Starting stream", "Random interval message", "Custom interval message"]
    );
    let random_at = outcome.received_at_ms[1];
    assert!((1000.0..5400.0).contains(&random_at), "randInt 1000 5000: {random_at}");
    // Its 500 ms have passed by then: it follows at once.
    assert!(outcome.received_at_ms[2] - random_at < 200.0, "{outcome:?}");

    let outcome = ClientCall::new(Client::Python, server.addr, SUBSCRIBE)
        .requests(json!([{"stream_enabled": false}]))
        .run()
        .await;
    assert_eq!(field(&outcome, "message"), ["Random interval message", "Custom interval message"]);
    // `request.interval || 2000`: no interval given, so 2 s.
    assert!(outcome.received_at_ms[1] >= 1980.0, "{outcome:?}");
}

#[tokio::test]
async fn connection_id_is_the_streams_connection() {
    let server = serve("connection-limits").await;
    let outcome = ClientCall::new(Client::Node, server.addr, SUBSCRIBE)
        .requests(json!([{}]))
        .arg("--cancel-after")
        .arg("1")
        .run()
        .await;
    // The client's is the server's first connection.
    assert_eq!(field(&outcome, "message"), ["Connection conn-1 established"]);
}

#[tokio::test]
async fn load_balancing_answers_at_random_times() {
    let server = serve("load-balancing").await;
    let outcome = ClientCall::new(Client::Python, server.addr, SUBSCRIBE).requests(json!([{}])).run().await;
    let replies = field(&outcome, "message");
    assert!(regex::Regex::new("^Response from server [1-3]$").unwrap().is_match(replies[0]), "{replies:?}");
    assert!(
        regex::Regex::new("^Health check from server [1-3]$").unwrap().is_match(replies[1]),
        "{replies:?}"
    );
    assert!((100.0..1400.0).contains(&outcome.received_at_ms[0]), "{outcome:?}");
    assert!((2000.0..5400.0).contains(&outcome.received_at_ms[1]), "{outcome:?}");
}

#[tokio::test]
async fn errors_refuse_bad_messages_then_fail_the_stream() {
    let server = serve("errors").await;
    let long = "x".repeat(600);
    let outcome = ClientCall::new(Client::Python, server.addr, CHAT)
        .requests(json!([{}, {"content": long}, {"content": "fine"}]))
        .run()
        .await;
    assert_eq!(field(&outcome, "content"), ["Empty message not allowed", "Message too long (max 500 chars)"]);
    assert_eq!((outcome.code.as_str(), outcome.details.as_str()), ("UNAVAILABLE", "Network error occurred"));
    let ended = outcome.received_at_ms.last().copied().unwrap_or_default();
    assert!(ended < 1000.0, "the refusals come at once: {outcome:?}");
}

#[tokio::test]
async fn recovery_plays_entries_in_file_order() {
    let server = serve("recovery").await;
    let outcome = ClientCall::new(Client::Python, server.addr, SUBSCRIBE).requests(json!([{}])).run().await;
    assert_eq!(outcome.code, "OK", "{}", outcome.details);
    let replies = field(&outcome, "message");
    assert_eq!(replies[..2], ["Connection lost, attempting reconnect...", "Reconnected successfully"]);
    // `lastMessageId` is never set: it interpolates as nothing.
    assert_eq!(replies[2], "Resuming stream from message ");
    assert_arrival(&outcome, 1, 2000.0);
    // Due at 100 ms, after an entry due at 2000 ms: sent right after it.
    assert!(outcome.received_at_ms[2] - outcome.received_at_ms[1] < 200.0, "{outcome:?}");
}
