//! Graceful shutdown: GOAWAY, in-flight streams drained within the grace period, the rest
//! closed; SIGTERM does the same for the binary.

mod common;

use std::time::{Duration, Instant};

use common::{CallOutcome, TestServer, call, json_message};
use prost_reflect::DescriptorPool;
use serde_json::json;
use streamstorm::server::{DefaultResponse, ServerSettings};
use tonic::Code;
use tonic::transport::Channel;

fn subscribe(channel: Channel, pool: &DescriptorPool) -> impl Future<Output = CallOutcome> + Send + 'static {
    let request = json_message(pool, "myapp.SubscribeRequest", json!({}));
    call(channel, pool, "myapp.NotificationService/Subscribe", vec![request])
}

/// Starts a subscription and waits until the server counts it as open.
async fn open_subscription(server: &TestServer) -> tokio::task::JoinHandle<CallOutcome> {
    let in_flight = tokio::spawn(subscribe(server.channel().await, &server.pool));
    assert!(common::eventually(Duration::from_secs(2), || server.handle.streams_active() == 1).await);
    in_flight
}

fn settings(messages: u32, interval: Duration, grace: Duration) -> ServerSettings {
    ServerSettings {
        default_response: DefaultResponse::Empty { stream_messages: messages, stream_interval: interval },
        shutdown_grace: grace,
        ..ServerSettings::default()
    }
}

#[tokio::test]
async fn in_flight_streams_finish_within_the_grace_period() {
    let server = TestServer::start(settings(4, Duration::from_millis(250), Duration::from_secs(5))).await;
    let in_flight = open_subscription(&server).await;

    let addr = server.addr;
    let started = Instant::now();
    server.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener closes at once");

    let outcome = in_flight.await.unwrap();
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    assert_eq!(outcome.responses.len(), 4, "the stream was drained, not cut");
    server.stop().await;
    assert!(started.elapsed() < Duration::from_secs(3), "stopped once drained, not at the end of the grace");
}

#[tokio::test]
async fn streams_still_open_after_the_grace_period_are_closed() {
    let grace = Duration::from_millis(300);
    let server = TestServer::start(settings(100, Duration::from_secs(1), grace)).await;
    let in_flight = open_subscription(&server).await;

    let started = Instant::now();
    server.stop().await;
    let stopped_after = started.elapsed();
    assert!(stopped_after >= grace && stopped_after < grace + Duration::from_secs(1), "{stopped_after:?}");
    let outcome = in_flight.await.unwrap();
    assert_ne!(outcome.status.code(), Code::Ok, "a cut stream must not look complete");
}

#[tokio::test]
async fn sigterm_drains_then_exits_zero() {
    let (mut child, addr) = common::spawn_serve(&[
        "--default-stream-messages",
        "3",
        "--default-stream-interval",
        "300ms",
        "--shutdown-grace",
        "5s",
    ])
    .await;
    let pool = common::example_pool();
    let in_flight = tokio::spawn(subscribe(common::connect(addr).await, &pool));
    tokio::time::sleep(Duration::from_millis(150)).await;

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let outcome = in_flight.await.unwrap();
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    assert_eq!(outcome.responses.len(), 3);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await.expect("exits").unwrap();
    assert!(status.success(), "{status}");
}
