//! How a call ended, as the report counts it: a gRPC status code, and for calls cut off below
//! gRPC, which kind of disconnect did it (read from the h2, hyper and I/O errors tonic keeps
//! as the status's source).

use std::error::Error as _;

use tonic::{Code, Status};

use super::stats::DisconnectKind;

/// The end of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    /// The server ended the call with OK.
    Ok,
    /// The client ended it by its own limits (`messages_per_stream`, `stream_lifetime`).
    ClientEnded,
    /// It failed: with a status (`code`), cut off by `disconnect`, or both (a reset arrives
    /// as `CANCELLED` with an h2 reset under it). An idle timeout has no status.
    Failed { code: Option<Code>, disconnect: Option<DisconnectKind> },
    /// The run ended first.
    RunEnded,
}

/// Classifies a failed call's status.
pub fn failure(status: &Status) -> CallEnd {
    CallEnd::Failed { code: Some(status.code()), disconnect: disconnect_kind(status) }
}

/// The disconnect under a status, if any: walks its error sources.
pub fn disconnect_kind(status: &Status) -> Option<DisconnectKind> {
    let mut source = status.source();
    while let Some(error) = source {
        if let Some(h2) = error.downcast_ref::<h2::Error>() {
            if h2.is_go_away() {
                return Some(DisconnectKind::Goaway);
            }
            if h2.is_reset() {
                return Some(DisconnectKind::Reset);
            }
            if h2.is_io() {
                return Some(DisconnectKind::Transport);
            }
        }
        if error.downcast_ref::<std::io::Error>().is_some() {
            return Some(DisconnectKind::Transport);
        }
        if let Some(hyper) = error.downcast_ref::<hyper::Error>() {
            if hyper.is_closed() || hyper.is_incomplete_message() || hyper.is_canceled() {
                return Some(DisconnectKind::Transport);
            }
        }
        if error.downcast_ref::<tonic::transport::Error>().is_some() {
            return Some(DisconnectKind::Transport);
        }
        source = error.source();
    }
    None
}
