//! Injecting a stream's drawn faults while it runs: latency before messages, paced sends,
//! a status part-way, disconnects (RST_STREAM, GOAWAY, TCP reset, stall, blackhole), message
//! caps and stream timeouts. Each injected fault is counted in the engine's [`FaultTally`].

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use async_stream::try_stream;
use bytes::Bytes;
use futures::StreamExt;
use futures::task::AtomicWaker;
use governor::{Quota, RateLimiter};
use http_body::{Body, Frame};
use tokio::time::Instant;
use tonic::{Code, Status};

use super::decide::{StreamFaults, Trigger};
use super::plan::DisconnectMode;
use super::tally::{FaultKind, FaultTally};
use crate::server::accept::sleep_until;
use crate::server::call::OutboundStream;
use crate::server::connection::{ConnectionCommand, ConnectionContext, ConnectionRegistry};
use crate::server::streams::LiveStream;

/// How long a blackholed connection is held before it is reset (the peer has long given up).
const BLACKHOLE_HOLD: Duration = Duration::from_secs(120);

/// Lets the fault injector reset its stream at the HTTP/2 level (RST_STREAM), which a status
/// cannot express: the response body checks it on every poll.
#[derive(Debug, Default)]
pub struct StreamControl {
    reset: Mutex<Option<h2::Reason>>,
    waker: AtomicWaker,
}

impl StreamControl {
    /// Makes the response body fail with `reason`, so the server sends RST_STREAM.
    pub fn reset(&self, reason: h2::Reason) {
        *self.reset.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        self.waker.wake();
    }

