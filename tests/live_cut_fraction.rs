//! A phase's `on_enter` cuts the share of live traffic its `fraction` names, chosen from the
//! plan's seed: half of 40 live subscriptions fail as the outage is pinned (the same ones
//! under the same seed), and half of 10 connections are reset with their streams.

mod common;

use std::time::Duration;

use common::TestServer;
use tokio::task::JoinHandle;
use tonic::Code;

fn profile(on_enter: &str) -> String {
    format!(
        "chaos:
  seed: 11
  phases:
    - {{ name: steady, duration: 1h }}
    - {{ name: outage, duration: 1h, on_enter: {on_enter} }}
"
    )
}

/// Opens a subscription on each channel in turn (so stream ids follow the order) and reads it
/// to its end in a task of its own.
async fn subscribe(
    server: &TestServer,
    channels: &[tonic::transport::Channel],
) -> Vec<JoinHandle<(usize, Code)>> {
    let mut readers = Vec::new();
    for channel in channels {
        readers.push(common::subscribe(channel.clone(), &server.pool).await);
    }
    assert!(
        common::eventually(Duration::from_secs(5), || server.handle.streams.active() == channels.len()).await,
        "every subscription is live"
    );
    readers
}

/// Pins the outage, then after the cuts have had time to settle, which subscriptions ended
/// (by position) and how.
async fn pin_outage(server: &TestServer, readers: Vec<JoinHandle<(usize, Code)>>) -> Vec<(usize, Code)> {
    assert!(server.handle.chaos.pin_phase(Some("outage")));
    // Delivery (at most 500 ms), the linger (500 ms), then the cut.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let mut ended = Vec::new();
    for (position, reader) in readers.into_iter().enumerate() {
        if reader.is_finished() {
            let (messages, code) = reader.await.unwrap();
            assert!(messages > 0, "subscription {position} ended before any message");
            ended.push((position, code));
        } else {
            reader.abort();
        }
    }
    ended
}

async fn half_of_forty_streams() -> Vec<usize> {
    let on_enter = "{ fail: { code: UNAVAILABLE, message: cut }, fraction: 50% }";
    let server =
        common::chaos::start_with_profile(&profile(on_enter), u32::MAX, Duration::from_millis(50)).await;
    let channel = server.channel().await;
    let readers = subscribe(&server, &vec![channel; 40]).await;
    let ended = pin_outage(&server, readers).await;
    assert!(ended.iter().all(|(_, code)| *code == Code::Unavailable), "{ended:?}");
    ended.into_iter().map(|(position, _)| position).collect()
}

#[tokio::test]
async fn half_of_the_live_streams_fail_and_the_seed_picks_which() {
    let first = half_of_forty_streams().await;
    assert_eq!(first.len(), 20, "50% of 40 live streams: {first:?}");
    let second = half_of_forty_streams().await;
    assert_eq!(first, second, "the same seed cuts the same streams");
}

#[tokio::test]
async fn half_of_the_connections_are_reset_with_their_streams() {
    let server = common::chaos::start_with_profile(
        &profile("{ disconnect: tcp_reset, fraction: 50% }"),
        u32::MAX,
        Duration::from_millis(50),
    )
    .await;
    let mut channels = Vec::new();
    for _ in 0..10 {
        channels.push(common::connect(server.addr).await);
    }
    let readers = subscribe(&server, &channels).await;
    assert_eq!(server.handle.connections.len(), 10);
    let ended = pin_outage(&server, readers).await;
    assert_eq!(ended.len(), 5, "50% of 10 connections, one stream each: {ended:?}");
    // tonic reports a connection reset under the stream as UNKNOWN (a transport error).
    assert!(ended.iter().all(|(_, code)| *code != Code::Ok), "{ended:?}");
    assert!(common::eventually(Duration::from_secs(2), || server.handle.connections.len() == 5).await);
}
