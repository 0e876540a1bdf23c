//! The stream driver: carries out one stream's drawn faults ([`StreamFaults`]) on any outbound
//! stream — the mock responder's messages today, a relayed upstream's tomorrow. It delays
//! messages on an absolute schedule ([`schedule`]), ends the stream with a status part-way, at
//! its message cap or at its timeout, and cuts it (RST_STREAM, GOAWAY, TCP reset, stall,
//! blackhole) after exactly the drawn number of messages.
//!
//! A cut is only exact if the messages before it reach the client application: HTTP/2 discards
//! what is still queued for a stream it resets, a TCP reset discards what the peer's kernel has
//! not handed to the client, and client libraries (grpc-core among them) drop messages they
//! have parsed but not yet given to the application when the stream is reset. So before a cut
//! the driver waits for the connection to report the bytes delivered
//! ([`ConnectionControl::delivered`]), then lingers ([`StreamFaults::cut_linger`]) for the
//! application to read them. A linger of zero skips both: the raw race.
//!
//! The driver decides nothing (that is [`crate::chaos`]) and knows no server type: it reaches
//! its transport through [`StreamControl`] and [`ConnectionControl`].

pub mod control;
pub mod inbound;
mod live;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use async_stream::try_stream;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use tokio::time::Instant;
use tonic::{Code, Status};

pub use control::{ConnectionCutOnce, ConnectionCutShare, CutRequest, StreamControl};
pub use inbound::InboundDelays;
use live::{Cuttable, cut_live};
use schedule::Schedule;

use crate::chaos::plan::{DisconnectMode, UpstreamCut};
use crate::chaos::{FaultKind, FaultTally, StreamFaults, Trigger};

/// How long a blackholed connection is held before it is reset (the peer has long given up).
const BLACKHOLE_HOLD: Duration = Duration::from_secs(120);

/// A cut of the connection that carries a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionCut {
    /// GOAWAY, then close after `grace` whatever is still running (zero: at once).
    GoAway { grace: Duration },
    /// Close with a TCP RST.
    Reset,
    /// Stop reading, writing and answering pings; reset after `hold`.
    Blackhole { hold: Duration },
}

/// What the driver needs of the connection carrying its stream.
pub trait ConnectionControl: Send + Sync {
    /// Carries out `cut` on the connection.
    fn cut(&self, cut: ConnectionCut);

    /// Resolves once what the connection's streams have handed to HTTP/2 so far has reached the
    /// peer (or a bound has passed).
    fn delivered(&self) -> BoxFuture<'static, ()>;
}

/// What the driver needs of a proxied stream's connection to its upstream.
pub trait UpstreamControl: Send + Sync {
    /// Breaks the connection the stream's upstream call runs on; returns the status the
    /// client gets for it.
    fn cut(&self, cut: UpstreamCut) -> Status;
}

/// Where a stream's faults act, and where they are counted.
pub struct DriverTargets {
    pub stream_id: u64,
    pub control: Arc<StreamControl>,
    pub connection: Arc<dyn ConnectionControl>,
    /// The upstream connection of a proxied stream; `None` for the mock server's streams.
    pub upstream: Option<Arc<dyn UpstreamControl>>,
    pub tally: Arc<FaultTally>,
}

impl DriverTargets {
    /// Records a fault about to be injected on this stream: every fault the driver injects,
    /// drawn or asked for live, is recorded here and nowhere else. Once the run's books are
    /// closed the fault is not injected: this never returns, and the stream sends nothing more
    /// until the run's cut ends it.
    pub async fn inject(&self, kind: FaultKind, code: Option<Code>) {
        if !self.tally.admit(kind, code, self.stream_id) {
            std::future::pending::<()>().await;
        }
        self.control.note_fault(kind, code);
    }
}

/// What woke the driver.
enum Event<T> {
    Message(Option<Result<T, Status>>, Option<Instant>),
    Timeout,
    Fail,
    Disconnect,
    Upstream,
    Cut(CutRequest),
}

