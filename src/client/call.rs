//! One call of any kind, composed from two halves instead of one loop per call pattern: an
//! outbound stream (one request for unary and server streaming; paced, reply-driven or
//! back-to-back messages for client and bidi streaming) and an inbound loop that measures
//! each reply and watches the stop conditions (the client's own limits, idle timeout, the
//! end of the run).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::Stream;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tracing::debug;

use super::codec::ReplyCodec;
use super::outcome::{CallEnd, failure};
use super::scenario::{Scenario, sequence, timestamp};
use super::stats::{Batch, Collector, DisconnectKind, Sample};
use crate::proto::status::MESSAGES_READ_METADATA;
use crate::proto::{CallKind, OutboundMessage};

/// What a slot keeps from one call to the next.
#[derive(Debug, Default)]
pub struct SlotState {
    /// The last sequence number seen, to count messages missed across a reconnect.
    pub last_sequence: Option<u64>,
    /// When the failure that the slot is recovering from happened.
    pub failed_at: Option<Instant>,
}

/// Everything one call needs.
pub struct CallSetup {
    pub scenario: Arc<Scenario>,
    pub channel: Channel,
    /// `{{stream.id}}`: the slot's number within the run.
    pub stream_id: u64,
    pub seed: u64,
    /// When the run started (ramps of the send rate count from here).
    pub run_started: Instant,
    /// Fires when the run ends and open calls are cut.
    pub cut: CancellationToken,
    /// Where the slot's batch goes, and into which shard.
    pub collector: Arc<Collector>,
    pub shard: usize,
}

/// How a call went.
#[derive(Debug)]
pub struct CallResult {
    pub end: CallEnd,
    pub received: u64,
}

/// What the outbound half has sent, shared with the reader that times replies and with the
/// end that counts the call.
#[derive(Debug, Default)]
struct SendLog {
    /// Send times not yet answered (bidi), or every send (client streaming reads the last).
    times: VecDeque<Instant>,
    sent: u64,
    /// Set when the call's end is counted. A message the outbound half makes after that is
    /// neither counted nor passed on: the report and the metric count the same messages.
    closed: bool,
}

type Sends = Arc<Mutex<SendLog>>;

fn lock(sends: &Sends) -> std::sync::MutexGuard<'_, SendLog> {
    sends.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs one call to its end, recording into `batch`.
pub async fn run_call(setup: CallSetup, state: &mut SlotState, batch: &mut Batch) -> CallResult {
    let scenario = setup.scenario.clone();
    let started = Instant::now();
    let stop_sending = CancellationToken::new();
    let _stop_on_return = stop_sending.clone().drop_guard();
    let sends = Sends::default();
    let replies = Arc::new(Semaphore::new(0));
    let outbound = outbound(&setup, sends.clone(), replies.clone(), stop_sending.clone());
    let mut grpc = tonic::client::Grpc::new(setup.channel.clone());
    let codec = ReplyCodec::new(scenario.response_type.clone());
    let spec = &scenario.spec;
    let far = started + Duration::from_secs(86_400 * 365);
    let lifetime_end = spec.stream_lifetime.map_or(far, |lifetime| started + lifetime);
    let idle = spec.idle_timeout.unwrap_or(Duration::from_secs(86_400 * 365));
    scenario.metrics.started.increment(1);
    batch.counts.calls_started += 1;

    // Boxed: opening needs far more state than the open stream, and a slot's task would
    // otherwise carry the larger of the two for as long as the stream stays open.
    let path = scenario.path.clone();
    let opening = Box::pin(async move {
        grpc.ready().await.map_err(|error| tonic::Status::from_error(Box::new(error)))?;
        grpc.streaming(tonic::Request::new(outbound), path, codec).await
    });
    let opened = tokio::select! {
        biased;
        opened = opening => opened,
        _ = setup.cut.cancelled() => return finish(&scenario, batch, started, &sends, CallEnd::RunEnded, 0, None),
        _ = sleep_until(started + idle) => return finish(&scenario, batch, started, &sends, idle_end(), 0, None),
        _ = sleep_until(lifetime_end) => return finish(&scenario, batch, started, &sends, CallEnd::ClientEnded, 0, None),
    };
    let mut inbound = match opened {
        Ok(response) => response.into_inner(),
        Err(status) => {
            let read = messages_read(status.metadata());
            return finish(&scenario, batch, started, &sends, failure(&status), 0, read);
        }
    };
    let mut read = None;
    let mut reader =
        ReplyReader { scenario: &scenario, started, previous: None, received: 0, sends: sends.clone() };
    // Made once per call, not per message: the idle timer is moved on only when it fires
    // early (a message arrived meanwhile), so a busy stream costs no timer work per message.
    let cut = setup.cut.cancelled();
    let lifetime = sleep_until(lifetime_end);
    let idle_timer = sleep_until(started + idle);
    tokio::pin!(cut, lifetime, idle_timer);
    let end = loop {
        tokio::select! {
            biased;
            message = inbound.message() => match message {
                Ok(Some(message)) => {
                    let now = Instant::now();
                    reader.on_message(message, now, state, batch);
                    setup.collector.flush_at(setup.shard, batch, now.into_std());
                    if scenario.kind == CallKind::BidiStreaming {
                        replies.add_permits(1);
                    }
                    let enough = spec.messages_per_stream.is_some_and(|limit| reader.received >= limit);
                    if enough && scenario.kind == CallKind::ServerStreaming {
                        break CallEnd::ClientEnded;
                    }
                }
                Ok(None) => {
                    read = inbound.trailers().await.ok().flatten().and_then(|trailers| messages_read(&trailers));
                    break CallEnd::Ok;
                }
                Err(status) => {
                    read = messages_read(status.metadata());
                    break failure(&status);
                }
            },
            _ = &mut cut => break CallEnd::RunEnded,
            _ = &mut idle_timer => {
                let idle_deadline = reader.previous.unwrap_or(started) + idle;
                if idle_deadline <= Instant::now() {
                    break idle_end();
                }
                idle_timer.as_mut().reset(idle_deadline);
            }
            _ = &mut lifetime => break CallEnd::ClientEnded,
        }
    };
    let received = reader.received;
    finish(&scenario, batch, started, &sends, end, received, read)
}

