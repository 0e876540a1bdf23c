//! Stream faults on proxied calls, judged by what grpcio and grpc-js saw and what the Python
//! upstream saw: an abort never reaches the upstream; a failure after N messages delivers N and
//! cancels the upstream call; latency spaces responses, or the client's requests before they are
//! forwarded; caps each way; call and message rate limits; a phase of outage.

mod common;

use std::time::Duration;

use common::interop::{Client, ClientCall, ClientOutcome};
use common::proxy::{Proxy, Upstream};
use serde_json::json;

const SUBSCRIBE: &str = "myapp.NotificationService/Subscribe";
const GET_USER: &str = "myapp.UserService/GetUser";
const CHAT: &str = "myapp.ChatService/Chat";
const UPLOAD: &str = "myapp.UploadService/UploadFile";
/// How much later than planned a message may arrive on a busy two-core machine.
const LATE_TOLERANCE_MS: f64 = 400.0;

/// A call through `proxy` tagged with `x-call-tag: TAG` (so the upstream's record of it can be
/// found), asking the upstream for `messages` streamed responses.
fn tagged(client: Client, proxy: &Proxy, method: &str, tag: &str, messages: i64) -> ClientCall {
    ClientCall::new(client, proxy.addr(), method)
        .arg("--metadata")
        .arg(format!("x-call-tag={tag}"))
        .arg("--metadata")
        .arg(format!("x-upstream-messages={messages}"))
        .arg("--timeout")
        .arg("15")
}

/// Asserts that `outcome`'s answers were held `every_ms` each, one after another, as the client
/// application saw them. The proxy keeps an absolute schedule, so an answer the client read late
/// (a busy machine) is followed by a shorter gap: single gaps may read short. What must hold:
/// the k-th answer arrives no earlier than k × `every_ms` after the call started, no gap is
/// longer than `every_ms` plus the tolerance, and the typical (median) gap is `every_ms`.
fn assert_paced(client: Client, outcome: &ClientOutcome, every_ms: f64) {
    const EARLY_MS: f64 = 10.0;
    for (k, at) in outcome.received_at_ms.iter().enumerate() {
        let due = every_ms * (k + 1) as f64 - EARLY_MS;
        assert!(*at >= due, "{client:?}: answer {} at {at} ms, due {due} ms: {outcome:?}", k + 1);
    }
    let mut gaps: Vec<f64> = outcome.received_at_ms.windows(2).map(|pair| pair[1] - pair[0]).collect();
    gaps.sort_by(f64::total_cmp);
    let late = every_ms + LATE_TOLERANCE_MS;
    assert!(gaps.iter().all(|gap| *gap < late), "{client:?}: a gap over {late} ms: {gaps:?}: {outcome:?}");
    let median = gaps[gaps.len() / 2];
    assert!(median >= every_ms - EARLY_MS, "{client:?}: median gap {median} ms: {gaps:?}: {outcome:?}");
}

#[tokio::test]
async fn an_abort_never_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let rule = "match: { method: myapp.UserService/GetUser }\n      abort: { rate: 100%, code: PERMISSION_DENIED, message: injected }";
    let proxy = Proxy::with_rule(upstream.addr, rule).await;
    for client in [Client::Python, Client::Node] {
        let tag = format!("abort-{client:?}");
        let aborted = tagged(client, &proxy, GET_USER, &tag, 1).call_starts_ms(&[0; 10]).run_calls().await;
        for outcome in &aborted {
            assert_eq!((outcome.code.as_str(), outcome.details.as_str()), ("PERMISSION_DENIED", "injected"));
            assert!(outcome.responses.is_empty(), "{client:?}: {outcome:?}");
        }
        // A call the rule does not match goes through on the same proxy.
        let other = tagged(client, &proxy, SUBSCRIBE, &tag, 2).run().await;
        assert_eq!((other.code.as_str(), other.responses.len()), ("OK", 2), "{client:?}: {other:?}");
        let seen = upstream.wait_for_calls("x-call-tag", &tag, 2, Duration::from_millis(500)).await;
        let methods: Vec<&str> = seen.iter().map(|call| call["method"].as_str().unwrap()).collect();
        assert_eq!(methods, [SUBSCRIBE], "{client:?}: what the upstream saw of the aborted calls");
    }
    assert_eq!(proxy.metric("streamstorm_faults_injected_total", &[("kind", "abort")]).await, 20.0);
}

