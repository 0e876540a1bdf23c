//! Fault fidelity through a tonic client: the chaos asked for is the chaos delivered — latency
//! ranges, abort rates within binomial bounds, failures and caps after exact message counts,
//! disconnect modes seen as what they are, and the same seed giving the same faults.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestServer, json_message, message_type};
use serde_json::json;
use streamstorm::chaos::ChaosEngine;
use streamstorm::chaos::plan::{
    Abort, After, Codes, CountRange, Disconnect, DisconnectMode, Distribution, Fail, FaultPlan, Faults,
    Latency, MessageCap, MethodMatch, Rule,
};
use streamstorm::server::{DefaultResponse, ServerSettings};
use tonic::Code;

const SUBSCRIBE: &str = "/myapp.NotificationService/Subscribe";

fn plan(faults: Faults) -> FaultPlan {
    FaultPlan { seed: 42, rules: vec![Rule { matcher: MethodMatch::All, faults }], ..FaultPlan::default() }
}

/// A server whose default responder streams `messages` at once, under `plan`.
async fn server(plan: FaultPlan, messages: u32) -> TestServer {
    let settings = ServerSettings {
        default_response: DefaultResponse::Empty {
            stream_messages: messages,
            stream_interval: Duration::ZERO,
        },
        chaos: Some(Arc::new(ChaosEngine::new(plan))),
        ..ServerSettings::default()
    };
    TestServer::start(settings).await
}

/// Arrival times of each message and the final status of one Subscribe call.
async fn subscribe(channel: tonic::transport::Channel) -> (Vec<Duration>, tonic::Status) {
    let pool = common::example_pool();
    let request = json_message(&pool, "myapp.SubscribeRequest", json!({}));
    let started = Instant::now();
    let mut stream = match common::open_stream(
        channel,
        SUBSCRIBE,
        message_type(&pool, "myapp.Notification"),
        futures::stream::iter([request]),
    )
    .await
    {
        Ok(stream) => stream,
        Err(status) => return (Vec::new(), status),
    };
    common::arrivals(&mut stream, started).await
}

fn gaps(arrivals: &[Duration]) -> Vec<f64> {
    arrivals.windows(2).map(|pair| (pair[1] - pair[0]).as_secs_f64() * 1000.0).collect()
}