/// The count of messages the server read on the call, when its status carries one.
fn messages_read(metadata: &tonic::metadata::MetadataMap) -> Option<u64> {
    metadata.get(MESSAGES_READ_METADATA)?.to_str().ok()?.parse().ok()
}

fn idle_end() -> CallEnd {
    CallEnd::Failed { code: None, disconnect: Some(DisconnectKind::IdleTimeout) }
}

/// Counts the call's end; `read` is what the server says it read of the messages sent.
fn finish(
    scenario: &Scenario,
    batch: &mut Batch,
    started: Instant,
    sends: &Sends,
    end: CallEnd,
    received: u64,
    read: Option<u64>,
) -> CallResult {
    let sent = {
        let mut log = lock(sends);
        log.closed = true;
        log.sent
    };
    batch.counts.messages_sent += sent;
    let metrics = &scenario.metrics;
    if let Some(read) = read {
        let unread = sent.saturating_sub(read);
        batch.counts.messages_unread += unread;
        metrics.unread.increment(unread);
    }
    match end {
        CallEnd::Ok | CallEnd::ClientEnded => {
            batch.counts.calls_completed += 1;
            metrics.ended[0].increment(1);
        }
        CallEnd::Failed { code, disconnect } => {
            batch.counts.calls_failed += 1;
            if let Some(code) = code {
                batch.counts.errors[code as usize] += 1;
                if disconnect.is_none() {
                    batch.counts.status_errors[code as usize] += 1;
                }
                metrics.errors_by_code[code as usize].increment(1);
                metrics.ended[code as usize].increment(1);
            }
            if let Some(kind) = disconnect {
                if kind == DisconnectKind::Reset {
                    batch.counts.received_before_resets += received;
                }
                batch.counts.disconnects[kind as usize] += 1;
                metrics.errors_by_kind[kind as usize].increment(1);
            }
            debug!(method = scenario.method(), ?code, ?disconnect, "Call failed.");
        }
        CallEnd::RunEnded => batch.counts.calls_cut_at_end += 1,
    }
    if end != CallEnd::RunEnded {
        let duration = started.elapsed();
        batch.sample(Sample::StreamDuration, duration);
        metrics.stream_duration.record(duration.as_secs_f64());
    }
    CallResult { end, received }
}

/// Measures each reply of one call.
struct ReplyReader<'a> {
    scenario: &'a Scenario,
    started: Instant,
    previous: Option<Instant>,
    received: u64,
    sends: Sends,
}

