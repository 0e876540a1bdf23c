//! All four call patterns through a dynamic tonic client, plus the statuses for bad calls.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::{TestServer, call, call_raw, json_message, message_type};
use prost_reflect::ReflectMessage;
use serde_json::json;
use streamstorm::proto::OutboundMessage;
use streamstorm::server::{DefaultResponse, ServerSettings};
use tonic::Code;

fn paced(messages: u32, interval: Duration) -> ServerSettings {
    ServerSettings {
        default_response: DefaultResponse::Empty { stream_messages: messages, stream_interval: interval },
        ..ServerSettings::default()
    }
}

#[tokio::test]
async fn unary_answers_a_default_message() {
    let server = TestServer::start(ServerSettings::default()).await;
    let request = json_message(&server.pool, "myapp.GetUserRequest", json!({"user_id": "u1"}));
    let outcome =
        call(server.channel().await, &server.pool, "myapp.UserService/GetUser", vec![request]).await;
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    assert_eq!(outcome.responses.len(), 1);
    assert_eq!(outcome.responses[0].descriptor().full_name(), "myapp.User");
}

#[tokio::test]
async fn server_streaming_paces_messages_as_they_are_produced() {
    let interval = Duration::from_millis(150);
    let server = TestServer::start(paced(4, interval)).await;
    let output = message_type(&server.pool, "myapp.Notification");
    let request = json_message(&server.pool, "myapp.SubscribeRequest", json!({"topics": ["user"]}));

    let started = Instant::now();
    let path = "/myapp.NotificationService/Subscribe";
    let mut stream =
        common::open_stream(server.channel().await, path, output, futures::stream::iter([request]))
            .await
            .expect("the call starts");
    let mut arrivals = Vec::new();
    while let Some(message) = stream.message().await.expect("the stream ends OK") {
        assert_eq!(message.descriptor().full_name(), "myapp.Notification");
        arrivals.push(started.elapsed());
    }
    assert_eq!(arrivals.len(), 4);
    // Each message arrives on its own, about one interval after the previous one: nothing is
    // buffered into one body.
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= interval - Duration::from_millis(20), "gap {gap:?} shorter than {interval:?}");
        assert!(gap < interval * 4, "gap {gap:?} far longer than {interval:?}");
    }
}

#[tokio::test]
async fn client_streaming_reads_every_message_then_answers() {
    let server = TestServer::start(ServerSettings::default()).await;
    let chunks = (0..5)
        .map(|i| json_message(&server.pool, "myapp.FileChunk", json!({"data": "AAEC", "sequence": i})))
        .collect();
    let outcome = call(server.channel().await, &server.pool, "myapp.UploadService/UploadFile", chunks).await;
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    assert_eq!(outcome.responses.len(), 1);
    assert_eq!(outcome.responses[0].descriptor().full_name(), "myapp.UploadResponse");
}

#[tokio::test]
async fn bidi_replies_while_the_client_is_still_sending() {
    let server = TestServer::start(ServerSettings::default()).await;
    let (sender, receiver) = tokio::sync::mpsc::channel::<OutboundMessage>(4);
    let output = message_type(&server.pool, "myapp.ChatMessage");
    let message =
        |content: &str| json_message(&server.pool, "myapp.ChatMessage", json!({"content": content}));

    sender.send(message("first")).await.unwrap();
    let requests = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let mut replies =
        common::open_stream(server.channel().await, "/myapp.ChatService/Chat", output, requests)
            .await
            .expect("the call starts");
    // One reply per message, each received before the next message is sent.
    for turn in 0..3 {
        let reply = tokio::time::timeout(Duration::from_secs(5), replies.message())
            .await
            .expect("a reply arrives while the request stream is still open")
            .expect("no error");
        assert!(reply.is_some(), "turn {turn}: reply expected");
        if turn < 2 {
            sender.send(message("next")).await.unwrap();
        }
    }
    drop(sender);
    assert!(replies.message().await.expect("the stream ends OK").is_none());
}

#[tokio::test]
async fn unknown_service_and_method_are_unimplemented() {
    let server = TestServer::start(ServerSettings::default()).await;
    let empty = message_type(&server.pool, "google.protobuf.Timestamp");
    for path in ["/myapp.Nope/Get", "/myapp.ChatService/Nope"] {
        let outcome = call_raw(server.channel().await, path.to_owned(), empty.clone(), vec![]).await;
        assert_eq!(outcome.status.code(), Code::Unimplemented, "{path}: {:?}", outcome.status);
    }
}

