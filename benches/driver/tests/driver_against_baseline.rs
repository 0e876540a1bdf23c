//! The driver against the baseline server in-process (port 0): a streaming load counts the
//! messages it is sent (decoded or only counted), paced streams show gaps near the configured one, unary calls count
//! replies, and idle streams are held open after their first message until stopped.

use std::time::Duration;

use streamstorm_baseline::{Behaviour, IDLE_TOPIC, serve};
use streamstorm_driver::{Call, LoadPlan, Opening, Stop, Window, run, start};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

async fn baseline(behaviour: Behaviour) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(serve(listener, behaviour));
    addr
}

fn plan(target: std::net::SocketAddr, call: Call, measure: Duration) -> LoadPlan {
    LoadPlan {
        target,
        connections: 2,
        slots_per_connection: 5,
        call,
        opening: Opening::Burst,
        window: Window { warmup: Duration::from_millis(100), measure },
        stop: Stop::EndOfWindow,
        expected_gap: None,
    }
}

fn behaviour(per_message_delay: Option<Duration>) -> Behaviour {
    Behaviour { stream_messages: 1000, idle_delay: Duration::from_secs(3600), per_message_delay }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_streams_arrive_about_one_gap_apart() {
    let gap = Duration::from_millis(20);
    let target = baseline(behaviour(Some(gap))).await;
    let mut load = plan(target, Call::subscribe(&["paced"]), Duration::from_millis(600));
    load.opening = Opening::Ramp(gap);
    load.expected_gap = Some(gap);
    let outcome = run(&load).await.expect("runs");
    assert_eq!(outcome.failed, 0, "{:?}", outcome.first_error);
    let gaps = outcome.gaps.as_ref().expect("gaps measured");
    // 10 streams × 600 ms / 20 ms = 300 gaps, give or take the window's edges and a slow machine.
    assert!((100..=320).contains(&gaps.len()), "{} gaps", gaps.len());
    // tokio's timer rounds a sleep up to the next millisecond; a busy machine adds more.
    let median = gaps.quantile(0.5);
    assert!((-2_000..=10_000).contains(&median), "median gap error {median} µs");
    let per_second = outcome.per_second();
    assert!((150.0..=520.0).contains(&per_second), "{per_second} msg/s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_and_unary_loads_count_what_arrives() {
    let target = baseline(behaviour(None)).await;
    let streamed =
        run(&plan(target, Call::subscribe(&["load"]), Duration::from_millis(300))).await.expect("runs");
    assert_eq!(streamed.failed, 0, "{:?}", streamed.first_error);
    assert!(streamed.completed > 0 && streamed.messages > 1000, "{streamed:?}");
    let counted = run(&plan(target, Call::subscribe_counting(&["load"]), Duration::from_millis(300)))
        .await
        .expect("runs");
    assert_eq!(counted.failed, 0, "{:?}", counted.first_error);
    assert!(counted.completed > 0 && counted.messages > 1000, "{counted:?}");
    let unary = Call::GetUser { user_id: "alice".into() };
    let answered = run(&plan(target, unary, Duration::from_millis(300))).await.expect("runs");
    assert_eq!(answered.failed, 0, "{:?}", answered.first_error);
    assert!(answered.messages > 10 && answered.completed >= answered.messages, "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_stay_open_after_their_first_message_until_stopped() {
    let target = baseline(behaviour(None)).await;
    let token = CancellationToken::new();
    let mut load = plan(target, Call::subscribe(&[IDLE_TOPIC]), Duration::from_secs(60));
    load.stop = Stop::Token(token.clone());
    let running = start(&load).await.expect("connects");
    let progress = running.progress.clone();
    let answered = || progress.calls_with_a_message.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::timeout(Duration::from_secs(10), async {
        while answered() < 10 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("every idle stream gets its first message");
    // Held, not re-opened: no further call gets a message.
    tokio::time::sleep(Duration::from_millis(200)).await;
    token.cancel();
    let outcome = running.finish().await;
    assert_eq!(outcome.failed, 0, "{:?}", outcome.first_error);
    assert_eq!(answered(), 10);
}