impl ReplyReader<'_> {
    fn on_message(&mut self, reply: bytes::Bytes, now: Instant, state: &mut SlotState, batch: &mut Batch) {
        let metrics = &self.scenario.metrics;
        self.received += 1;
        batch.counts.messages_received += 1;
        metrics.received.increment(1);
        if self.received == 1 {
            let first = now - self.started;
            batch.sample(Sample::TimeToFirstMessage, first);
            metrics.time_to_first_message.record(first.as_secs_f64());
            if let Some(failed_at) = state.failed_at.take() {
                let recovery = now - failed_at;
                batch.sample(Sample::Recovery, recovery);
                metrics.recovery.record(recovery.as_secs_f64());
            }
        }
        let sent_at = match self.scenario.kind {
            CallKind::BidiStreaming => lock(&self.sends).times.pop_front(),
            CallKind::ClientStreaming => lock(&self.sends).times.back().copied(),
            _ => None,
        };
        let latency = match self.scenario.kind {
            CallKind::ServerStreaming => self.previous.map(|previous| now - previous),
            CallKind::Unary => Some(now - self.started),
            _ => sent_at.map(|sent_at| now.saturating_duration_since(sent_at)),
        };
        if let Some(latency) = latency {
            batch.sample(Sample::Latency, latency);
            metrics.latency.record(latency.as_secs_f64());
        }
        self.previous = Some(now);
        if self.scenario.timestamp_field.is_none() && self.scenario.sequence_field.is_none() {
            return;
        }
        let message = match prost_reflect::DynamicMessage::decode(self.scenario.response_type.clone(), reply)
        {
            Ok(message) => message,
            Err(error) => {
                debug!(%error, "A reply did not decode; its fields are not read.");
                return;
            }
        };
        let message = &message;
        if let Some(field) = &self.scenario.timestamp_field {
            let age = timestamp(message, field).and_then(|at| SystemTime::now().duration_since(at).ok());
            if let Some(age) = age {
                batch.sample(Sample::Age, age);
                metrics.age.record(age.as_secs_f64());
            }
        }
        if let Some(field) = &self.scenario.sequence_field {
            if let Some(number) = sequence(message, field) {
                if let Some(last) = state.last_sequence.filter(|last| number > last + 1) {
                    let missed = number - last - 1;
                    batch.counts.missed_messages += missed;
                    metrics.missed.increment(missed);
                }
                state.last_sequence = Some(number);
            }
        }
    }
}

/// The call's outbound messages: one request, or a stream paced by the send rate, by the
/// replies (bidi without a rate) or back to back (client streaming without a rate).
fn outbound(
    setup: &CallSetup,
    sends: Sends,
    replies: Arc<Semaphore>,
    stop: CancellationToken,
) -> impl Stream<Item = OutboundMessage> + Send + 'static {
    let scenario = setup.scenario.clone();
    let (stream_id, run_started) = (setup.stream_id, setup.run_started);
    let mut rng = StdRng::seed_from_u64(setup.seed);
    async_stream::stream! {
        let spec = &scenario.spec;
        let many = scenario.kind.client_streams();
        let limit = if many { spec.messages_per_stream.unwrap_or(u64::MAX) } else { 1 };
        let mut intended = Instant::now();
        let mut count = 0u64;
        while count < limit {
            if count > 0 {
                if let Some(rate) = spec.send_rate {
                    let elapsed = intended.saturating_duration_since(run_started);
                    let per_second = rate.ramp.map_or(rate.per_second, |ramp| ramp.value_at(rate.per_second, elapsed));
                    intended += Duration::from_secs_f64(1.0 / per_second.max(0.001));
                    tokio::select! {
                        _ = sleep_until(intended) => {}
                        _ = stop.cancelled() => break,
                    }
                } else if scenario.kind == CallKind::BidiStreaming {
                    tokio::select! {
                        permit = replies.acquire() => match permit {
                            Ok(permit) => permit.forget(),
                            Err(_) => break,
                        },
                        _ = stop.cancelled() => break,
                    }
                    intended = Instant::now();
                } else {
                    tokio::task::yield_now().await;
                    if stop.is_cancelled() {
                        break;
                    }
                    intended = Instant::now();
                }
            }
            let message = match scenario.request(stream_id, &mut rng) {
                Ok(message) => message,
                Err(error) => {
                    debug!(%error, "A request template did not render; the stream stops sending.");
                    break;
                }
            };
            // Latency counts from the intended send time, so a late send (coordinated
            // omission) shows up as latency rather than disappearing.
            {
                let mut log = lock(&sends);
                if log.closed {
                    break;
                }
                log.times.push_back(intended);
                log.sent += 1;
                // Under the lock, so the count the call ends with includes it.
                scenario.metrics.sent.increment(1);
            }
            count += 1;
            yield message;
        }
    }
}
