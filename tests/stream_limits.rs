//! Stream limits from the environment — our variable names and MockForge's — applied to every
//! stream: message cap, stream timeout, per-message latency range.

mod common;

use std::time::{Duration, Instant};

use common::{json_message, message_type};
use serde_json::json;
use tonic::Code;

/// Subscribes through `addr` and records each message's arrival and the final status.
async fn subscribe(addr: std::net::SocketAddr) -> (Vec<Duration>, tonic::Status) {
    let pool = common::example_pool();
    let request = json_message(&pool, "myapp.SubscribeRequest", json!({}));
    let output = message_type(&pool, "myapp.Notification");
    let started = Instant::now();
    let mut stream = common::open_stream(
        common::connect(addr).await,
        "/myapp.NotificationService/Subscribe",
        output,
        futures::stream::iter([request]),
    )
    .await
    .expect("the call starts");
    common::arrivals(&mut stream, started).await
}

/// Serves the example protos; the default responder streams `messages` spaced by `interval`.
async fn serve(
    messages: &str,
    interval: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, std::net::SocketAddr) {
    let protos = common::repo_root().join("protos/myapp");
    let args = [
        "--protos",
        common::path_str(&protos),
        "--default-stream-messages",
        messages,
        "--default-stream-interval",
        interval,
    ];
    common::spawn_serve_env(&args, env).await
}

#[tokio::test]
async fn mockforge_names_cap_messages_and_add_latency() {
    let env = [
        ("MOCKFORGE_GRPC_MAX_STREAM_MESSAGES", "3"),
        ("MOCKFORGE_GRPC_LATENCY_MIN_MS", "100"),
        ("MOCKFORGE_GRPC_LATENCY_MAX_MS", "150"),
    ];
    let (_server, addr) = serve("10", "0s", &env).await;
    let (arrivals, status) = subscribe(addr).await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    assert_eq!(arrivals.len(), 3, "capped at 3 of 10");
    let mut previous = Duration::ZERO;
    for arrival in arrivals {
        let gap = arrival - previous;
        assert!(gap >= Duration::from_millis(95) && gap < Duration::from_millis(450), "latency gap {gap:?}");
        previous = arrival;
    }
}

#[tokio::test]
async fn our_stream_timeout_wins_over_mockforges() {
    let env = [("STREAMSTORM_STREAM_TIMEOUT", "500"), ("MOCKFORGE_GRPC_STREAM_TIMEOUT", "60000")];
    let (_server, addr) = serve("100", "200ms", &env).await;
    let started = Instant::now();
    let (arrivals, status) = subscribe(addr).await;
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!((2..=4).contains(&arrivals.len()), "{arrivals:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_bad_value_is_invalid_input() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args([
            "serve",
            "--protos",
            common::path_str(&common::repo_root().join("protos/myapp")),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("MOCKFORGE_GRPC_LATENCY_MAX_MS", "fast")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("$MOCKFORGE_GRPC_LATENCY_MAX_MS: expected a whole number")
    );
}
