//! The driver's handle on its stream's transport, and the way in for cuts asked for from
//! outside the driver:
//!
//! - a request to reset the stream at the HTTP/2 level (RST_STREAM), which a status cannot
//!   express: the server's response body checks it on every poll and fails with the reason, so
//!   HTTP/2 resets the stream;
//! - a [`CutRequest`] for a live stream (a phase's `on_enter`, `POST /admin/disconnect`): the
//!   driver checks it on every poll of the stream and carries it out on the same exact path as
//!   its drawn cuts (what was sent first is delivered, then the cut).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use std::sync::OnceLock;
use tonic::{Code, Status};

use super::{ConnectionControl, ConnectionCut};
use crate::chaos::FaultKind;

/// A stream's pending reset and cut, set from outside and carried out by the response body
/// (reset) and the driver (cut).
#[derive(Debug, Default)]
pub struct StreamControl {
    reset: Mutex<Option<h2::Reason>>,
    waker: AtomicWaker,
    /// Set once a cut has been asked for: a stream is cut at most once.
    cut_asked: AtomicBool,
    cut: Mutex<Option<CutRequest>>,
    cut_waker: AtomicWaker,
    /// The first fault injected that ends the stream, with the status it carried.
    ended_by: OnceLock<(FaultKind, Option<Code>, std::time::Instant)>,
}

/// A cut of a live stream, asked for from outside the driver.
#[derive(Debug)]
pub enum CutRequest {
    /// End the stream with this status.
    Status(Status),
    /// Reset the stream (RST_STREAM) with this reason.
    Reset(h2::Reason),
    /// The stream's connection is being cut: the stream lets go of its share once what it sent
    /// has been delivered, and the connection is cut when every stream on it has let go.
    Connection(ConnectionCutShare),
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
            let _ = self.ended_by.set((kind, code, std::time::Instant::now()));
        }
    }

    /// The fault that ended the stream, if one was injected.
    pub fn ended_by(&self) -> Option<(FaultKind, Option<Code>)> {
        self.ended_by.get().map(|(kind, code, _)| (*kind, *code))
    }

    /// When the stream ended for its client, if a fault ended it at once: the stream itself
    /// may be dropped a moment later, once its connection's task lets go of it. A stall or a
    /// blackhole ends nothing until the client gives up.
    pub fn cut_at(&self) -> Option<std::time::Instant> {
        self.ended_by
            .get()
            .filter(|(kind, _, _)| !matches!(kind, FaultKind::Stall | FaultKind::Blackhole))
            .map(|(_, _, at)| *at)
    }

    /// Wakes `waker` when a reset is asked for.
    pub fn register(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Asks the driver to cut the stream; false (and `cut` dropped) when a cut was already
    /// asked for.
    pub fn request_cut(&self, cut: CutRequest) -> bool {
        if self.cut_asked.swap(true, Ordering::AcqRel) {
            return false;
        }
        *self.cut.lock().unwrap_or_else(|p| p.into_inner()) = Some(cut);
        self.cut_waker.wake();
        true
    }

    /// The cut asked for, taken (so it is carried out once); ready when there is one. One
    /// atomic load on the usual path, where no cut was asked for.
    pub fn poll_cut(&self, cx: &mut Context<'_>) -> Poll<CutRequest> {
        if !self.cut_asked.load(Ordering::Acquire) {
            self.cut_waker.register(cx.waker());
            if !self.cut_asked.load(Ordering::Acquire) {
                return Poll::Pending;
            }
        }
        match self.take_cut() {
            Some(cut) => Poll::Ready(cut),
            // Taken already (or being stored): nothing more will come.
            None => {
                self.cut_waker.register(cx.waker());
                Poll::Pending
            }
        }
    }

    /// The cut asked for, taken, without waiting for one.
    pub fn take_cut(&self) -> Option<CutRequest> {
        if !self.cut_asked.load(Ordering::Acquire) {
            return None;
        }
        self.cut.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Resolves with the cut once one is asked for.
    pub async fn cut_requested(&self) -> CutRequest {
        std::future::poll_fn(|cx| self.poll_cut(cx)).await
    }
}

/// One cut of one connection, carried out once: when every stream on it has settled (released
/// its [`ConnectionCutShare`]) or [`ConnectionCutOnce::cut_now`] is called, whichever is first.
pub struct ConnectionCutOnce {
    connection: Arc<dyn ConnectionControl>,
    cut: ConnectionCut,
    /// The fault kind each stream records for it.
    kind: FaultKind,
    shares: AtomicUsize,
    done: AtomicBool,
}

impl std::fmt::Debug for ConnectionCutOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionCutOnce").field("cut", &self.cut).finish_non_exhaustive()
    }
}

impl ConnectionCutOnce {
    pub fn new(connection: Arc<dyn ConnectionControl>, cut: ConnectionCut, kind: FaultKind) -> Arc<Self> {
        Arc::new(Self { connection, cut, kind, shares: AtomicUsize::new(0), done: AtomicBool::new(false) })
    }

    /// A share for one stream. Hold one yourself while handing them out, or the first stream
    /// to settle would cut the connection under the others.
    pub fn share(self: &Arc<Self>) -> ConnectionCutShare {
        self.shares.fetch_add(1, Ordering::AcqRel);
        ConnectionCutShare { cut: self.clone() }
    }

    /// Cuts the connection now, unless it was cut already.
    pub fn cut_now(&self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            self.connection.cut(self.cut);
        }
    }
}

/// A stream's part in a connection cut: dropping it says the stream has settled.
#[derive(Debug)]
pub struct ConnectionCutShare {
    cut: Arc<ConnectionCutOnce>,
}

impl ConnectionCutShare {
    /// The fault kind of the connection cut.
    pub fn kind(&self) -> FaultKind {
        self.cut.kind
    }
}

impl Drop for ConnectionCutShare {
    fn drop(&mut self) {
        if self.cut.shares.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.cut.cut_now();
        }
    }
}
