//! The client judge against real clients: reconnecting subscribers written with Python grpcio
//! and Node @grpc/grpc-js (`tests/interop/*/subscriber.*`), a good and a bad one of each kind,
//! run against `serve --profile P --duration D --report R`. For each library, each verdict is
//! asserted in the report, the printed text and the exit code, and what the judge measured is
//! checked against what the clients say they did:
//!
//! - exponential backoff passes `backoff: declared` and `max_attempts_per_second`; a 20 ms
//!   retry loop fails both;
//! - honouring `google.rpc.RetryInfo` passes `retry_info`; ignoring it fails;
//! - resuming after the last sequence received is classed `resumed`, starting from zero
//!   `restarted`;
//! - with HTTP/2 keepalive a blackholed connection is abandoned within the keepalive time plus
//!   its timeout; without keepalive, never.
//!
//! Clients are told apart by the `x-client-id` header the subscribers send; the clients of one
//! library share one `serve` run per behaviour.

mod common;

use std::time::Duration;

use common::interop::Client;
use common::judge::{Judged, JudgedRun, Subscriber};

/// Every Subscribe call fails at once; clients should back off as the profile declares.
const ABORT_EVERY_CALL: &str = r#"
chaos:
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      abort: { rate: 100%, code: UNAVAILABLE, message: "backend down" }
clients:
  identify_by: { header: x-client-id }
  backoff: { initial: 100ms, multiplier: 2, jitter: 20%, max: 1s }
expect:
  backoff: declared
  max_attempts_per_second: 5
"#;

/// Every Subscribe call fails at once, asking with RetryInfo for a half-second pause.
const ABORT_WITH_RETRY_INFO: &str = r#"
chaos:
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      abort:
        rate: 100%
        code: UNAVAILABLE
        message: "backend overloaded"
        details: [{ "@type": google.rpc.RetryInfo, retry_delay: 0.5s }]
clients:
  identify_by: { header: x-client-id }
expect:
  retry_info: "100%"
"#;

/// Every subscription is cut by a TCP reset after its third message, whose sequence is 3.
const CUT_AFTER_THREE: &str = r#"
chaos:
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      disconnect: { rate: 100%, after_messages: 3, mode: tcp_reset }
clients:
  identify_by: { header: x-client-id }
  resume: { request_field: resume_after, response_field: sequence }
expect:
  resume: "100%"
"#;

/// The sequence of the last message before each cut of [`CUT_AFTER_THREE`] (the default
/// responder numbers each stream's messages from 1).
const LAST_SEQUENCE_BEFORE_CUT: u64 = 3;

/// Every subscription's connection goes silent after its third message.
const BLACKHOLE_AFTER_THREE: &str = r#"
chaos:
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      disconnect: { rate: 100%, after_messages: 3, mode: blackhole }
clients:
  identify_by: { header: x-client-id }
expect:
  detects_dead_peer_within: 3s
"#;

/// The keepalive of the watchful subscriber: a ping after 1 s, abandoned after 1 s more.
const KEEPALIVE_TIME_MS: u64 = 1000;
const KEEPALIVE_TIMEOUT_MS: u64 = 1000;
/// How late the judge may see a detection, beyond the keepalive time and timeout: the
/// subscriber's reaction and the server's observation of it.
const DETECTION_SLACK_MS: u64 = 1000;

fn library(client: Client) -> &'static str {
    match client {
        Client::Python => "py",
        Client::Node => "js",
    }
}

/// A subscriber of `client`'s library named `<library>-<role>`.
fn subscriber(client: Client, role: &str) -> Subscriber {
    Subscriber::new(client, &format!("{}-{role}", library(client)))
}