fn latency(per_message: Distribution) -> Faults {
    Faults {
        latency: Some(Latency { first_message: None, per_message: Some(per_message) }),
        ..Faults::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_range_gives_gaps_in_range_at_1_and_at_1000_streams() {
    let range = Distribution::Uniform(Duration::from_millis(20), Duration::from_millis(40));
    let single = server(plan(latency(range.clone())), 100).await;

    // One stream: gaps spread across the range, on an absolute schedule — a message sent late
    // is followed by one sent early, so the 99 gaps add up to the drawn delays, not more.
    let (arrivals, status) = subscribe(single.channel().await).await;
    assert_eq!((status.code(), arrivals.len()), (Code::Ok, 100));
    let mut one = gaps(&arrivals);
    let spanned: f64 = one.iter().sum();
    assert!((99.0 * 20.0..=99.0 * 40.0 + 50.0).contains(&spanned), "99 gaps took {spanned} ms");
    one.sort_by(f64::total_cmp);
    assert!(one[one.len() / 2] > 25.0 && one[one.len() / 2] < 38.0, "median gap {} ms", one[one.len() / 2]);
    let low = one.iter().filter(|gap| **gap < 30.0).count() as f64 / one.len() as f64;
    assert!((0.25..0.75).contains(&low), "{low} of gaps below 30 ms: not uniform-ish");

    // 1000 streams at once: a busy client reads queued messages in bursts, so single gaps
    // blur. On an absolute schedule a stream's 20th message is due the sum of its 20 delays after
    // the stream opened, so it arrives between 20 × 20 and 20 × 40 ms (+ slack) after the call
    // started, however late the first one was.
    let many = server(plan(latency(range)), 20).await;
    let channel = many.channel().await;
    let calls: Vec<_> = (0..1000).map(|_| tokio::spawn(subscribe(channel.clone()))).collect();
    let mut medians = Vec::new();
    for call in calls {
        let (arrivals, status) = call.await.unwrap();
        assert_eq!((status.code(), arrivals.len()), (Code::Ok, 20));
        let last = arrivals[19].as_secs_f64() * 1000.0;
        assert!((20.0 * 20.0..20.0 * 40.0 + 1500.0).contains(&last), "the 20th message came {last} ms in");
        let mut stream_gaps = gaps(&arrivals);
        stream_gaps.sort_by(f64::total_cmp);
        medians.push(stream_gaps[9]);
    }
    medians.sort_by(f64::total_cmp);
    let median = medians[500];
    assert!(median > 22.0 && median < 42.0, "median of per-stream median gaps {median} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_rate_lands_within_four_sigma() {
    let abort = Abort {
        rate: 0.2,
        codes: Codes(vec![(Code::Unavailable, 1)]),
        message: "injected abort".into(),
        details: None,
    };
    let server = server(plan(Faults { abort: Some(abort), ..Faults::default() }), 1).await;
    let channel = server.channel().await;
    let calls: Vec<_> = (0..2000).map(|_| tokio::spawn(subscribe(channel.clone()))).collect();
    let mut aborted = 0;
    for call in calls {
        let (arrivals, status) = call.await.unwrap();
        match status.code() {
            Code::Unavailable => {
                assert!(arrivals.is_empty(), "aborts come before any message");
                assert_eq!(status.message(), "injected abort");
                aborted += 1;
            }
            code => assert_eq!(code, Code::Ok),
        }
    }
    // n = 2000, p = 0.2: mean 400, sigma 17.9.
    assert!((328..=472).contains(&aborted), "{aborted} aborted");
}

#[tokio::test]
async fn fail_after_messages_cuts_exactly_there() {
    let fail = Fail {
        rate: 1.0,
        after: After::Messages(CountRange { min: 5, max: 5 }),
        codes: Codes(vec![(Code::Internal, 1)]),
        message: "injected failure".into(),
    };
    let server = server(plan(Faults { fail: Some(fail), ..Faults::default() }), 50).await;
    let (arrivals, status) = subscribe(server.channel().await).await;
    assert_eq!(arrivals.len(), 5);
    assert_eq!((status.code(), status.message()), (Code::Internal, "injected failure"));
}

#[tokio::test]
async fn message_cap_ends_ok_after_exactly_n() {
    let cap = MessageCap { max: 10, code: Code::Ok };
    let server = server(plan(Faults { message_cap: Some(cap), ..Faults::default() }), 50).await;
    let (arrivals, status) = subscribe(server.channel().await).await;
    assert_eq!(arrivals.len(), 10);
    assert_eq!(status.code(), Code::Ok);
}

fn disconnect(mode: DisconnectMode, after: u64) -> FaultPlan {
    let disconnect =
        Disconnect { rate: 1.0, after: After::Messages(CountRange { min: after, max: after }), mode };
    plan(Faults { disconnect: Some(disconnect), ..Faults::default() })
}

#[tokio::test]
async fn reset_stream_is_seen_as_a_reset() {
    let server = server(disconnect(DisconnectMode::ResetStream { h2_code: 8 }, 3), 50).await;
    let (arrivals, status) = subscribe(server.channel().await).await;
    // HTTP/2 lets a reset overtake data the client has not read yet.
    assert!(arrivals.len() <= 3, "{arrivals:?}");
    // tonic reports a RST_STREAM(CANCEL) from the server as CANCELLED.
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
}

#[tokio::test]
async fn stall_keeps_the_stream_open_until_the_client_deadline() {
    let server = server(disconnect(DisconnectMode::Stall, 2), 50).await;
    let channel = server.channel().await;
    let outcome = tokio::time::timeout(Duration::from_millis(700), subscribe(channel)).await;
    assert!(outcome.is_err(), "a stalled stream neither sends nor ends");
}

#[tokio::test]
async fn tcp_reset_fails_every_stream_on_the_connection_at_once() {
    let settings = ServerSettings {
        default_response: DefaultResponse::Empty {
            stream_messages: 50,
            stream_interval: Duration::from_millis(20),
        },
        chaos: Some(Arc::new(ChaosEngine::new(disconnect(DisconnectMode::TcpReset, 3)))),
        ..ServerSettings::default()
    };
    let server = TestServer::start(settings).await;
    let channel = server.channel().await;
    let calls: Vec<_> = (0..5).map(|_| tokio::spawn(subscribe(channel.clone()))).collect();
    for call in calls {
        let (arrivals, status) = call.await.unwrap();
        assert!(arrivals.len() <= 3, "{arrivals:?}");
        // tonic reports the connection reset as a transport error, whichever read saw it.
        assert!(format!("{status:?}").contains("ConnectionReset"), "{status:?}");
    }
}

#[tokio::test]
async fn goaway_with_grace_lets_the_stream_finish_and_refuses_new_ones_on_that_connection() {
    let settings = ServerSettings {
        default_response: DefaultResponse::Empty {
            stream_messages: 6,
            stream_interval: Duration::from_millis(50),
        },
        chaos: Some(Arc::new(ChaosEngine::new(disconnect(
            DisconnectMode::Goaway { grace: Some(Duration::from_secs(5)) },
            2,
        )))),
        ..ServerSettings::default()
    };
    let server = TestServer::start(settings).await;
    let (arrivals, status) = subscribe(server.channel().await).await;
    assert_eq!(status.code(), Code::Ok, "{status:?}");
    assert_eq!(arrivals.len(), 6, "the stream in flight is drained, not cut");
    assert!(
        common::eventually(Duration::from_secs(2), || server.handle.connections.is_empty()).await,
        "the connection closes once drained"
    );
}

#[tokio::test]
async fn the_same_seed_draws_the_same_faults_on_the_same_streams() {
    let run = || async {
        let fail = Fail {
            rate: 0.5,
            after: After::Messages(CountRange { min: 1, max: 9 }),
            codes: Codes(vec![(Code::Internal, 1), (Code::DataLoss, 1)]),
            message: "x".into(),
        };
        let server = server(plan(Faults { fail: Some(fail), ..Faults::default() }), 10).await;
        let channel = server.channel().await;
        let mut outcomes = Vec::new();
        for _ in 0..30 {
            let (arrivals, status) = subscribe(channel.clone()).await;
            outcomes.push((arrivals.len(), status.code()));
        }
        outcomes
    };
    let (first, second) = (run().await, run().await);
    assert_eq!(first, second);
    assert!(
        first.iter().any(|(_, code)| *code == Code::Ok) && first.iter().any(|(_, code)| *code != Code::Ok)
    );
}
