//! Under `simulate`, the embedded server judges the built-in load client as it judges any
//! client under test, and its view must agree with the client's own report: the retry gaps
//! it measured are the backoffs the client waited, and the recovery it measured from the
//! outage's end is the client's own recovery (from its first failure) less the outage.
//!
//! Tolerances: a gap as the server sees it adds the client's call setup and a loopback round
//! trip to the backoff (10% + 25 ms allowed); the client's first failure comes up to one
//! think time (50 ms) after the outage began (120 ms allowed).

mod common;

use std::time::Duration;

use streamstorm::cli::{SimulateArgs, run_simulation};
use streamstorm::report::progress::ProgressMode;

#[tokio::test(flavor = "multi_thread")]
async fn the_server_sees_the_backoff_and_recovery_the_load_client_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_profile(
        dir.path(),
        "chaos:
  phases:
    - { name: steady, duration: 1s }
    - { name: outage, duration: 2s, abort: { rate: 100%, code: UNAVAILABLE } }
    - { name: back, duration: 1m }
load:
  connections: 1
  scenarios:
    - method: myapp.UserService/GetUser
      streams: 1
      think_time: 50ms
      reconnect: { initial_backoff: 100ms, max_backoff: 800ms, multiplier: 2, jitter: 0.2 }
",
    );
    let args =
        SimulateArgs { duration: Some(Duration::from_millis(4500)), ..SimulateArgs::for_profile(path) };
    let report = run_simulation(&args, ProgressMode::Quiet).await.unwrap();
    let peers = report.peers.as_ref().expect("the embedded server judged the load client");
    assert_eq!(peers.clients.len(), 1, "one client: every connection comes from 127.0.0.1");
    let client = &peers.clients[0];
    let scenario = &report.scenarios[0];

    // Every attempt the client made reached the server.
    let attempts = scenario.streams.opened;
    assert_eq!(client.attempts, attempts, "{client:#?}");

    // The backoffs: 100, 200, 400, 800, 800 ms ± 20%, one per failure.
    let gaps = client.retry_gaps_ms.expect("the outage made a retry streak");
    let waited = &scenario.backoff_ms;
    assert_eq!(gaps.count, waited.count, "{gaps:?} {waited:?}");
    for (seen, told) in [(gaps.p50, waited.p50), (gaps.max, waited.max)] {
        assert!(seen >= told && seen <= told * 1.1 + 25.0, "server {seen} ms, client {told} ms");
    }
    assert_eq!(client.backoff.streaks, 1, "{client:#?}");

    // One outage, one recovery.
    let outage = peers.phases.iter().find(|phase| phase.name == "outage").expect("the outage ran");
    let outage_ms = (outage.ended_s.expect("the outage ended") - outage.started_s) * 1000.0;
    assert!((1990.0..2100.0).contains(&outage_ms), "{outage_ms}");
    assert_eq!(client.recovery_ms.len(), 1, "{client:#?}");
    let recovered = client.recovery_ms[0].expect("the client recovered");
    let own = &scenario.recovery_ms;
    assert_eq!(own.count, 1, "{own:?}");
    let expected = own.max - outage_ms;
    assert!(
        (recovered - expected).abs() <= 120.0,
        "server {recovered} ms, client {} ms less the outage",
        own.max
    );
    assert!(peers.expectations.passed && report.passed());
}
