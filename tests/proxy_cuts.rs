//! Cut positions through `streamstorm proxy`, with the mock server's fidelity assertions
//! (`chaos_cut_fidelity.rs`): for `fail`, the five disconnect modes and `message_cap`, 100
//! concurrent streams of Python grpcio and of Node grpc-js each get the fault after exactly 5
//! messages while the Python upstream sends its 30 back to back. The application must read
//! exactly 5 messages, then the error, in at least 99% of streams, and never more than 5.

mod common;

use common::cuts::{Connections, assert_exact_cuts_seen, concurrent_subscribes};
use common::interop::Client;
use common::proxy::{Proxy, Upstream};

const STREAMS: usize = 100;
/// What the upstream streams per call, back to back.
const MESSAGES: usize = 30;

/// Runs `STREAMS` calls of each client through a proxy whose every stream gets `fault`.
async fn assert_exact_cuts(fault: &str, connections: Connections, timeout_s: f64, codes: &[&str]) {
    let upstream = Upstream::start().await;
    let case = |client: Client| async move {
        let proxy = Proxy::with_rule(upstream.addr, fault).await;
        let calls = concurrent_subscribes(client, proxy.addr(), STREAMS, timeout_s, connections)
            .arg("--metadata")
            .arg(format!("x-upstream-messages={MESSAGES}"))
            .run_calls()
            .await;
        (client, calls)
    };
    let (python, node) = futures::future::join(case(Client::Python), case(Client::Node)).await;
    for (client, calls) in [python, node] {
        assert_eq!(calls.len(), STREAMS, "{client:?}");
        assert_exact_cuts_seen(client, fault, &calls, codes);
    }
}

#[tokio::test]
async fn fail_after_five_is_exact_through_the_proxy() {
    assert_exact_cuts(
        "fail: { rate: 100%, after_messages: 5, code: INTERNAL }",
        Connections::Shared,
        10.0,
        &["INTERNAL"],
    )
    .await;
}

#[tokio::test]
async fn reset_stream_after_five_is_exact_through_the_proxy() {
    assert_exact_cuts(
        "disconnect: { rate: 100%, after_messages: 5, mode: reset_stream, h2_code: INTERNAL_ERROR }",
        Connections::Shared,
        10.0,
        &["INTERNAL"],
    )
    .await;
}

#[tokio::test]
async fn message_cap_of_five_is_exact_through_the_proxy() {
    assert_exact_cuts(
        "message_cap: { max: 5, code: RESOURCE_EXHAUSTED }",
        Connections::Shared,
        10.0,
        &["RESOURCE_EXHAUSTED"],
    )
    .await;
}

#[tokio::test]
async fn stall_after_five_is_exact_through_the_proxy() {
    // A stalled stream stays open: the client's deadline ends it.
    assert_exact_cuts(
        "disconnect: { rate: 100%, after_messages: 5, mode: stall }",
        Connections::Shared,
        3.0,
        &["DEADLINE_EXCEEDED"],
    )
    .await;
}

#[tokio::test]
async fn goaway_after_five_is_exact_through_the_proxy() {
    // As under serve, grpc-js may report a call on a connection closed after GOAWAY as INTERNAL.
    assert_exact_cuts(
        "disconnect: { rate: 100%, after_messages: 5, mode: goaway }",
        Connections::OnePerCall,
        10.0,
        &["UNAVAILABLE", "INTERNAL"],
    )
    .await;
}

#[tokio::test]
async fn tcp_reset_after_five_is_exact_through_the_proxy() {
    assert_exact_cuts(
        "disconnect: { rate: 100%, after_messages: 5, mode: tcp_reset }",
        Connections::OnePerCall,
        10.0,
        &["UNAVAILABLE"],
    )
    .await;
}

#[tokio::test]
async fn blackhole_after_five_is_exact_through_the_proxy() {
    assert_exact_cuts(
        "disconnect: { rate: 100%, after_messages: 5, mode: blackhole }",
        Connections::OnePerCall,
        3.0,
        &["DEADLINE_EXCEEDED"],
    )
    .await;
}

#[tokio::test]
async fn reset_stream_with_the_default_code_is_the_libraries_cancel_through_the_proxy() {
    // As under serve (`chaos_disconnects_interop.rs`): the default h2 code is CANCEL (8), which
    // both libraries report as CANCELLED; these clients never cancel, so it is the proxy's reset.
    let upstream = Upstream::start().await;
    let proxy =
        Proxy::with_rule(upstream.addr, "disconnect: { rate: 100%, after_messages: 3, mode: reset_stream }")
            .await;
    for client in [Client::Python, Client::Node] {
        let outcome = concurrent_subscribes(client, proxy.addr(), 1, 10.0, Connections::Shared)
            .arg("--metadata")
            .arg("x-upstream-messages=-1")
            .arg("--metadata")
            .arg("x-upstream-interval-ms=50")
            .env("GRPC_VERBOSITY", "DEBUG")
            .env("GRPC_TRACE", if client == Client::Node { "subchannel_call" } else { "" })
            .run_calls()
            .await
            .remove(0);
        assert_eq!(outcome.code, "CANCELLED", "{client:?}: {outcome:?}");
        assert!(outcome.responses.len() <= 3, "{client:?}: {outcome:?}");
        match client {
            Client::Python => assert!(outcome.details.contains("error code 8"), "{outcome:?}"),
            Client::Node => {
                assert!(outcome.stderr.contains("HTTP/2 stream closed with code 8"), "{}", outcome.stderr)
            }
        }
    }
}