async fn judge(
    profile: &str,
    duration: Duration,
    serve_args: &[&str],
    subscribers: &[&Subscriber],
) -> Judged {
    let subscribers: Vec<Subscriber> = subscribers.iter().map(|subscriber| (*subscriber).clone()).collect();
    let judged = JudgedRun::start(profile, duration, serve_args, &subscribers).await.finish().await;
    println!("serve printed:\n{}\nreport: {:#}", judged.stdout, judged.report);
    for own in &judged.subscribers {
        println!("{own:?}");
    }
    judged
}

/// Exponential backoff (100 ms ×2 ±20%, capped at 1 s) against a 20 ms retry loop.
async fn backoff_and_hot_loop(client: Client) {
    let good = subscriber(client, "backoff").exponential(100, 2.0, 0.2, 1000);
    let hot = subscriber(client, "hot-loop").fixed(20);
    let judged = judge(ABORT_EVERY_CALL, Duration::from_secs(6), &[], &[&good, &hot]).await;

    judged.assert_outcome(&[(&hot, "max_attempts_per_second"), (&hot, "backoff")], &[&good]);
    judged.assert_verdict(&good, "backoff", true);
    judged.assert_verdict(&good, "max_attempts_per_second", true);
    judged.assert_verdict(&hot, "max_attempts_per_second", false);
    judged.assert_verdict(&hot, "backoff", false);
    for each in [&good, &hot] {
        judged.assert_attempts_agree(each);
    }

    // With delays of at least 80, 160, 320 and 640 ms, no second holds more than 4 attempts.
    let good_peak = judged.number(&good, "/max_attempts_per_second");
    assert!((1.0..=4.0).contains(&good_peak), "{}: peak {good_peak}/s", good.identity());
    assert_eq!(judged.number(&good, "/hot_loops"), 0.0);
    // 20 ms apart plus a call each: well over 10 per second, whatever the machine.
    let hot_peak = judged.number(&hot, "/max_attempts_per_second");
    assert!(hot_peak >= 15.0, "{}: peak {hot_peak}/s; it says {:?}", hot.identity(), judged.own(&hot));
    assert!(judged.number(&hot, "/hot_loops") >= 1.0);

    // The backoff fitted to the good client's gaps is the policy it follows, within its jitter
    // and the few milliseconds each failed call takes.
    let fitted = |field: &str| judged.number(&good, &format!("/backoff/{field}"));
    let initial = fitted("initial_ms");
    assert!((70.0..=140.0).contains(&initial), "fitted initial delay {initial} ms, declared 100 ms");
    let multiplier = fitted("multiplier");
    assert!((1.5..=2.6).contains(&multiplier), "fitted multiplier {multiplier}, declared 2");
    let cap = fitted("max_ms");
    assert!((750.0..=1300.0).contains(&cap), "fitted cap {cap} ms, declared 1000 ms");
    assert_eq!(judged.client(&good)["backoff"]["complies"], true);
    assert_eq!(judged.client(&hot)["backoff"]["complies"], false);
}

/// Both clients back off 100 ms ×2 capped at 200 ms; one waits at least the RetryInfo delay
/// (500 ms), the other ignores it.
async fn retry_info(client: Client) {
    let honours = subscriber(client, "honours").exponential(100, 2.0, 0.2, 200).honor_retry_info();
    let ignores = subscriber(client, "ignores").exponential(100, 2.0, 0.2, 200);
    let judged = judge(ABORT_WITH_RETRY_INFO, Duration::from_secs(5), &[], &[&honours, &ignores]).await;

    judged.assert_outcome(&[(&ignores, "retry_info")], &[&honours]);
    judged.assert_verdict(&honours, "retry_info", true);
    judged.assert_verdict(&ignores, "retry_info", false);
    for (each, honouring) in [(&honours, true), (&ignores, false)] {
        judged.assert_attempts_agree(each);
        let hinted = judged.own(each).delays_after_retry_info();
        // After each RetryInfo, the honouring client waits that long; the other at most 240 ms,
        // under half of it.
        let as_expected = |&(delay, hint): &(f64, f64)| {
            hint == 500.0 && if honouring { delay >= hint } else { delay <= 240.0 }
        };
        assert!(
            hinted.len() >= 3 && hinted.iter().all(as_expected),
            "{}: (delay, RetryInfo delay) pairs: {hinted:?}",
            each.identity()
        );
        assert!(judged.number(each, "/retry_info/sent") >= 3.0, "{}", each.identity());
    }
    let honoured = judged.number(&honours, "/retry_info/honoured");
    assert!(honoured >= 3.0, "{}: {honoured} RetryInfo delays honoured", honours.identity());
    assert_eq!(judged.number(&ignores, "/retry_info/honoured"), 0.0);
}

