//! The driver's handle on its stream's transport: a request to reset the stream at the HTTP/2
//! level (RST_STREAM), which a status cannot express. The server's response body checks it on
//! every poll and fails with the reason, so HTTP/2 resets the stream.

use std::sync::Mutex;

use futures::task::AtomicWaker;

/// A stream's pending reset, set by the driver and carried out by the response body.
#[derive(Debug, Default)]
pub struct StreamControl {
    reset: Mutex<Option<h2::Reason>>,
    waker: AtomicWaker,
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

    /// Wakes `waker` when a reset is asked for.
    pub fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }
}