/// `messages` with `faults` carried out, and any cut asked for through the stream's control
/// (see [`StreamControl::request_cut`]). A stream without drawn faults goes through a thin
/// wrapper that only watches for such a cut.
pub fn drive<T: Send + 'static>(
    messages: BoxStream<'static, Result<T, Status>>,
    mut faults: StreamFaults,
    targets: DriverTargets,
) -> BoxStream<'static, Result<T, Status>> {
    if faults.is_quiet() {
        return Box::pin(Cuttable::new(messages, targets, faults.cut_linger));
    }
    let opened = Instant::now();
    let at = |trigger: Option<Trigger>| match trigger {
        Some(Trigger::AfterElapsed(after)) => Some(opened + after),
        _ => None,
    };
    let deadline = faults.stream_timeout.map(|timeout| opened + timeout.after);
    let fail_at = at(faults.fail.as_ref().map(|(trigger, _)| *trigger));
    let disconnect_at = at(faults.disconnect.as_ref().map(|(trigger, _)| *trigger));
    let upstream_at = at(faults.upstream.as_ref().map(|(trigger, _)| *trigger));
    let mut schedule = Schedule::new(
        opened,
        faults.first_message_latency.take(),
        faults.per_message_latency.take(),
        faults.messages_per_second,
    );
    Box::pin(try_stream! {
        let mut messages = messages;
        let mut sent: u64 = 0;
        let linger = faults.cut_linger;
        loop {
            if let Some(cut) = targets.control.take_cut() {
                Err(cut_live(cut, linger, &targets, sent, &mut messages).await)?;
            }
            if matches!(faults.fail, Some((Trigger::AfterMessages(count), _)) if count == sent) {
                settle(linger, &targets, sent, &mut messages).await;
                Err(fail(&mut faults, &targets).await)?;
            }
            if matches!(faults.disconnect, Some((Trigger::AfterMessages(count), _)) if count == sent) {
                disconnect(&mut faults, &targets, sent, &mut messages).await;
            }
            if matches!(faults.upstream, Some((Trigger::AfterMessages(count), _)) if count == sent) {
                if let Some(status) = cut_upstream(&mut faults, &targets, sent, &mut messages).await {
                    Err(status)?;
                }
            }
            if let Some(cap) = faults.message_cap.filter(|cap| cap.max == sent) {
                let code = (cap.code != Code::Ok).then_some(cap.code);
                if cap.code != Code::Ok {
                    settle(linger, &targets, sent, &mut messages).await;
                }
                targets.inject(FaultKind::Cap, code).await;
                if cap.code != Code::Ok {
                    Err(Status::new(cap.code, format!("message cap of {} reached", cap.max)))?;
                }
                break;
            }
            // A message ready at once is paced by the schedule alone; one the responder made
            // the driver wait for re-anchors the schedule on its arrival.
            let event = match messages.next().now_or_never() {
                Some(next) => Event::Message(next, None),
                None => tokio::select! {
                    next = messages.next() => Event::Message(next, Some(Instant::now())),
                    _ = sleep_until(deadline) => Event::Timeout,
                    _ = sleep_until(fail_at), if faults.fail.is_some() => Event::Fail,
                    _ = sleep_until(disconnect_at), if faults.disconnect.is_some() => Event::Disconnect,
                    _ = sleep_until(upstream_at), if faults.upstream.is_some() => Event::Upstream,
                    cut = targets.control.cut_requested() => Event::Cut(cut),
                },
            };
            let (message, arrived) = match event {
                Event::Message(None, _) => break,
                // The responder's own status goes out as any server's would.
                Event::Message(Some(message), arrived) => (message?, arrived),
                Event::Timeout => Err(timed_out(&faults, &targets).await)?,
                Event::Fail => {
                    settle(linger, &targets, sent, &mut messages).await;
                    Err(fail(&mut faults, &targets).await)?
                }
                Event::Cut(cut) => Err(cut_live(cut, linger, &targets, sent, &mut messages).await)?,
                Event::Disconnect => {
                    disconnect(&mut faults, &targets, sent, &mut messages).await;
                    continue;
                }
                Event::Upstream => match cut_upstream(&mut faults, &targets, sent, &mut messages).await {
                    Some(status) => Err(status)?,
                    None => continue,
                },
            };
            if let Some(schedule) = schedule.as_mut() {
                let due = schedule.next(arrived, &mut faults.rng);
                if deadline.is_some_and(|deadline| due.at >= deadline) {
                    sleep_until(deadline).await;
                    Err(timed_out(&faults, &targets).await)?;
                }
                if !due.delay.is_zero() {
                    targets.tally.record_latency(due.delay, targets.stream_id);
                }
                // A cut asked for meanwhile does not wait for the delayed message.
                let cut = tokio::select! {
                    _ = tokio::time::sleep_until(due.at) => None,
                    cut = targets.control.cut_requested() => Some(cut),
                };
                if let Some(cut) = cut {
                    Err(cut_live(cut, linger, &targets, sent, &mut messages).await)?;
                }
                let now = Instant::now();
                targets.tally.record_schedule_error(now.saturating_duration_since(due.at));
                schedule.sent(now);
            }
            yield message;
            sent += 1;
        }
    })
}

/// Sleeps until `when`, or forever when there is no deadline (a disabled `select!` timer).
pub async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

