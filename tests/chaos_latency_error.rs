//! How closely injected latency holds at 1,000 concurrent streams: a fixed `per_message: 25ms`
//! from profile YAML, every gap between consecutive messages measured where a tonic client
//! reads them, and the error (measured minus configured) summarised at p50 and p99.
//! (Run it optimized, as the test command does: 1,000 streams in a debug build overload two
//! cores and measure the build, not the server.)

mod common;

use std::time::{Duration, Instant};

use common::chaos::start_with_profile;
use common::{json_message, message_type};
use prost_reflect::MessageDescriptor;
use serde_json::json;
use streamstorm::proto::OutboundMessage;
use tonic::Code;

const CONFIGURED_MS: f64 = 25.0;
const STREAMS: usize = 1000;
/// Messages per stream: 39 gaps each, about a second of traffic.
const MESSAGES: u32 = 40;
/// Connections the streams share, as a load client would spread them.
const CONNECTIONS: usize = 8;

/// Arrival times of every message of one Subscribe call, which must end OK.
async fn arrivals(
    channel: tonic::transport::Channel,
    request: OutboundMessage,
    response: MessageDescriptor,
) -> Vec<Duration> {
    let started = Instant::now();
    let mut stream = common::open_stream(
        channel,
        "/myapp.NotificationService/Subscribe",
        response,
        futures::stream::iter([request]),
    )
    .await
    .expect("the call opens");
    let (arrivals, status) = common::arrivals(&mut stream, started).await;
    assert_eq!((status.code(), arrivals.len()), (Code::Ok, MESSAGES as usize), "{status:?}");
    arrivals
}

/// The value below which `fraction` of the sorted `values` lie.
fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_latency_error_at_1000_streams() {
    let profile =
        format!("chaos:\n  seed: 7\n  rules:\n    - latency: {{ per_message: {CONFIGURED_MS}ms }}\n");
    let server = start_with_profile(&profile, MESSAGES, Duration::ZERO).await;
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(server.channel().await);
    }
    // Built once: the client's own work per stream stays small, so what is measured is the
    // server's.
    let pool = common::example_pool();
    let request = json_message(&pool, "myapp.SubscribeRequest", json!({}));
    let response = message_type(&pool, "myapp.Notification");
    let calls: Vec<_> = (0..STREAMS)
        .map(|i| {
            let channel = channels[i % CONNECTIONS].clone();
            tokio::spawn(arrivals(channel, request.clone(), response.clone()))
        })
        .collect();
    let mut errors = Vec::with_capacity(STREAMS * (MESSAGES as usize - 1));
    for call in calls {
        let arrivals = call.await.expect("the call task completes");
        errors.extend(
            arrivals.windows(2).map(|pair| (pair[1] - pair[0]).as_secs_f64() * 1000.0 - CONFIGURED_MS),
        );
    }
    errors.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&errors, 0.5), percentile(&errors, 0.99));
    eprintln!(
        "latency error at {STREAMS} streams over {CONNECTIONS} connections, {} gaps of a fixed \
         {CONFIGURED_MS} ms: p50 {p50:+.2} ms, p99 {p99:+.2} ms, min {:+.2} ms, max {:+.2} ms",
        errors.len(),
        errors[0],
        errors[errors.len() - 1]
    );
    // A single gap can read short (down to -25 ms: a client busy elsewhere reads two messages
    // at once, and a message sent late is followed by one sent early, on schedule), so the
    // bounds are on percentiles. Delays keep an absolute schedule, so the median error is about
    // zero however late timers fire: measured -0.08 ms among several builds (load average 6);
    // it was +1.5 to +5.0 ms when each delay was slept after the previous send. The p99 bound is
    // twice the worst seen (+52 ms among several builds), far below what a systematic fault
    // would give (latency applied twice: +25 ms at p50).
    assert!((-2.0..2.0).contains(&p50), "p50 error {p50} ms");
    assert!(p99 < 100.0, "p99 error {p99} ms");
}