#[tokio::test]
async fn unimplemented_mode_refuses_every_method() {
    let settings =
        ServerSettings { default_response: DefaultResponse::Unimplemented, ..ServerSettings::default() };
    let server = TestServer::start(settings).await;
    let request = json_message(&server.pool, "myapp.GetUserRequest", json!({}));
    let outcome =
        call(server.channel().await, &server.pool, "myapp.UserService/GetUser", vec![request]).await;
    assert_eq!(outcome.status.code(), Code::Unimplemented);
    assert!(outcome.status.message().contains("myapp.UserService/GetUser"), "{:?}", outcome.status);
}

#[tokio::test]
async fn malformed_request_is_invalid_argument_and_other_streams_carry_on() {
    let server = TestServer::start(paced(3, Duration::from_millis(100))).await;
    let channel = server.channel().await;
    let subscribe = json_message(&server.pool, "myapp.SubscribeRequest", json!({"topics": ["a"]}));
    let healthy = tokio::spawn(call(
        channel.clone(),
        &server.pool,
        "myapp.NotificationService/Subscribe",
        vec![subscribe],
    ));

    // Field 1 with wire type 7 does not exist in protobuf.
    let garbage = OutboundMessage::Encoded(bytes::Bytes::from_static(&[0x0f, 0xff, 0xff]));
    let outcome = call(channel.clone(), &server.pool, "myapp.UserService/GetUser", vec![garbage]).await;
    assert_eq!(outcome.status.code(), Code::InvalidArgument, "{:?}", outcome.status);
    assert!(outcome.status.message().contains("myapp.GetUserRequest"), "{:?}", outcome.status);

    let healthy = healthy.await.unwrap();
    assert_eq!(healthy.status.code(), Code::Ok);
    assert_eq!(healthy.responses.len(), 3);
}

#[tokio::test]
async fn oversized_message_is_resource_exhausted() {
    let settings = ServerSettings { max_message_bytes: 1024, ..ServerSettings::default() };
    let server = TestServer::start(settings).await;
    let big = json_message(
        &server.pool,
        "myapp.FileChunk",
        json!({"data": base64::engine::general_purpose::STANDARD.encode([7u8; 4096])}),
    );
    let outcome =
        call(server.channel().await, &server.pool, "myapp.UploadService/UploadFile", vec![big]).await;
    assert_eq!(outcome.status.code(), Code::ResourceExhausted, "{:?}", outcome.status);

    let small = json_message(&server.pool, "myapp.FileChunk", json!({"data": "AAEC"}));
    let outcome =
        call(server.channel().await, &server.pool, "myapp.UploadService/UploadFile", vec![small]).await;
    assert_eq!(outcome.status.code(), Code::Ok);
}

#[tokio::test]
async fn unary_with_two_requests_is_internal() {
    let server = TestServer::start(ServerSettings::default()).await;
    let request = || json_message(&server.pool, "myapp.GetUserRequest", json!({"user_id": "u"}));
    let outcome =
        call(server.channel().await, &server.pool, "myapp.UserService/GetUser", vec![request(), request()])
            .await;
    assert_eq!(outcome.status.code(), Code::Internal, "{:?}", outcome.status);
}

#[tokio::test]
async fn streams_know_their_connection_and_are_counted() {
    let server = TestServer::start(paced(2, Duration::from_millis(400))).await;
    let pool = server.pool.clone();
    let channels = [server.channel().await, server.channel().await];
    let calls: Vec<_> = channels
        .iter()
        .flat_map(|channel| {
            (0..3).map(|_| {
                let request = json_message(&pool, "myapp.SubscribeRequest", json!({}));
                tokio::spawn(call(
                    channel.clone(),
                    &pool,
                    "myapp.NotificationService/Subscribe",
                    vec![request],
                ))
            })
        })
        .collect();
    assert!(common::eventually(Duration::from_secs(5), || server.handle.streams_active() == 6).await);
    let connections = server.handle.connections.summaries();
    assert_eq!(connections.len(), 2);
    assert!(connections.iter().all(|c| c.streams_active == 3), "{connections:?}");
    for outcome in futures::future::join_all(calls).await {
        assert_eq!(outcome.unwrap().status.code(), Code::Ok);
    }
    assert!(common::eventually(Duration::from_secs(5), || server.handle.streams_active() == 0).await);
}