    fn pending_reset(&self) -> Option<h2::Reason> {
        *self.reset.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A response body that turns a [`StreamControl::reset`] into a stream reset.
pub struct ResettableBody<B> {
    inner: B,
    control: Arc<StreamControl>,
    /// Set once the reset has yielded to the connection, so messages already handed to HTTP/2
    /// are written before the reset discards its queue.
    flushing: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How long a reset waits for the connection to write what the stream already sent.
const RESET_FLUSH: Duration = Duration::from_millis(1);

impl<B> ResettableBody<B> {
    pub fn new(inner: B, control: Arc<StreamControl>) -> Self {
        Self { inner, control, flushing: None }
    }
}

impl<B> Body for ResettableBody<B>
where
    B: Body<Data = Bytes, Error = Status> + Unpin,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.control.waker.register(cx.waker());
        // What was sent before the reset goes out first.
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        match (frame, self.control.pending_reset()) {
            (Poll::Pending, Some(reason)) => {
                let flushing = self.flushing.get_or_insert_with(|| Box::pin(tokio::time::sleep(RESET_FLUSH)));
                std::task::ready!(flushing.as_mut().poll(cx));
                // hyper finds the h2 reason in the error's sources and resets with it.
                Poll::Ready(Some(Err(Status::from_error(Box::new(h2::Error::from(reason))))))
            }
            (frame, _) => frame,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.control.pending_reset().is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Where a stream's faults act beyond the stream itself.
pub struct FaultTargets {
    /// The stream the faults act on: its id, and the messages it has sent.
    pub stream: Arc<LiveStream>,
    pub control: Arc<StreamControl>,
    pub connection: ConnectionContext,
    pub registry: Arc<ConnectionRegistry>,
    pub tally: Arc<FaultTally>,
}

/// What woke the injector.
enum Event {
    Message(Option<Result<crate::proto::OutboundMessage, Status>>),
    Timeout,
    Fail,
    Disconnect,
}

/// `messages` with `faults` injected.
pub fn inject(messages: OutboundStream, mut faults: StreamFaults, targets: FaultTargets) -> OutboundStream {
    if faults.is_quiet() {
        return messages;
    }
    let opened = Instant::now();
    let at = |trigger: Option<Trigger>| match trigger {
        Some(Trigger::AfterElapsed(after)) => Some(opened + after),
        _ => None,
    };
    let deadline = faults.stream_timeout.map(|timeout| opened + timeout.after);
    let fail_at = at(faults.fail.as_ref().map(|(trigger, _)| *trigger));
    let disconnect_at = at(faults.disconnect.as_ref().map(|(trigger, _)| *trigger));
    let pacer = faults.messages_per_second.map(|rate| {
        RateLimiter::direct(Quota::per_second(std::num::NonZeroU32::new(rate.max(1)).expect("at least one")))
    });
    Box::pin(try_stream! {
        let mut messages = messages;
        let mut sent: u64 = 0;
        loop {
            if matches!(faults.fail, Some((Trigger::AfterMessages(count), _)) if count == sent) {
                Err(fail(&mut faults, &targets))?;
            }
            if matches!(faults.disconnect, Some((Trigger::AfterMessages(count), _)) if count == sent) {
                disconnect(&mut faults, &targets).await;
            }
            if let Some(cap) = faults.message_cap.filter(|cap| cap.max == sent) {
                let code = (cap.code != Code::Ok).then_some(cap.code);
                targets.tally.record(FaultKind::Cap, code, targets.stream.id);
                if cap.code != Code::Ok {
                    Err(Status::new(cap.code, format!("message cap of {} reached", cap.max)))?;
                }
                break;
            }
            let event = tokio::select! {
                next = messages.next() => Event::Message(next),
                _ = sleep_until(deadline), if deadline.is_some() => Event::Timeout,
                _ = sleep_until(fail_at), if fail_at.is_some() && faults.fail.is_some() => Event::Fail,
                _ = sleep_until(disconnect_at), if disconnect_at.is_some() && faults.disconnect.is_some() => Event::Disconnect,
            };
            let message = match event {
                Event::Message(None) => break,
                Event::Message(Some(message)) => message?,
                Event::Timeout => Err(timed_out(&faults, &targets))?,
                Event::Fail => Err(fail(&mut faults, &targets))?,
                Event::Disconnect => {
                    disconnect(&mut faults, &targets).await;
                    continue;
                }
            };
            let latency = if sent == 0 { faults.first_message_latency.as_ref().or(faults.per_message_latency.as_ref()) } else { faults.per_message_latency.as_ref() };
            if let Some(wait) = latency.map(|distribution| distribution.sample(&mut faults.rng)) {
                if deadline.is_some_and(|deadline| Instant::now() + wait >= deadline) {
                    tokio::time::sleep_until(deadline.expect("checked")).await;
                    Err(timed_out(&faults, &targets))?;
                }
                if !wait.is_zero() {
                    targets.tally.record_latency(wait, targets.stream.id);
                    tokio::time::sleep(wait).await;
                }
            }
            if let Some(pacer) = &pacer {
                pacer.until_ready().await;
            }
            yield message;
            sent += 1;
        }
    })
}

fn timed_out(faults: &StreamFaults, targets: &FaultTargets) -> Status {
    let timeout = faults.stream_timeout.expect("only called with a timeout");
    targets.tally.record(FaultKind::Timeout, Some(timeout.code), targets.stream.id);
    Status::new(timeout.code, format!("stream timeout of {} ms reached", timeout.after.as_millis()))
}

fn fail(faults: &mut StreamFaults, targets: &FaultTargets) -> Status {
    let (_, status) = faults.fail.take().expect("only called with a failure");
    targets.tally.record(FaultKind::Fail, Some(status.code()), targets.stream.id);
    status
}

/// Carries out the drawn disconnect. Returns only for GOAWAY with a grace period, under which
/// the stream carries on until the connection closes.
async fn disconnect(faults: &mut StreamFaults, targets: &FaultTargets) {
    let Some((_, mode)) = faults.disconnect.take() else { return };
    let connection = targets.connection.id;
    targets.tally.record(FaultKind::from(mode), None, targets.stream.id);
    match mode {
        DisconnectMode::ResetStream { h2_code } => {
            // Every message yielded so far has been encoded; some may still be queued in
            // HTTP/2, which a reset discards. The report counts those against what arrived.
            targets.tally.record_messages_before_reset(targets.stream.messages_sent.load(Ordering::Relaxed));
            targets.control.reset(h2::Reason::from(h2_code));
        }
        DisconnectMode::Goaway { grace: Some(grace) } => {
            targets.registry.command(connection, ConnectionCommand::GoAway { grace });
            return;
        }
        DisconnectMode::Goaway { grace: None } => {
            targets.registry.command(connection, ConnectionCommand::GoAway { grace: Duration::ZERO });
        }
        DisconnectMode::TcpReset => {
            targets.registry.command(connection, ConnectionCommand::Reset);
        }
        DisconnectMode::Blackhole => {
            targets.registry.command(connection, ConnectionCommand::Blackhole { hold: BLACKHOLE_HOLD });
        }
        DisconnectMode::Stall => {}
    }
    // The stream sends nothing more; it ends when the client or the connection gives up.
    std::future::pending::<()>().await;
}
