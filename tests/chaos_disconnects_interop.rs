//! Each disconnect mode as real clients see it — Python grpcio and Node @grpc/grpc-js, each
//! against its own server configured from profile YAML with `rate: 100%` so the outcome is
//! certain: RST_STREAM is the library's reset error, GOAWAY drains then fails with
//! `UNAVAILABLE` while new calls move to a new connection, a TCP reset fails every stream of the
//! connection at once, a stall runs into the client's deadline, and a blackhole into its
//! keepalive.
//!
//! Times come from the clients' own clocks (milliseconds since each call started, or since the
//! first call of a run). The server's schedule for a stream (its first message at once, then
//! one every `INTERVAL_MS`) starts after the call started and before the first message
//! arrived, so those two instants bound when the server acted, whatever the load: a client
//! busy elsewhere reads late, never early.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::TestServer;
use common::chaos::{ConnectionLog, start_with_profile};
use common::interop::{Client, ClientCall, ClientOutcome};
use streamstorm::chaos::plan::DEFAULT_LINGER;

const SUBSCRIBE: &str = "myapp.NotificationService/Subscribe";
/// Gap between the server's messages: wide enough that messages sent before a fault have left
/// the server before the fault strikes, even on a busy two-core machine.
const INTERVAL_MS: f64 = 100.0;
/// How much later a fault may be seen than it struck: scheduling delays of two client
/// processes and the server sharing two cores with a parallel test run (stalls of 400 ms were
/// seen under a load average of 10).
const LATE_TOLERANCE_MS: f64 = 1000.0;
const KEEPALIVE_TIME_MS: f64 = 1000.0;
const KEEPALIVE_TIMEOUT_MS: f64 = 1000.0;

/// A server whose every stream gets `disconnect` (the keys after `rate: 100%`) and sends
/// `messages` messages `INTERVAL_MS` apart.
async fn server(disconnect: &str, messages: u32) -> TestServer {
    let profile = format!("chaos:\n  seed: 7\n  rules:\n    - disconnect: {{ rate: 100%, {disconnect} }}\n");
    start_with_profile(&profile, messages, Duration::from_millis(INTERVAL_MS as u64)).await
}

/// Runs `case` for both clients at once, each against its own server.
async fn for_both_clients<Case, Run>(case: Case)
where
    Case: Fn(Client) -> Run,
    Run: std::future::Future<Output = ()>,
{
    futures::future::join(case(Client::Python), case(Client::Node)).await;
}

/// A Subscribe call with the library traces the assertions read on stderr: grpc-js logs RST
/// codes, GOAWAYs and keepalive pings; grpcio logs pings (its status details say the rest).
fn subscribe(client: Client, target: SocketAddr) -> ClientCall {
    let call = ClientCall::new(client, target, SUBSCRIBE).env("GRPC_VERBOSITY", "DEBUG");
    match client {
        Client::Python => call.env("GRPC_TRACE", "http2_ping"),
        Client::Node => call.env("GRPC_TRACE", "transport,subchannel_call,keepalive"),
    }
}