/// Streams cut by a TCP reset after sequence 3: one client resumes after it, one restarts.
async fn resume_or_restart(client: Client) {
    let resumer = subscriber(client, "resumer").exponential(100, 2.0, 0.2, 1000).resume();
    let restarter = subscriber(client, "restarter").exponential(100, 2.0, 0.2, 1000);
    let serve_args = ["--default-stream-interval", "50ms"];
    let judged = judge(CUT_AFTER_THREE, Duration::from_secs(5), &serve_args, &[&resumer, &restarter]).await;

    judged.assert_outcome(&[(&restarter, "resume")], &[&resumer]);
    judged.assert_verdict(&resumer, "resume", true);
    judged.assert_verdict(&restarter, "resume", false);

    // What the clients asked for: the resumer, after each cut, the last sequence it got.
    let asked = &judged.own(&resumer).resumed_from;
    assert!(asked.len() >= 4, "{}: {asked:?}", resumer.identity());
    assert_eq!(asked[0], 0, "the first subscription starts from the beginning");
    assert!(asked[1..].iter().all(|&after| after == LAST_SEQUENCE_BEFORE_CUT), "{asked:?}");
    assert!(judged.own(&restarter).resumed_from.iter().all(|&after| after == 0));

    for (each, class) in [(&resumer, "resumed"), (&restarter, "restarted")] {
        judged.assert_attempts_agree(each);
        let classes = &judged.client(each)["resume"];
        let counted = judged.number(each, &format!("/resume/{class}"));
        // Every attempt the judge saw but the first follows a cut; the last one's request may
        // not have been read when serve stopped.
        let after_cuts = judged.number(each, "/attempts") - 1.0;
        assert!(
            counted >= 3.0 && (after_cuts - 1.0..=after_cuts).contains(&counted),
            "{}: {counted} {class} of {after_cuts} attempts after a cut: {classes}",
            each.identity()
        );
        let others: f64 = ["resumed", "restarted", "skipped", "duplicated"]
            .into_iter()
            .filter(|other| *other != class)
            .map(|other| judged.number(each, &format!("/resume/{other}")))
            .sum();
        assert_eq!(others, 0.0, "{}: {classes}", each.identity());

        // A TCP reset forces a new connection; the server-side delay is the client's own pause
        // plus its noticing the reset and connecting again.
        let delays = &judged.client(each)["reconnect_delay_ms"]["tcp_reset"];
        let count = judged.number(each, "/reconnect_delay_ms/tcp_reset/count");
        assert!(count >= 3.0, "{}: {delays}", each.identity());
        assert_eq!(judged.number(each, "/reconnect_delay_ms/tcp_reset/new_connection"), count, "{delays}");
        let seen = judged.number(each, "/reconnect_delay_ms/tcp_reset/p50");
        let slept = judged.own(each).median_delay_ms();
        assert!(
            // The client times its own sleep with timers that fire late under load.
            seen >= slept - 30.0 && seen <= slept + 100.0,
            "{}: the judge saw a median reconnect delay of {seen} ms, the client slept {slept} ms",
            each.identity()
        );
    }
}

