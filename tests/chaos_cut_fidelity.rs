//! Cut positions as the client application sees them. For every way a stream can end part-way
//! (`fail`, the five disconnect modes, `message_cap`), 200 concurrent streams of Python grpcio
//! and of Node grpc-js each get the fault after exactly 5 messages, with the server sending its
//! 30 messages back to back — the hard case: nothing spaces the messages out before the cut.
//! The application must read exactly 5 messages, then the error, in at least 99% of streams,
//! and never more than 5. The profile leaves `chaos.linger` at its default: these tests are
//! what the default was chosen by.
//!
//! Stream-level faults run all 200 calls on one channel (one connection). Connection-level cuts
//! (GOAWAY, TCP reset, blackhole) give each call a connection of its own: one cut ends every
//! stream of its connection wherever each one is.

mod common;

use std::time::Duration;

use common::chaos::start_with_profile;
use common::cuts::{Connections, assert_exact_cuts_seen, concurrent_subscribes};
use common::interop::Client;

const STREAMS: usize = 200;
const MESSAGES: u32 = 30;

/// Runs `STREAMS` calls of each client against servers whose every stream gets `fault`, and
/// asserts the cut positions and that each call ended with one of `codes`.
async fn assert_exact_cuts(fault: &str, connections: Connections, timeout_s: f64, codes: &[&str]) {
    let profile = format!("chaos:\n  seed: 11\n  rules:\n    - {fault}\n");
    let case = |client: Client| {
        let profile = profile.clone();
        async move {
            let server = start_with_profile(&profile, MESSAGES, Duration::ZERO).await;
            let call = concurrent_subscribes(client, server.addr, STREAMS, timeout_s, connections);
            (client, call.run_calls().await)
        }
    };
    let (python, node) = futures::future::join(case(Client::Python), case(Client::Node)).await;
    for (client, calls) in [python, node] {
        assert_eq!(calls.len(), STREAMS, "{client:?}");
        assert_exact_cuts_seen(client, fault, &calls, codes);
    }
}

#[tokio::test]
async fn fail_after_five_is_exact() {
    assert_exact_cuts(
        "fail: { rate: 100%, after_messages: 5, code: INTERNAL }",
        Connections::Shared,
        10.0,
        &["INTERNAL"],
    )
    .await;
}

#[tokio::test]
async fn reset_stream_after_five_is_exact() {
    assert_exact_cuts(
        "disconnect: { rate: 100%, after_messages: 5, mode: reset_stream, h2_code: INTERNAL_ERROR }",
        Connections::Shared,
        10.0,
        &["INTERNAL"],
    )
    .await;
}

#[tokio::test]
async fn message_cap_of_five_is_exact() {
    assert_exact_cuts(
        "message_cap: { max: 5, code: RESOURCE_EXHAUSTED }",
        Connections::Shared,
        10.0,
        &["RESOURCE_EXHAUSTED"],
    )
    .await;
}

#[tokio::test]
async fn stall_after_five_is_exact() {
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
async fn goaway_after_five_is_exact() {
    // grpc-js reports some calls on a connection closed after GOAWAY as ended without a status
    // (INTERNAL, "Received RST_STREAM with code 0") rather than UNAVAILABLE: its HTTP/2 session
    // can end the streams before it has seen the socket close.
    assert_exact_cuts(
        "disconnect: { rate: 100%, after_messages: 5, mode: goaway }",
        Connections::OnePerCall,
        10.0,
        &["UNAVAILABLE", "INTERNAL"],
    )
    .await;
}

#[tokio::test]
async fn tcp_reset_after_five_is_exact() {
    assert_exact_cuts(
        "disconnect: { rate: 100%, after_messages: 5, mode: tcp_reset }",
        Connections::OnePerCall,
        10.0,
        &["UNAVAILABLE"],
    )
    .await;
}

#[tokio::test]
async fn blackhole_after_five_is_exact() {
    // Nothing answers on a blackholed connection: the client's deadline ends the call.
    assert_exact_cuts(
        "disconnect: { rate: 100%, after_messages: 5, mode: blackhole }",
        Connections::OnePerCall,
        3.0,
        &["DEADLINE_EXCEEDED"],
    )
    .await;
}