/// Keepalive every `KEEPALIVE_TIME_MS`, a ping unanswered for `KEEPALIVE_TIMEOUT_MS` closing
/// the connection, while calls are open.
fn with_keepalive(call: ClientCall, client: Client) -> ClientCall {
    let call = call
        .channel_option("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS)
        .channel_option("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS);
    match client {
        Client::Node => call,
        Client::Python => call
            .channel_option("grpc.keepalive_permit_without_calls", 1)
            // Otherwise grpcio stops pinging after two pings without sending data.
            .channel_option("grpc.http2.max_pings_without_data", 0)
            // grpcio 1.85 times its keepalive ping out after this (default 60 s: its http2_ping
            // trace says "Set ping timeout timer of 60000ms"), not after keepalive_timeout_ms;
            // with only the latter a blackholed call hung past 30 s.
            .channel_option("grpc.http2.ping_timeout_ms", KEEPALIVE_TIMEOUT_MS)
            // grpcio's flow-control (BDP) probe pings as data arrives, and only one ping may be
            // in flight: with it off, the ping the blackhole swallows is the keepalive one.
            .channel_option("grpc.http2.bdp_probe", 0),
    }
}

/// When the first message arrived; every case here lets at least one through before its fault.
fn first_arrival(outcome: &ClientOutcome, client: Client) -> f64 {
    *outcome.received_at_ms.first().unwrap_or_else(|| panic!("{client:?} got no message: {outcome:?}"))
}

/// Asserts calls ended by a fault that struck `after_ms` into the schedule of the first of
/// their streams to get there: each ended no earlier than that after the first of the calls
/// started (timers fire late, never early), and no later than that plus `LATE_TOLERANCE_MS`
/// after its own first message arrived (its schedule started no earlier than the first's).
fn assert_ended_about(calls: &[ClientOutcome], client: Client, after_ms: f64) {
    let first_start = calls.iter().map(|call| call.started_at_ms).fold(f64::MAX, f64::min);
    for outcome in calls {
        let since_first = outcome.ended_at_ms - first_arrival(outcome, client);
        assert!(
            outcome.ended_at() - first_start >= after_ms && since_first <= after_ms + LATE_TOLERANCE_MS,
            "{client:?}: ended {} ms after the first call started and {since_first} ms after its \
             first message, expected {after_ms} ms into the schedule: {outcome:?}",
            outcome.ended_at() - first_start
        );
    }
}

/// RST_STREAM after `after` messages with the h2 code `h2_code`: the client got at most `after`
/// messages and its status came once the `after`-th was due.
///
/// At most, not exactly: the server's HTTP/2 layer drops frames of a stream it resets that are
/// still queued, and the `after`-th message is queued just before the reset, so clients
/// usually see `after - 1` (as HTTP/2 allows: a reset may overtake data not yet read).
async fn reset_stream_case(client: Client, h2_code: Option<&str>, after: u64) -> ClientOutcome {
    let code = h2_code.map(|code| format!(", h2_code: {code}")).unwrap_or_default();
    let server = server(&format!("after_messages: {after}, mode: reset_stream{code}"), 50).await;
    let outcome = subscribe(client, server.addr).run().await;
    assert!(outcome.responses.len() as u64 <= after, "{client:?}: {outcome:?}");
    assert_ended_about(std::slice::from_ref(&outcome), client, (after - 1) as f64 * INTERVAL_MS);
    outcome
}

#[tokio::test]
async fn reset_stream_with_the_default_code_is_the_libraries_cancel() {
    for_both_clients(|client| async move {
        let outcome = reset_stream_case(client, None, 3).await;
        // The default h2 code is CANCEL (8), which both libraries map to CANCELLED; these
        // clients never cancel, so the status can only come from the server's reset.
        assert_eq!(outcome.code, "CANCELLED", "{client:?}: {outcome:?}");
        match client {
            Client::Python => assert!(
                outcome.details.contains("RST_STREAM") && outcome.details.contains("error code 8"),
                "{outcome:?}"
            ),
            Client::Node => {
                // grpc-js words a reset with CANCEL like a local cancel; its trace has the code.
                assert_eq!(outcome.details, "Call cancelled");
                assert!(outcome.stderr.contains("HTTP/2 stream closed with code 8"), "{}", outcome.stderr);
            }
        }
    })
    .await;
}

#[tokio::test]
async fn reset_stream_with_a_configured_code_carries_that_code() {
    for_both_clients(|client| async move {
        let outcome = reset_stream_case(client, Some("INTERNAL_ERROR"), 3).await;
        assert_eq!(outcome.code, "INTERNAL", "{client:?}: {outcome:?}");
        let expected = match client {
            Client::Python => "Stream removed (RST_STREAM (Received RST_STREAM with error code 2))",
            Client::Node => "Received RST_STREAM with code 2 (Internal server error)",
        };
        assert_eq!(outcome.details, expected, "{client:?}");
    })
    .await;
}

/// Asserts the call ended as the library reports a call whose connection closed after a
/// GOAWAY (NO_ERROR).
fn assert_closed_after_goaway(outcome: &ClientOutcome, client: Client) {
    match client {
        Client::Python => {
            assert_eq!(outcome.code, "UNAVAILABLE", "{outcome:?}");
            assert!(outcome.details.contains("GOAWAY received; Error code: 0"), "{outcome:?}");
        }
        Client::Node => assert_grpc_js_closed_after_goaway(outcome),
    }
}

/// grpc-js logs the GOAWAY, then reports the calls on the closed connection as "Connection
/// dropped" — or, now and then (1 run in 30 here), when Node's HTTP/2 session ends the streams
/// before grpc-js has seen the socket close, as streams that ended without a status.
fn assert_grpc_js_closed_after_goaway(outcome: &ClientOutcome) {
    let seen = (outcome.code.as_str(), outcome.details.as_str());
    assert!(
        matches!(
            seen,
            ("UNAVAILABLE", "Connection dropped")
                | ("INTERNAL", "Received RST_STREAM with code 0 (Call ended without gRPC status)")
        ),
        "{outcome:?}"
    );
    assert!(outcome.stderr.contains("connection closed by GOAWAY with code 0"), "{}", outcome.stderr);
}

#[tokio::test]
async fn goaway_with_grace_drains_in_flight_streams_then_fails_them_and_moves_new_calls() {
    const GRACE_MS: f64 = 1000.0;
    for_both_clients(|client| async move {
        // Each stream asks for GOAWAY at its 2nd message; the first to get there drains its
        // connection for the grace, then the server closes it under the streams still running.
        let server = server("after_messages: 2, mode: goaway, grace: 1s", 30).await;
        let connections = ConnectionLog::watch(&server);
        // Three calls at once, then one 400 ms later: after the GOAWAY (at about 100 ms).
        let calls = subscribe(client, server.addr).call_starts_ms(&[0, 0, 0, 400]).run_calls().await;
        let (first_connection, later) = calls.split_at(3);
        for outcome in first_connection {
            assert_closed_after_goaway(outcome, client);
            // Messages kept coming through the grace: the server closes the connection a grace
            // after the GOAWAY (100 ms into the first stream's schedule), so every stream sent
            // a message at 1,000 ms into that schedule or later.
            let last = outcome.started_at_ms + outcome.received_at_ms.last().copied().unwrap_or_default();
            assert!(last >= GRACE_MS, "{client:?}: drained only until {last} ms: {outcome:?}");
        }
        assert_ended_about(first_connection, client, INTERVAL_MS + GRACE_MS);
        // Both libraries open a new connection for a call made after a GOAWAY; no call is
        // refused. That call's own stream then asks for GOAWAY of the new connection, so it
        // too ends after its grace — well after the first connection closed under it had it
        // stayed there (700 ms in).
        let moved = &later[0];
        assert_closed_after_goaway(moved, client);
        assert_ended_about(later, client, INTERVAL_MS + GRACE_MS);
        assert_eq!(connections.streams_per_connection(), [3, 1], "{client:?}: streams per connection");
    })
    .await;
}

/// Asserts the calls' statuses all came within `window_ms` of each other.
fn assert_ended_together(calls: &[ClientOutcome], client: Client, window_ms: f64) {
    let ends: Vec<f64> = calls.iter().map(ClientOutcome::ended_at).collect();
    let spread = ends.iter().fold(f64::MIN, |a, b| a.max(*b)) - ends.iter().fold(f64::MAX, |a, b| a.min(*b));
    assert!(spread <= window_ms, "{client:?}: statuses {spread} ms apart: {ends:?}");
}

#[tokio::test]
async fn goaway_without_grace_fails_every_stream_of_the_connection_at_once() {
    for_both_clients(|client| async move {
        let server = server("after_messages: 2, mode: goaway", 30).await;
        let calls = subscribe(client, server.addr).call_starts_ms(&[0, 0, 0]).run_calls().await;
        for outcome in &calls {
            assert!(outcome.responses.len() <= 2, "{client:?}: {outcome:?}");
            match client {
                // The server queues the GOAWAY and closes the socket at once, with the client's
                // last frames unread, so the kernel sends a TCP reset after it. grpcio reports
                // the GOAWAY with the socket's end, or — when it fails a write on the reset
                // socket before reading the GOAWAY (7 runs in 40 here) — only the socket error.
                Client::Python => {
                    assert_eq!(outcome.code, "UNAVAILABLE", "{outcome:?}");
                    let said = ["GOAWAY received; Error code: 0", "Connection reset by peer", "Broken pipe"];
                    assert!(said.iter().any(|said| outcome.details.contains(said)), "{outcome:?}");
                }
                Client::Node => assert_grpc_js_closed_after_goaway(outcome),
            }
        }
        assert_ended_together(&calls, client, 200.0);
        assert_ended_about(&calls, client, INTERVAL_MS);
    })
    .await;
}

#[tokio::test]
async fn tcp_reset_fails_every_stream_of_the_connection_at_once() {
    const AFTER: u64 = 5;
    for_both_clients(|client| async move {
        let server = server(&format!("after_messages: {AFTER}, mode: tcp_reset"), 30).await;
        let connections = ConnectionLog::watch(&server);
        // The last call starts 200 ms late: 200 ms before the first streams reach their 5th
        // message (at 400 ms), 200 ms before it could reach its own.
        let calls = subscribe(client, server.addr).call_starts_ms(&[0, 0, 0, 200]).run_calls().await;
        for outcome in &calls {
            assert_eq!(outcome.code, "UNAVAILABLE", "{client:?}: {outcome:?}");
            let reset = match client {
                Client::Python => outcome.details.contains("Connection reset by peer"),
                // Usually the socket error; sometimes (2 runs in 20 here, with the server's
                // reset armed every time) Node reports the socket closed without an error, and
                // grpc-js says what it says of any lost connection.
                Client::Node => ["read ECONNRESET", "Connection dropped"].contains(&outcome.details.as_str()),
            };
            assert!(reset, "{client:?}: {outcome:?}");
            // No GOAWAY came first: this is not a server closing politely.
            assert!(!outcome.details.contains("GOAWAY"), "{client:?}: {outcome:?}");
            assert!(!outcome.stderr.contains("closed by GOAWAY"), "{client:?}:\n{}", outcome.stderr);
        }
        assert_eq!(connections.streams_per_connection(), [4], "{client:?}: one connection carried them all");
        assert_ended_together(&calls, client, 200.0);
        assert_ended_about(&calls, client, (AFTER - 1) as f64 * INTERVAL_MS);
        // The late call failed with the others, before its own fault could have been due (its
        // 5th message, then the linger that lets a client read it).
        let late = &calls[3];
        let due = (AFTER - 1) as f64 * INTERVAL_MS + DEFAULT_LINGER.as_secs_f64() * 1000.0;
        assert!(
            late.ended_at_ms < due,
            "{client:?}: the late call ended {} ms in: {late:?}",
            late.ended_at_ms
        );
    })
    .await;
}

#[tokio::test]
async fn stall_keeps_the_stream_open_until_the_client_deadline() {
    // Longer than a keepalive round (time + timeout), so a connection that stopped answering
    // pings would fail before the deadline.
    const DEADLINE_MS: f64 = 3000.0;
    for_both_clients(|client| async move {
        let server = server("after_messages: 3, mode: stall", 30).await;
        let call = subscribe(client, server.addr).arg("--timeout").arg((DEADLINE_MS / 1000.0).to_string());
        let outcome = with_keepalive(call, client).run().await;
        assert_eq!(outcome.code, "DEADLINE_EXCEEDED", "{client:?}: {outcome:?}");
        assert!(outcome.details.to_lowercase().contains("deadline exceeded"), "{client:?}: {outcome:?}");
        // A stall resets nothing, so every message before it arrives.
        assert_eq!(outcome.responses.len(), 3, "{client:?}: {outcome:?}");
        // grpc-js keeps its deadline on the wall clock (Date.now(), whole milliseconds), the
        // client times the call on the monotonic one: they disagreed by up to 12 ms here.
        let clocks = 50.0;
        assert!(
            (DEADLINE_MS - clocks..DEADLINE_MS + LATE_TOLERANCE_MS).contains(&outcome.ended_at_ms),
            "{client:?}: ended at {} ms",
            outcome.ended_at_ms
        );
        // The connection stayed alive: keepalive pings were answered, not refused as too many
        // (the server's HTTP/2 layer has no ping policy; a too_many_pings GOAWAY would have
        // ended the call UNAVAILABLE before the deadline).
        let answered = match client {
            Client::Python => "received ping ack",
            Client::Node => "Received ping response",
        };
        assert!(outcome.stderr.contains(answered), "{client:?}: no ping answered:\n{}", outcome.stderr);
    })
    .await;
}

#[tokio::test]
async fn blackhole_is_caught_by_the_client_keepalive() {
    const AFTER: u64 = 3;
    for_both_clients(|client| async move {
        let server = server(&format!("after_messages: {AFTER}, mode: blackhole"), 30).await;
        // No deadline: only the keepalive can end this call. The bound keeps a regression
        // from hanging the suite (the server holds a blackholed connection for 120 s).
        let call = with_keepalive(subscribe(client, server.addr), client).run();
        let outcome = tokio::time::timeout(Duration::from_secs(20), call)
            .await
            .unwrap_or_else(|_| panic!("{client:?}: the call outlived its keepalive by far"));
        assert_eq!(outcome.code, "UNAVAILABLE", "{client:?}: {outcome:?}");
        let (timed_out, details) = match client {
            Client::Python => ("Set ping timeout timer of 1000ms", "Stream removed (ping timeout)"),
            Client::Node => ("Ping timeout passed without response", "Connection dropped"),
        };
        assert_eq!(outcome.details, details, "{client:?}");
        assert!(outcome.stderr.contains(timed_out), "{client:?}:\n{}", outcome.stderr);
        // The blackhole struck at the server's AFTER-th message. grpcio pings a keepalive time
        // after the last data it read, grpc-js a keepalive time after its previous ping (or
        // the connection's start); either way the ping goes out at most a keepalive time after
        // the blackhole, and the call fails a keepalive timeout after the ping.
        // (A ping sent just before the blackhole may have its answer swallowed: half a message
        // gap allows for that.)
        let blackholed = (AFTER - 1) as f64 * INTERVAL_MS;
        let earliest = blackholed + KEEPALIVE_TIMEOUT_MS - INTERVAL_MS / 2.0;
        let latest = blackholed + KEEPALIVE_TIME_MS + KEEPALIVE_TIMEOUT_MS + LATE_TOLERANCE_MS;
        let since_first = outcome.ended_at_ms - first_arrival(&outcome, client);
        assert!(
            outcome.ended_at_ms >= earliest && since_first <= latest,
            "{client:?}: ended {} ms after the call started, {since_first} ms after the first message: {outcome:?}",
            outcome.ended_at_ms
        );
    })
    .await;
}
