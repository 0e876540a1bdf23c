//! The telemetry listener of `serve`: `/metrics` counts reconcile exactly with what a client
//! observed (streams, messages, faults by kind and code), per-stream series appear only for the
//! streams asked for, `/streams` lists live streams, and the page stays small at many streams.

mod common;

use std::time::Duration;

use common::scrape::{get, parse_samples, sum};
use prost_reflect::DescriptorPool;
use tonic::Code;

/// The profile's sections after `server`.
const PROFILE: &str = r#"chaos:
  seed: 7
  rules:
    - match: { method: myapp.UserService/GetUser }
      abort: { rate: 100%, code: UNAVAILABLE }
    - match: { method: myapp.NotificationService/Subscribe }
      fail: { rate: 100%, after_messages: 3, code: INTERNAL }
metrics:
  per_stream: { max_streams: 2 }
"#;

fn subscribe(pool: &DescriptorPool) -> Vec<streamstorm::proto::OutboundMessage> {
    vec![common::json_message(pool, "myapp.SubscribeRequest", serde_json::json!({"topics": ["a"]}))]
}

/// A server whose Subscribe streams send `messages` spaced by `interval` and never fail.
async fn serve_long_streams(dir: &std::path::Path, messages: &str, interval: &str) -> common::ServeProcess {
    let profile = common::write_profile(dir, &PROFILE.replace("after_messages: 3", "after_messages: 1000"));
    let args = ["--profile", common::path_str(&profile), "--default-stream-messages", messages];
    common::spawn_serve_process(&[&args[..], &["--default-stream-interval", interval]].concat(), &[]).await
}

#[tokio::test]
async fn counters_reconcile_with_what_the_client_saw() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), PROFILE);
    let server = common::spawn_serve_process(
        &["--profile", common::path_str(&profile), "--default-stream-messages", "5"],
        &[],
    )
    .await;
    let pool = common::example_pool();
    let channel = common::connect(server.addr).await;

    let (mut aborted, mut failed, mut received, mut clean) = (0, 0, 0, 0);
    for _ in 0..7 {
        let request =
            common::json_message(&pool, "myapp.GetUserRequest", serde_json::json!({"user_id": "u"}));
        let outcome = common::call(channel.clone(), &pool, "myapp.UserService/GetUser", vec![request]).await;
        assert_eq!(outcome.status.code(), Code::Unavailable);
        aborted += 1;
    }
    for _ in 0..4 {
        let outcome =
            common::call(channel.clone(), &pool, "myapp.NotificationService/Subscribe", subscribe(&pool))
                .await;
        assert_eq!(outcome.status.code(), Code::Internal, "{:?}", outcome.status);
        received += outcome.responses.len();
        failed += 1;
    }
    for _ in 0..3 {
        let outcome = common::call(
            channel.clone(),
            &pool,
            "myapp.ChatService/Chat",
            vec![common::json_message(&pool, "myapp.ChatMessage", serde_json::json!({"content": "hi"}))],
        )
        .await;
        if outcome.status.code() == Code::Ok {
            clean += 1;
        }
    }
    assert_eq!(clean, 3);

    let samples = parse_samples(&get(server.metrics, "/metrics").await);
    let faults = |kind: &str, code: &str| {
        sum(&samples, "streamstorm_faults_injected_total", &[("kind", kind), ("code", code)])
    };
    assert_eq!(faults("abort", "UNAVAILABLE"), aborted as f64);
    assert_eq!(faults("fail", "INTERNAL"), failed as f64);
    let subscribe_labels = [("service", "myapp.NotificationService"), ("method", "Subscribe")];
    assert_eq!(sum(&samples, "streamstorm_messages_sent_total", &subscribe_labels), received as f64);
    assert_eq!(received, 4 * 3, "each Subscribe fails after exactly 3 messages");
    assert_eq!(sum(&samples, "streamstorm_messages_received_total", &subscribe_labels), 4.0);
    let ended = |method: &str, code: &str| {
        sum(&samples, "streamstorm_streams_ended_total", &[("method", method), ("code", code)])
    };
    assert_eq!(ended("GetUser", "UNAVAILABLE"), aborted as f64);
    assert_eq!(ended("Subscribe", "INTERNAL"), failed as f64);
    assert_eq!(ended("Chat", "OK"), clean as f64);
    assert_eq!(sum(&samples, "streamstorm_streams_started_total", &[]), (aborted + failed + clean) as f64);
    assert_eq!(sum(&samples, "streamstorm_streams_active", &[]), 0.0);
    assert_eq!(sum(&samples, "streamstorm_connections_active", &[]), 1.0);
    assert_eq!(
        sum(&samples, "streamstorm_stream_duration_seconds_count", &[("method", "Subscribe")]),
        failed as f64
    );
    assert!(samples.iter().all(|(series, _)| series.name.starts_with("streamstorm_")));
}

