//! Node @grpc/grpc-js with @grpc/proto-loader against the server: server streaming and bidi.

mod common;

use std::time::Duration;

use common::TestServer;
use common::interop::{Client, ClientCall};
use serde_json::json;
use streamstorm::server::{DefaultResponse, ServerSettings};

#[tokio::test]
async fn server_streaming_delivers_every_message() {
    let server = TestServer::start_echo().await;
    let outcome = ClientCall::new(Client::Node, server.addr, "myapp.NotificationService/Subscribe")
        .requests(json!([{"topics": ["user", "payment"], "type": "REALTIME"}]))
        .run()
        .await;
    assert_eq!(outcome.code, "OK", "{}", outcome.details);
    let topics: Vec<_> = outcome.responses.iter().map(|r| r["topic"].clone()).collect();
    assert_eq!(topics, [json!("user"), json!("payment"), json!("user")]);
    // proto-loader renders Timestamps as objects and enums by name.
    assert_eq!(outcome.responses[0]["timestamp"], json!({"seconds": "1704110400"}));
    assert_eq!(outcome.responses[0]["severity"], json!("WARNING"));
}

#[tokio::test]
async fn bidi_is_interactive() {
    let server = TestServer::start_echo().await;
    let outcome = ClientCall::new(Client::Node, server.addr, "myapp.ChatService/Chat")
        .requests(json!([
            {"user_id": "user123", "content": "Joined chat", "type": "JOIN"},
            {"user_id": "user123", "content": "Hello from client", "type": "TEXT"},
            {"user_id": "user123", "content": "Leaving chat", "type": "LEAVE"}
        ]))
        .arg("--send-interval-ms")
        .arg("800")
        .run()
        .await;
    assert_eq!(outcome.code, "OK", "{}", outcome.details);
    let contents: Vec<_> = outcome.responses.iter().map(|r| r["content"].clone()).collect();
    assert_eq!(
        contents,
        [json!("echo: Joined chat"), json!("echo: Hello from client"), json!("echo: Leaving chat")]
    );
    assert_eq!(outcome.responses[0]["type"], json!("SYSTEM"));
    assert!(outcome.received_at_ms[0] < *outcome.sent_at_ms.last().unwrap(), "{outcome:?}");
}

#[tokio::test]
async fn cancelling_mid_stream_stops_the_server_side_at_once() {
    let settings = ServerSettings {
        default_response: DefaultResponse::Empty {
            stream_messages: 5,
            stream_interval: Duration::from_secs(2),
        },
        ..ServerSettings::default()
    };
    let server = TestServer::start(settings).await;
    let outcome = ClientCall::new(Client::Node, server.addr, "myapp.NotificationService/Subscribe")
        .requests(json!([{"topics": ["a"]}]))
        .arg("--cancel-after")
        .arg("1")
        .run()
        .await;
    assert_eq!(outcome.code, "CANCELLED");
    assert_eq!(outcome.responses.len(), 1);
    // The server drops the stream on the client's RST_STREAM, long before its next message.
    assert!(common::eventually(Duration::from_millis(1000), || server.handle.streams_active() == 0).await);
}
