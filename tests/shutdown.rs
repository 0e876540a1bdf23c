//! Graceful shutdown: GOAWAY, in-flight streams drained within the grace period, the rest
//! closed; SIGTERM does the same for the binary.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestServer, call, json_message};
use serde_json::json;
use streamstorm::server::{DefaultResponse, ServerSettings};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Code;

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
    let request = json_message(&server.pool, "myapp.SubscribeRequest", json!({}));
    let in_flight = tokio::spawn(call(
        server.channel().await,
        &server.pool,
        "myapp.NotificationService/Subscribe",
        vec![request],
    ));
    assert!(common::eventually(Duration::from_secs(2), || server.handle.streams_active() == 1).await);

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
    let request = json_message(&server.pool, "myapp.SubscribeRequest", json!({}));
    let in_flight = tokio::spawn(call(
        server.channel().await,
        &server.pool,
        "myapp.NotificationService/Subscribe",
        vec![request],
    ));
    assert!(common::eventually(Duration::from_secs(2), || server.handle.streams_active() == 1).await);

    let started = Instant::now();
    server.stop().await;
    let stopped_after = started.elapsed();
    assert!(stopped_after >= grace && stopped_after < grace + Duration::from_secs(1), "{stopped_after:?}");
    let outcome = in_flight.await.unwrap();
    assert_ne!(outcome.status.code(), Code::Ok, "a cut stream must not look complete");
}

#[tokio::test]
async fn sigterm_drains_then_exits_zero() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args([
            "serve",
            "--protos",
            common::path_str(&common::repo_root().join("protos")),
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--default-stream-messages",
            "3",
            "--default-stream-interval",
            "300ms",
            "--shutdown-grace",
            "5s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut banner = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut banner).await.unwrap();
    let addr = banner.rsplit(' ').next().unwrap().trim().to_owned();

    let pool = common::example_pool();
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let request = json_message(&pool, "myapp.SubscribeRequest", json!({}));
    let in_flight = tokio::spawn(call(channel, &pool, "myapp.NotificationService/Subscribe", vec![request]));
    tokio::time::sleep(Duration::from_millis(150)).await;

    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let outcome = in_flight.await.unwrap();
    assert_eq!(outcome.status.code(), Code::Ok, "{:?}", outcome.status);
    assert_eq!(outcome.responses.len(), 3);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await.expect("exits").unwrap();
    assert!(status.success(), "{status}");
}