/// Connections blackholed after sequence 3: with keepalive the client abandons each one; without,
/// it waits on the first for the rest of the run.
async fn dead_peer(client: Client) {
    let watchful = subscriber(client, "keepalive")
        .exponential(100, 2.0, 0.2, 1000)
        .keepalive(KEEPALIVE_TIME_MS, KEEPALIVE_TIMEOUT_MS);
    let oblivious = subscriber(client, "no-keepalive").exponential(100, 2.0, 0.2, 1000);
    let serve_args = ["--default-stream-interval", "100ms"];
    let judged =
        judge(BLACKHOLE_AFTER_THREE, Duration::from_secs(8), &serve_args, &[&watchful, &oblivious]).await;

    judged.assert_outcome(&[(&oblivious, "detects_dead_peer_within")], &[&watchful]);
    judged.assert_verdict(&watchful, "detects_dead_peer_within", true);
    judged.assert_verdict(&oblivious, "detects_dead_peer_within", false);

    let report = &judged.client(&watchful)["dead_peer"];
    let detected = judged.number(&watchful, "/dead_peer/detected");
    assert!(detected >= 2.0, "{}: {report}", watchful.identity());
    assert!(judged.number(&watchful, "/dead_peer/blackholes") >= detected);
    let times: Vec<f64> =
        report["detection_ms"].as_array().into_iter().flatten().filter_map(|ms| ms.as_f64()).collect();
    assert_eq!(times.len() as f64, detected, "{report}");
    // No sooner than the ack timeout after the silence began (a ping sent just before it
    // would have had its ack), no later than a ping's wait plus the timeout, with slack.
    let latest = (KEEPALIVE_TIME_MS + KEEPALIVE_TIMEOUT_MS + DETECTION_SLACK_MS) as f64;
    let earliest = KEEPALIVE_TIMEOUT_MS as f64 - 100.0;
    assert!(
        times.iter().all(|ms| (earliest..=latest).contains(ms)),
        "{}: detections {times:?} ms, expected {earliest}..={latest}",
        watchful.identity()
    );
    // Each detection ended a call with UNAVAILABLE on the client's side.
    let own = judged.own(&watchful);
    assert!(own.endings.get("UNAVAILABLE").copied().unwrap_or(0) as f64 >= detected, "{own:?}");

    let report = &judged.client(&oblivious)["dead_peer"];
    assert_eq!(judged.number(&oblivious, "/dead_peer/blackholes"), 1.0, "{report}");
    assert_eq!(judged.number(&oblivious, "/dead_peer/detected"), 0.0, "{report}");
    // It read the three messages, then nothing: one attempt while serve judged.
    let own = judged.own(&oblivious);
    assert_eq!(own.messages, 3, "{own:?}");
    assert_eq!(own.attempts_before(judged.judged_until), 1, "{own:?}");
}

#[tokio::test]
async fn grpcio_backoff_passes_and_a_hot_loop_fails() {
    backoff_and_hot_loop(Client::Python).await;
}

#[tokio::test]
async fn grpc_js_backoff_passes_and_a_hot_loop_fails() {
    backoff_and_hot_loop(Client::Node).await;
}

#[tokio::test]
async fn grpcio_ignoring_retry_info_is_flagged() {
    retry_info(Client::Python).await;
}

#[tokio::test]
async fn grpc_js_ignoring_retry_info_is_flagged() {
    retry_info(Client::Node).await;
}

#[tokio::test]
async fn grpcio_resume_is_classed_resumed_and_a_restart_restarted() {
    resume_or_restart(Client::Python).await;
}

#[tokio::test]
async fn grpc_js_resume_is_classed_resumed_and_a_restart_restarted() {
    resume_or_restart(Client::Node).await;
}

#[tokio::test]
async fn grpcio_keepalive_detects_a_blackhole_and_no_keepalive_never_does() {
    dead_peer(Client::Python).await;
}

#[tokio::test]
async fn grpc_js_keepalive_detects_a_blackhole_and_no_keepalive_never_does() {
    dead_peer(Client::Node).await;
}
