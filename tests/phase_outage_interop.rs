//! An outage phase reaches a client that holds a long-lived stream: with `on_enter`, a
//! `myapp.NotificationService/Subscribe` opened by Python grpcio during the steady phase is
//! cut as each outage begins — with the configured status and `RetryInfo`, or with the
//! configured disconnect — after the messages sent before it arrived, cycle after cycle.

mod common;

use std::time::{Duration, Instant};

use common::interop::{Client, ClientCall, ClientOutcome};

const SUBSCRIBE: &str = "myapp.NotificationService/Subscribe";
/// Steady then outage: one cycle every 2.5 s.
const CYCLE: Duration = Duration::from_millis(2500);

fn profile(on_enter: &str) -> String {
    format!(
        "chaos:
  seed: 3
  phases:
    - {{ name: steady, duration: 1500ms }}
    - name: outage
      duration: 1s
      abort: {{ rate: 100%, code: UNAVAILABLE, message: refused during the outage }}
      on_enter: {on_enter}
"
    )
}

/// `serve` under the two phases with `on_enter`, subscriptions sending every 100 ms.
async fn serve(dir: &std::path::Path, on_enter: &str) -> common::ServeProcess {
    let path = common::write_profile(dir, &profile(on_enter));
    common::spawn_serve_process(
        &["--profile", common::path_str(&path), "--default-stream-interval", "100ms"],
        &[],
    )
    .await
}

/// Subscribes again and again until `cuts` subscriptions were cut by an outage (not refused
/// at their start); each cut's outcome, and when the test saw it end.
async fn subscribe_through_outages(
    server: std::net::SocketAddr,
    cuts: usize,
) -> Vec<(Instant, ClientOutcome)> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + CYCLE * (cuts as u32 + 3);
    while seen.len() < cuts {
        assert!(Instant::now() < deadline, "only {} cuts seen before the deadline", seen.len());
        let outcome = ClientCall::new(Client::Python, server, SUBSCRIBE).arg("--rich-status").run().await;
        if outcome.details == "refused during the outage" {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        seen.push((Instant::now(), outcome));
    }
    seen
}

/// Consecutive cuts come one cycle apart: each outage reached the open subscription.
fn assert_one_per_cycle(seen: &[(Instant, ClientOutcome)]) {
    for pair in seen.windows(2) {
        let apart = pair[1].0 - pair[0].0;
        let cycles = apart.as_secs_f64() / CYCLE.as_secs_f64();
        assert!((cycles - cycles.round()).abs() < 0.2 && cycles.round() >= 1.0, "cuts {apart:?} apart");
        assert_eq!(cycles.round(), 1.0, "a subscription opened in the steady phase survives no outage");
    }
}

#[tokio::test]
async fn each_outage_fails_the_open_subscription_with_its_status_and_retry_info() {
    let dir = tempfile::tempdir().unwrap();
    let on_enter = r#"{ fail: { code: UNAVAILABLE, message: cut by the outage, details: [{ "@type": google.rpc.RetryInfo, retry_delay: 2s }] } }"#;
    let server = serve(dir.path(), on_enter).await;
    let seen = subscribe_through_outages(server.addr, 3).await;
    for (_, outcome) in &seen {
        assert_eq!((outcome.code.as_str(), outcome.details.as_str()), ("UNAVAILABLE", "cut by the outage"));
        let detail = &outcome.rich_status.as_ref().expect("the status carries details")["details"][0];
        assert_eq!(detail["@type"], "type.googleapis.com/google.rpc.RetryInfo", "{detail}");
        assert_eq!(detail["retry_delay"], "2s", "{detail}");
        // Every message the server sent before the cut reached the application, in order.
        let sequences: Vec<u64> = outcome
            .responses
            .iter()
            .map(|message| message["sequence"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0))
            .collect();
        assert!(!sequences.is_empty(), "the subscription carried messages before the outage");
        assert!(sequences.windows(2).all(|pair| pair[1] == pair[0] + 1), "{sequences:?}");
    }
    assert_one_per_cycle(&seen);
}

#[tokio::test]
async fn each_outage_resets_the_open_subscriptions_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), "{ disconnect: tcp_reset }").await;
    let seen = subscribe_through_outages(server.addr, 3).await;
    for (_, outcome) in &seen {
        assert_eq!(outcome.code, "UNAVAILABLE", "{}", outcome.details);
        assert_ne!(outcome.details, "refused during the outage");
        assert!(!outcome.responses.is_empty(), "the subscription carried messages before the outage");
    }
    assert_one_per_cycle(&seen);
}
