//! A profile whose faults are all deterministic: every call aborted with one code, every
//! stream reset after two messages. The server's tally and the client's counts must agree
//! exactly, and the reconnect backoff must follow the policy.

mod common;

use std::time::Duration;

use streamstorm::cli::{SimulateArgs, run_simulation};
use streamstorm::report::progress::ProgressMode;

#[tokio::test(flavor = "multi_thread")]
async fn injected_aborts_and_resets_equal_what_the_client_saw() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_profile(
        dir.path(),
        "chaos:
  seed: 5
  rules:
    - match: { method: myapp.UserService/GetUser }
      abort: { rate: 100%, code: PERMISSION_DENIED }
    - match: { method: myapp.NotificationService/Subscribe }
      disconnect: { rate: 100%, after_messages: 2, mode: reset_stream }
load:
  connections: 2
  embedded: { stream_interval: 10ms }
  scenarios:
    - method: myapp.UserService/GetUser
      streams: 5
      request: { user_id: 'u{{stream.id}}' }
      reconnect: { initial_backoff: 20ms, max_backoff: 100ms, multiplier: 2, jitter: 0.1 }
    - method: myapp.NotificationService/Subscribe
      streams: 5
      reconnect: { initial_backoff: 20ms, max_backoff: 100ms, multiplier: 2, jitter: 0.1 }
",
    );
    let args = SimulateArgs { duration: Some(Duration::from_secs(2)), ..SimulateArgs::for_profile(path) };
    let report = run_simulation(&args, ProgressMode::Quiet).await.unwrap();
    let faults = report.server_faults.as_ref().unwrap();
    let denied =
        faults.status_codes.iter().find(|row| row.code == "PERMISSION_DENIED").expect("aborts counted");
    assert!(denied.injected > 20, "{faults:#?}");
    assert_eq!(denied.injected, denied.observed, "{faults:#?}");
    assert_eq!(report.errors["PERMISSION_DENIED"], denied.injected);
    assert!(faults.resets.injected > 10, "{faults:#?}");
    assert_eq!(faults.resets.injected, faults.resets.observed);
    assert_eq!(report.disconnects["reset"], faults.resets.injected);
    assert!(faults.reconciled);
    // Streams deliver messages before their reset (a reset may overtake the second one), so
    // the time from each reset to the next stream's first message is measured.
    let subscribe = &report.scenarios[1];
    assert!(subscribe.recovery_ms.count > 0);
    let reset = subscribe.streams.failed;
    assert!((reset..=2 * reset + 10).contains(&subscribe.messages.received), "{subscribe:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backoff_follows_the_policy_and_slots_give_up_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    // Every call fails: 4 attempts, so 3 backoffs of 100, 200, 400ms (±10%), then give up.
    let path = common::write_profile(
        dir.path(),
        "chaos:
  rules:
    - abort: { rate: 100%, code: UNAVAILABLE }
load:
  scenarios:
    - method: myapp.UserService/GetUser
      streams: 4
      request: { user_id: x }
      reconnect: { initial_backoff: 100ms, max_backoff: 400ms, multiplier: 2, jitter: 0.1, max_attempts: 4 }
  thresholds: { streams_given_up: '< 1' }
",
    );
    let args = SimulateArgs { duration: Some(Duration::from_secs(3)), ..SimulateArgs::for_profile(path) };
    let report = run_simulation(&args, ProgressMode::Quiet).await.unwrap();
    assert_eq!(report.streams.opened, 16, "{report:#?}");
    assert_eq!(report.streams.given_up, 4);
    assert_eq!(report.reconnects, 12);
    let backoff = report.backoff_ms;
    assert_eq!(backoff.count, 12);
    assert!(backoff.max <= 440.5 && backoff.max >= 360.0, "{backoff:?}");
    assert!(backoff.p50 >= 180.0 && backoff.p50 <= 220.5, "{backoff:?}");
    // The shortest is a first backoff: 100ms ± 10%.
    assert!(report.backoff_ms.mean > 200.0 && report.backoff_ms.mean < 270.0, "{backoff:?}");
    // A slot's attempts take ~700ms of backoff: the run ends early, once every slot gave up.
    assert!(report.duration_s < 1.5, "{}", report.duration_s);
    assert!(!report.thresholds.passed);
    let outcome = &report.thresholds.results[0];
    assert_eq!((outcome.measured, outcome.excess), (Some(4.0), 3.0));
}

/// Streams still open when the run's drain ends are cut; a fault due after the embedded
/// server closed its books is not injected, and one due during the drain is injected and
/// observed, so both sides still agree.
#[tokio::test(flavor = "multi_thread")]
async fn a_fault_due_while_the_run_cuts_its_streams_is_not_injected() {
    let dir = tempfile::tempdir().unwrap();
    // The run lasts 1 s and drains for 0.5 s: the books close at 1.5 s, the cut comes 0.2 s
    // later. Subscribe streams never end by themselves, and a fault acts when due (no linger).
    let profile = |fail_after: &str| {
        format!(
            "chaos:
  linger: 0ms
  rules:
    - match: {{ method: myapp.NotificationService/Subscribe }}
      fail: {{ rate: 100%, after: {fail_after}, codes: {{ FAILED_PRECONDITION: 1 }} }}
load:
  connections: 1
  embedded: {{ stream_interval: 50ms }}
  scenarios:
    - method: myapp.NotificationService/Subscribe
      streams: 4
"
        )
    };
    let run = |fail_after: &'static str| {
        let path = common::write_profile(dir.path(), &profile(fail_after));
        async move {
            let args =
                SimulateArgs { duration: Some(Duration::from_secs(1)), ..SimulateArgs::for_profile(path) };
            run_simulation(&args, ProgressMode::Quiet).await.unwrap()
        }
    };
    let failed_precondition = |report: &streamstorm::report::Report| {
        let faults = report.server_faults.as_ref().unwrap();
        assert!(faults.reconciled, "{faults:#?}");
        let row = faults.status_codes.iter().find(|row| row.code == "FAILED_PRECONDITION");
        row.map_or(0, |row| row.injected)
    };

    let during_drain = run("1250ms").await;
    assert_eq!(failed_precondition(&during_drain), 4, "{:#?}", during_drain.scenarios);
    assert_eq!(during_drain.streams.cut_at_end, 0);

    let after_books_closed = run("1600ms").await;
    assert_eq!(failed_precondition(&after_books_closed), 0, "{:#?}", after_books_closed.scenarios);
    assert_eq!(after_books_closed.streams.cut_at_end, 4);
}
