//! Cuts of live streams, asked for from outside the driver ([`CutRequest`]): carried out on the
//! path the driver's drawn cuts take — what the stream sent is delivered and lingered over
//! ([`super::settle`]), then the stream ends with the status, is reset, or lets go of its share
//! of its connection's cut.
//!
//! A stream without drawn faults still has to be cuttable, and such streams are most of a busy
//! server's: [`Cuttable`] passes their messages through untouched, checking for a cut on each
//! poll (one atomic load when there is none).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use futures::stream::BoxStream;
use tonic::Status;

use super::{CutRequest, DriverTargets, reset, settle};
use crate::chaos::FaultKind;

type Messages<T> = BoxStream<'static, Result<T, Status>>;

/// Carries out `cut` on a stream that has sent `sent` messages: the status to end it with, or
/// for a reset or a connection cut, never (the stream ends when its transport does).
pub(super) async fn cut_live<T>(
    cut: CutRequest,
    linger: Duration,
    targets: &DriverTargets,
    sent: u64,
    messages: &mut Messages<T>,
) -> Status {
    settle(linger, targets, sent, messages).await;
    match cut {
        CutRequest::Status(status) => {
            targets.inject(FaultKind::Fail, Some(status.code())).await;
            return status;
        }
        CutRequest::Reset(reason) => {
            targets.inject(FaultKind::ResetStream, None).await;
            reset(targets, reason, sent);
        }
        CutRequest::Connection(share) => {
            targets.inject(share.kind(), None).await;
            // This stream has settled; the last one to let go cuts the connection.
            drop(share);
        }
    }
    std::future::pending().await
}

/// A stream without drawn faults: its messages pass through until a cut is asked for, then the
/// cut is carried out.
pub(super) struct Cuttable<T> {
    state: State<T>,
}

enum State<T> {
    Passing { messages: Messages<T>, targets: DriverTargets, linger: Duration, sent: u64 },
    Cutting(Messages<T>),
}

impl<T: Send + 'static> Cuttable<T> {
    pub(super) fn new(messages: Messages<T>, targets: DriverTargets, linger: Duration) -> Self {
        Self { state: State::Passing { messages, targets, linger, sent: 0 } }
    }

    /// From passing messages to carrying out `cut`.
    fn start_cut(&mut self, cut: CutRequest) {
        let cutting = State::Cutting(Box::pin(futures::stream::empty()));
        let State::Passing { mut messages, targets, linger, sent } =
            std::mem::replace(&mut self.state, cutting)
        else {
            return;
        };
        let cutting =
            futures::stream::once(
                async move { Err(cut_live(cut, linger, &targets, sent, &mut messages).await) },
            );
        self.state = State::Cutting(Box::pin(cutting));
    }
}

impl<T: Send + 'static> Stream for Cuttable<T> {
    type Item = Result<T, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let cut = match &mut self.state {
            State::Cutting(cutting) => return cutting.as_mut().poll_next(cx),
            // A cut asked for comes first. A message ready goes out without registering for a
            // cut (the caller polls again after it, and the cut is looked for then); only a
            // stream about to wait registers its waker for one.
            State::Passing { messages, targets, sent, .. } => match targets.control.take_cut() {
                Some(cut) => cut,
                None => match messages.as_mut().poll_next(cx) {
                    Poll::Ready(item) => {
                        *sent += u64::from(matches!(item, Some(Ok(_))));
                        return Poll::Ready(item);
                    }
                    Poll::Pending => std::task::ready!(targets.control.poll_cut(cx)),
                },
            },
        };
        self.start_cut(cut);
        self.poll_next(cx)
    }
}