#[tokio::test]
async fn live_streams_are_listed_and_only_the_first_few_get_series() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_long_streams(dir.path(), "1000", "100ms").await;
    let pool = common::example_pool();
    let channel = common::connect(server.addr).await;
    let subscribe_type = common::message_type(&pool, "myapp.Notification");
    let mut streams = Vec::new();
    for _ in 0..5 {
        let requests = futures::stream::iter(subscribe(&pool));
        let mut stream = common::open_stream(
            channel.clone(),
            "/myapp.NotificationService/Subscribe",
            subscribe_type.clone(),
            requests,
        )
        .await
        .unwrap();
        stream.message().await.unwrap().expect("a first message");
        streams.push(stream);
    }

    let listing: serde_json::Value = serde_json::from_str(&get(server.metrics, "/streams").await).unwrap();
    assert_eq!(listing["active"], 5, "{listing}");
    let first = &listing["streams"][0];
    assert_eq!(first["method"], "Subscribe");
    assert_eq!(first["messages_received"], 1);
    assert!(first["messages_sent"].as_u64().unwrap() >= 1);
    assert_eq!(first["faults"][0], "fail INTERNAL after 1000 messages", "{first}");
    let limited: serde_json::Value =
        serde_json::from_str(&get(server.metrics, "/streams?limit=2").await).unwrap();
    assert_eq!(limited["listed"], 2);

    let samples = parse_samples(&get(server.metrics, "/metrics").await);
    let per_stream: Vec<_> =
        samples.iter().filter(|(series, _)| series.name == "streamstorm_stream_messages_sent").collect();
    assert_eq!(per_stream.len(), 2, "max_streams: 2 caps the per-stream series");
    assert_eq!(sum(&samples, "streamstorm_streams_active", &[("method", "Subscribe")]), 5.0);

    drop(streams);
    assert!(
        common::eventually(Duration::from_secs(5), || {
            let metrics = server.metrics;
            let page = std::thread::spawn(move || {
                tokio::runtime::Runtime::new().unwrap().block_on(get(metrics, "/metrics"))
            });
            let samples = parse_samples(&page.join().unwrap());
            sum(&samples, "streamstorm_streams_active", &[]) == 0.0
                && !samples.iter().any(|(series, _)| series.name == "streamstorm_stream_messages_sent")
        })
        .await,
        "ended streams leave the active gauge and lose their series"
    );
}

#[tokio::test]
async fn the_metrics_page_stays_small_with_many_streams() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_long_streams(dir.path(), "2", "60s").await;
    let pool = common::example_pool();
    let subscribe_type = common::message_type(&pool, "myapp.Notification");
    let mut opened = Vec::new();
    for _ in 0..5 {
        let channel = common::connect(server.addr).await;
        for _ in 0..2000 {
            let channel = channel.clone();
            let requests = futures::stream::iter(subscribe(&pool));
            let subscribe_type = subscribe_type.clone();
            opened.push(tokio::spawn(async move {
                let mut stream = common::open_stream(
                    channel,
                    "/myapp.NotificationService/Subscribe",
                    subscribe_type,
                    requests,
                )
                .await
                .unwrap();
                stream.message().await.unwrap();
                stream
            }));
        }
    }
    let mut streams = Vec::new();
    for stream in opened {
        streams.push(stream.await.unwrap());
    }
    let page = get(server.metrics, "/metrics").await;
    let samples = parse_samples(&page);
    assert_eq!(sum(&samples, "streamstorm_streams_active", &[]), 10_000.0);
    // Bounded by methods × codes × buckets, not by streams: the same page at 10 or 100,000.
    eprintln!("/metrics at 10,000 streams: {} samples, {} bytes", samples.len(), page.len());
    assert!(samples.len() < 1500, "{} samples", samples.len());
    assert!(page.len() < 256 * 1024, "{} bytes", page.len());
}
