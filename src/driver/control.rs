//! The driver's handle on its stream's transport: a request to reset the stream at the HTTP/2
//! level (RST_STREAM), which a status cannot express. The server's response body checks it on
//! every poll and fails with the reason, so HTTP/2 resets the stream. It also notes the fault
//! that ended the stream, for the server to say how the call ended.

use std::sync::{Mutex, OnceLock};

use futures::task::AtomicWaker;
use tonic::Code;

use crate::chaos::FaultKind;

/// A stream's pending reset, set by the driver and carried out by the response body.
#[derive(Debug, Default)]
pub struct StreamControl {
    reset: Mutex<Option<h2::Reason>>,
    waker: AtomicWaker,
    /// The first fault injected that ends the stream, with the status it carried.
    ended_by: OnceLock<(FaultKind, Option<Code>)>,
}

impl StreamControl {
    /// Asks for the stream to be reset with `reason`.
    pub fn reset(&self, reason: h2::Reason) {
        *self.reset.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        self.waker.wake();
    }

    /// The reset asked for, if any.
    pub fn pending_reset(&self) -> Option<h2::Reason> {
        *self.reset.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a fault injected on the stream; the first that can end it is kept.
    pub fn note_fault(&self, kind: FaultKind, code: Option<Code>) {
        if kind != FaultKind::Latency {
            let _ = self.ended_by.set((kind, code));
        }
    }

    /// The fault that ended the stream, if one was injected.
    pub fn ended_by(&self) -> Option<(FaultKind, Option<Code>)> {
        self.ended_by.get().copied()
    }

    /// Wakes `waker` when a reset is asked for.
    pub fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }
}