#[tokio::test]
async fn a_failure_after_n_messages_delivers_n_and_cancels_the_upstream_call() {
    let upstream = Upstream::start().await;
    let rule = "fail: { rate: 100%, after_messages: 3, code: DATA_LOSS, message: injected failure }";
    let proxy = Proxy::with_rule(upstream.addr, rule).await;
    for client in [Client::Python, Client::Node] {
        let tag = format!("fail-{client:?}");
        // An endless upstream stream, a message every 20 ms: only the proxy can end it.
        let outcome = tagged(client, &proxy, SUBSCRIBE, &tag, -1)
            .arg("--metadata")
            .arg("x-upstream-interval-ms=20")
            .requests(json!([{"topics": ["f"]}]))
            .run()
            .await;
        assert_eq!((outcome.code.as_str(), outcome.details.as_str()), ("DATA_LOSS", "injected failure"));
        let sequences: Vec<&serde_json::Value> = outcome.responses.iter().map(|r| &r["sequence"]).collect();
        assert_eq!(sequences, [&json!("1"), &json!("2"), &json!("3")], "{client:?}: {outcome:?}");
        let seen = upstream.wait_for_calls("x-call-tag", &tag, 1, Duration::from_secs(5)).await;
        assert_eq!(seen.len(), 1, "{client:?}: the upstream call never ended: {:?}", upstream.calls());
        assert_eq!(seen[0]["code"], "CANCELLED", "{client:?}: {seen:?}");
    }
}

#[tokio::test]
async fn response_latency_spaces_every_relayed_message() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::with_rule(upstream.addr, "latency: { per_message: 100ms }").await;
    for client in [Client::Python, Client::Node] {
        // The upstream sends its five messages back to back.
        let outcome = tagged(client, &proxy, SUBSCRIBE, "latency", 5).run().await;
        assert_eq!((outcome.code.as_str(), outcome.responses.len()), ("OK", 5), "{client:?}: {outcome:?}");
        assert_paced(client, &outcome, 100.0);
    }
}

#[tokio::test]
async fn request_latency_holds_the_clients_messages_before_forwarding_them() {
    let upstream = Upstream::start().await;
    let rule = "match: { method: myapp.ChatService/Chat }\n      latency: { per_message: 150ms, direction: request }";
    let proxy = Proxy::with_rule(upstream.addr, rule).await;
    for client in [Client::Python, Client::Node] {
        // Four requests sent at once; the upstream answers each as it arrives.
        let requests = json!([{"content": "a"}, {"content": "b"}, {"content": "c"}, {"content": "d"}]);
        let outcome = tagged(client, &proxy, CHAT, "request-latency", 0).requests(requests).run().await;
        let contents: Vec<&str> = outcome.responses.iter().map(|r| r["content"].as_str().unwrap()).collect();
        assert_eq!(contents, ["#1 a", "#2 b", "#3 c", "#4 d"], "{client:?}: {outcome:?}");
        assert_paced(client, &outcome, 150.0);
    }
}

#[tokio::test]
async fn a_message_cap_ends_the_stream_after_exactly_n() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::with_rule(upstream.addr, "message_cap: { max: 4, code: RESOURCE_EXHAUSTED }").await;
    for client in [Client::Python, Client::Node] {
        let outcomes =
            tagged(client, &proxy, SUBSCRIBE, "cap", 30).call_starts_ms(&[0; 20]).run_calls().await;
        for outcome in outcomes {
            assert_eq!(
                (outcome.code.as_str(), outcome.responses.len()),
                ("RESOURCE_EXHAUSTED", 4),
                "{client:?}: {outcome:?}"
            );
        }
    }
}

