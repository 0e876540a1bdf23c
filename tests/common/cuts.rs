//! Cut positions as the client application sees them, shared by the mock server's and the
//! proxy's cut-fidelity tests: many concurrent Subscribe calls of one real client, each cut by
//! a fault after exactly [`AFTER`] messages of a stream sent back to back. The application
//! must read exactly `AFTER` messages, then the error, in at least [`EXACT_SHARE`] of the
//! streams, and never more than `AFTER`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::interop::{Client, ClientCall, ClientOutcome};

pub const SUBSCRIBE: &str = "myapp.NotificationService/Subscribe";
/// Where every fault cuts.
pub const AFTER: usize = 5;
/// The share of streams that must see exactly `AFTER` messages.
pub const EXACT_SHARE: f64 = 0.99;

/// How the calls of a case share connections.
#[derive(Clone, Copy)]
pub enum Connections {
    /// One channel (one connection) for every call: for stream-level faults.
    Shared,
    /// A connection per call: a connection-level cut ends every stream of its connection
    /// wherever each one is.
    OnePerCall,
}

/// `streams` concurrent Subscribe calls of `client` against `target`, with a deadline of
/// `timeout_s` each.
pub fn concurrent_subscribes(
    client: Client,
    target: SocketAddr,
    streams: usize,
    timeout_s: f64,
    connections: Connections,
) -> ClientCall {
    let call = ClientCall::new(client, target, SUBSCRIBE)
        .arg("--timeout")
        .arg(timeout_s.to_string())
        .call_starts_ms(&vec![0; streams]);
    match connections {
        Connections::Shared => call,
        Connections::OnePerCall => call.arg("--channel-per-call"),
    }
}

/// Asserts `calls` of `client` (cut by `fault`) each saw at most `AFTER` messages, and that at
/// least `EXACT_SHARE` of them saw exactly `AFTER`, then one of `codes`.
pub fn assert_exact_cuts_seen(client: Client, fault: &str, calls: &[ClientOutcome], codes: &[&str]) {
    let over: Vec<&ClientOutcome> = calls.iter().filter(|call| call.responses.len() > AFTER).collect();
    assert!(
        over.is_empty(),
        "{client:?} ({fault}): {} streams saw more than {AFTER}: {:?}",
        over.len(),
        over[0]
    );
    let exact = calls
        .iter()
        .filter(|call| call.responses.len() == AFTER && codes.contains(&call.code.as_str()))
        .count();
    let seen = histogram(calls);
    let streams = calls.len();
    println!("{client:?} {fault}: {exact} of {streams} exact; (messages, code) → streams: {seen:?}");
    assert!(
        exact as f64 >= EXACT_SHARE * streams as f64,
        "{client:?} ({fault}): only {exact} of {streams} streams saw exactly {AFTER} messages then {codes:?}: \
         {seen:?}"
    );
}

/// How many calls ended with each (messages received, code).
pub fn histogram(calls: &[ClientOutcome]) -> BTreeMap<(usize, String), usize> {
    let mut seen = BTreeMap::new();
    for call in calls {
        *seen.entry((call.responses.len(), call.code.clone())).or_default() += 1;
    }
    seen
}