async fn timed_out(faults: &StreamFaults, targets: &DriverTargets) -> Status {
    let timeout = faults.stream_timeout.expect("only called with a timeout");
    targets.inject(FaultKind::Timeout, Some(timeout.code)).await;
    Status::new(timeout.code, format!("stream timeout of {} ms reached", timeout.after.as_millis()))
}

async fn fail(faults: &mut StreamFaults, targets: &DriverTargets) -> Status {
    let (_, status) = faults.fail.take().expect("only called with a failure");
    targets.inject(FaultKind::Fail, Some(status.code())).await;
    status
}

/// Lets the `sent` messages before an injected error end reach the client application: waits
/// for the connection to deliver them, then lingers. Client libraries hand a non-OK status to
/// the application as soon as it arrives, dropping messages not yet read (grpc-js does, even
/// for a status in trailers, which HTTP/2 delivers after the messages).
///
/// Meanwhile the responder keeps running, its messages discarded: it goes on reading what the
/// client sends, so a message sent during the wait is read and counted rather than lost to the
/// cut unseen.
async fn settle<T>(
    linger: Duration,
    targets: &DriverTargets,
    sent: u64,
    messages: &mut BoxStream<'static, Result<T, Status>>,
) {
    if sent == 0 || linger.is_zero() {
        return;
    }
    let wait = async {
        targets.connection.delivered().await;
        tokio::time::sleep(linger).await;
    };
    let discard = async {
        while messages.next().await.is_some() {}
        std::future::pending::<()>().await;
    };
    tokio::select! {
        _ = wait => {}
        _ = discard => {}
    }
}

/// Carries out the drawn disconnect once the `sent` messages before it have been delivered.
/// Returns only for GOAWAY with a grace period, under which the stream carries on until the
/// connection closes.
async fn disconnect<T>(
    faults: &mut StreamFaults,
    targets: &DriverTargets,
    sent: u64,
    messages: &mut BoxStream<'static, Result<T, Status>>,
) {
    let Some((_, mode)) = faults.disconnect.take() else { return };
    if discards_in_flight(mode) {
        settle(faults.cut_linger, targets, sent, messages).await;
    }
    targets.inject(FaultKind::from(mode), None).await;
    match mode {
        DisconnectMode::ResetStream { h2_code } => reset(targets, h2::Reason::from(h2_code), sent),
        DisconnectMode::Goaway { grace: Some(grace) } => {
            targets.connection.cut(ConnectionCut::GoAway { grace });
            return;
        }
        DisconnectMode::Stall => {}
        mode => targets.connection.cut(connection_cut(mode).expect("a connection-wide mode")),
    }
    // The stream sends nothing more; it ends when the client or the connection gives up.
    std::future::pending::<()>().await;
}

/// Breaks the proxied stream's upstream connection once the `sent` messages before it have
/// been delivered; the status the client gets for it. `None` for a stream with no upstream
/// (the mock server's), on which the fault has nothing to act.
async fn cut_upstream<T>(
    faults: &mut StreamFaults,
    targets: &DriverTargets,
    sent: u64,
    messages: &mut BoxStream<'static, Result<T, Status>>,
) -> Option<Status> {
    let (_, cut) = faults.upstream.take()?;
    let upstream = targets.upstream.as_ref()?;
    settle(faults.cut_linger, targets, sent, messages).await;
    targets.inject(FaultKind::Upstream, Some(Code::Unavailable)).await;
    Some(upstream.cut(cut))
}

/// Resets the stream after `sent` messages. With the raw race, messages still queued in HTTP/2
/// are discarded by the reset; the report counts those against what arrived.
fn reset(targets: &DriverTargets, reason: h2::Reason, sent: u64) {
    targets.tally.record_messages_before_reset(sent);
    targets.control.reset(reason);
}

/// The connection cut a disconnect mode makes, for the modes that act on the whole
/// connection (a GOAWAY without grace closes at once).
pub fn connection_cut(mode: DisconnectMode) -> Option<ConnectionCut> {
    match mode {
        DisconnectMode::Goaway { grace } => Some(ConnectionCut::GoAway { grace: grace.unwrap_or_default() }),
        DisconnectMode::TcpReset => Some(ConnectionCut::Reset),
        DisconnectMode::Blackhole => Some(ConnectionCut::Blackhole { hold: BLACKHOLE_HOLD }),
        DisconnectMode::ResetStream { .. } | DisconnectMode::Stall => None,
    }
}

/// Whether a cut can lose messages already sent: every mode but a stall (which keeps the
/// stream open) and a GOAWAY with grace (under which the stream carries on).
fn discards_in_flight(mode: DisconnectMode) -> bool {
    !matches!(mode, DisconnectMode::Stall | DisconnectMode::Goaway { grace: Some(_) })
}