#[tokio::test]
async fn an_inbound_cap_ends_an_upload_before_the_upstream_gets_more() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::with_rule(upstream.addr, "inbound_cap: 3").await;
    let chunks: Vec<serde_json::Value> =
        (0..8).map(|n| json!({"data": "AAEC", "sequence": n, "is_last": n == 7})).collect();
    for client in [Client::Python, Client::Node] {
        let tag = format!("inbound-{client:?}");
        let outcome = tagged(client, &proxy, UPLOAD, &tag, 1)
            .requests(json!(chunks))
            .arg("--send-interval-ms")
            .arg("20")
            .run()
            .await;
        assert_eq!(outcome.code, "RESOURCE_EXHAUSTED", "{client:?}: {outcome:?}");
        let seen = upstream.wait_for_calls("x-call-tag", &tag, 1, Duration::from_secs(5)).await;
        let forwarded = seen.first().map_or(0, |call| call["requests"].as_array().unwrap().len());
        assert!(forwarded <= 3, "{client:?}: the upstream got {forwarded} chunks past a cap of 3: {seen:?}");
    }
}

#[tokio::test]
async fn a_call_rate_limit_refuses_the_excess_before_the_upstream() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::with_rule(upstream.addr, "rate_limit: { calls_per_second: 5 }").await;
    let outcomes =
        tagged(Client::Python, &proxy, GET_USER, "rate", 1).call_starts_ms(&[0; 30]).run_calls().await;
    let ok = outcomes.iter().filter(|outcome| outcome.code == "OK").count();
    let refused = outcomes.iter().filter(|outcome| outcome.code == "RESOURCE_EXHAUSTED").count();
    assert_eq!(ok + refused, 30, "{outcomes:?}");
    assert!((5..=10).contains(&ok), "{ok} calls passed a limit of 5/s with a burst of 5");
    let seen = upstream.wait_for_calls("x-call-tag", "rate", 30, Duration::from_millis(500)).await;
    assert_eq!(seen.len(), ok, "the upstream saw other calls than those that passed");
}

#[tokio::test]
async fn a_message_rate_limit_paces_the_relayed_stream() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::with_rule(upstream.addr, "rate_limit: { messages_per_second: 20 }").await;
    for client in [Client::Python, Client::Node] {
        let outcome = tagged(client, &proxy, SUBSCRIBE, "paced", 10).run().await;
        assert_eq!((outcome.code.as_str(), outcome.responses.len()), ("OK", 10), "{client:?}: {outcome:?}");
        let span = outcome.received_at_ms[9] - outcome.received_at_ms[0];
        // Nine gaps of at least 50 ms each; a late one lets the next catch up on schedule.
        assert!(
            (440.0..450.0 + LATE_TOLERANCE_MS).contains(&span),
            "{client:?}: span {span} ms: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn an_outage_phase_aborts_at_the_proxy_then_calls_go_through() {
    let upstream = Upstream::start().await;
    let chaos = "  seed: 4
  phases:
    - { name: outage, duration: 4s, abort: { rate: 100%, code: UNAVAILABLE, message: outage } }
    - { name: calm, duration: 1h }
";
    let proxy = Proxy::start(&upstream.addr.to_string(), chaos, &[]).await;
    let started = tokio::time::Instant::now();
    let during = tagged(Client::Python, &proxy, GET_USER, "during", 1).run().await;
    assert!(started.elapsed() < Duration::from_secs(4), "the call took too long to judge the phase");
    assert_eq!((during.code.as_str(), during.details.as_str()), ("UNAVAILABLE", "outage"), "{during:?}");
    tokio::time::sleep_until(started + Duration::from_millis(4500)).await;
    let after = tagged(Client::Node, &proxy, GET_USER, "after", 1).run().await;
    assert_eq!(after.code, "OK", "{after:?}");
    assert!(upstream.calls_with("x-call-tag", "during").is_empty(), "an aborted call reached the upstream");
    assert_eq!(upstream.wait_for_calls("x-call-tag", "after", 1, Duration::from_secs(5)).await.len(), 1);
}
