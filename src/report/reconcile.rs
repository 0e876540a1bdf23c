//! Server-injected faults beside client-observed errors. Status faults (abort, fail, stream
//! timeout, call rate limit, inbound cap, a cap that ends with an error) end a call with a
//! status the client must see with no disconnect under it, so per code the two counts must
//! match; a `reset_stream` fault must arrive as an HTTP/2 reset. Connection faults (GOAWAY,
//! TCP reset, blackhole) hit every stream on the connection, so they are shown, not matched.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::chaos::{FaultKind, TallySummary};
use crate::client::DisconnectKind;
use crate::client::stats::{CODES, Counts};
use crate::proto::status::code_name;

/// The embedded server's side of the run.
#[derive(Debug, Clone, Serialize)]
pub struct ServerFaults {
    /// Every fault injected, by kind and code (`none` for faults without a status).
    pub injected: Vec<InjectedFault>,
    /// Per status code: ended by the server's status faults vs failed at the client with that
    /// status and no disconnect.
    pub status_codes: Vec<CodeReconciliation>,
    /// `reset_stream` faults vs HTTP/2 resets the client saw.
    pub resets: Pair,
    /// Messages the reset streams had sent vs those that arrived: a reset discards what is
    /// still queued, so the difference was lost in flight (and is the only server message
    /// the client's count may lack).
    pub messages_before_resets: ResetMessages,
    /// True when every status code and the resets match exactly.
    pub reconciled: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct InjectedFault {
    pub kind: String,
    pub code: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Pair {
    pub injected: u64,
    pub observed: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct ResetMessages {
    pub sent: u64,
    pub received: u64,
    pub lost_in_flight: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CodeReconciliation {
    pub code: String,
    pub injected: u64,
    pub observed: u64,
}

/// Does `kind` end the call with its status, for the client to see as is?
fn ends_with_status(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::Abort
            | FaultKind::Fail
            | FaultKind::Cap
            | FaultKind::InboundCap
            | FaultKind::Timeout
            | FaultKind::RateLimited
            | FaultKind::Upstream
    )
}

pub fn reconcile(tally: &TallySummary, client: &Counts) -> ServerFaults {
    let faults = &tally.faults;
    let mut by_code = [0u64; CODES];
    let mut resets = 0;
    for fault in faults {
        match fault.code {
            Some(code) if ends_with_status(fault.kind) && code != tonic::Code::Ok => {
                by_code[code as usize] += fault.count;
            }
            _ if fault.kind == FaultKind::ResetStream => resets += fault.count,
            _ => {}
        }
    }
    let status_codes: Vec<CodeReconciliation> = (0..CODES)
        .filter(|code| by_code[*code] > 0 || client.status_errors[*code] > 0)
        .map(|code| CodeReconciliation {
            code: code_name(tonic::Code::from_i32(code as i32)).to_owned(),
            injected: by_code[code],
            observed: client.status_errors[code],
        })
        .collect();
    let resets = Pair { injected: resets, observed: client.disconnects[DisconnectKind::Reset as usize] };
    let reconciled =
        status_codes.iter().all(|row| row.injected == row.observed) && resets.injected == resets.observed;
    let injected = faults
        .iter()
        .filter(|fault| fault.count > 0)
        .map(|fault| InjectedFault {
            kind: fault.kind.name().to_owned(),
            code: fault.code.map(|code| code_name(code).to_owned()),
            count: fault.count,
        })
        .collect();
    let messages_before_resets = ResetMessages {
        sent: tally.messages_before_resets,
        received: client.received_before_resets,
        lost_in_flight: tally.messages_before_resets.saturating_sub(client.received_before_resets),
    };
    ServerFaults { injected, status_codes, resets, messages_before_resets, reconciled }
}

/// Injected faults summed by kind, for the printed table.
pub fn by_kind(faults: &ServerFaults) -> BTreeMap<&str, u64> {
    let mut kinds = BTreeMap::new();
    for fault in &faults.injected {
        *kinds.entry(fault.kind.as_str()).or_insert(0) += fault.count;
    }
    kinds
}
