//! Live streams: each open stream's counters (messages and bytes each way, age, connection, the
//! faults drawn for it), the registry listing them (for `GET /streams` and per-stream series),
//! and the per-method metric handles recorded as streams start, carry messages and end.
//!
//! Handles are registered once per method when the server starts, so the hot path is a few
//! atomic adds; no label is formatted per message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use metrics::{Counter, Gauge, Histogram};
use tonic::{Code, Status};

use super::connection::{ConnectionContext, ConnectionId};
use crate::chaos::decide::FaultSummary;
use crate::chaos::{FaultTally, StreamFaults};
use crate::driver::StreamControl;
use crate::judge::{CallArrival, Ending, Judge, JudgedCall, RequestProbe, method_name};
use crate::proto::OutboundMessage;
use crate::proto::codec::WireMeter;
use crate::proto::status::{CODE_COUNT, code_name};
use crate::proto::{MethodCatalog, MethodEntry};
use crate::telemetry::hot::{self, Direction, MessageSeries};
use crate::telemetry::names;

/// Live streams are spread over this many locks so stream starts on different cores rarely
/// contend.
const SHARDS: usize = 32;

/// Methods outside the catalog (those the proxy relays without protos) that get series of
/// their own; the rest share the `other` series, so a client inventing paths cannot grow
/// `/metrics` without bound.
const MAX_UNCATALOGUED_METHODS: usize = 256;

/// One lock's share of the live streams.
type Shard = Mutex<HashMap<u64, Arc<LiveStream>>>;

/// Metric handles for one method.
struct MethodMetrics {
    service: String,
    method: String,
    kind: &'static str,
    active: Gauge,
    started: Counter,
    /// `streams_ended_total` by code, registered when a code is first seen.
    ended: [OnceLock<Counter>; CODE_COUNT],
    /// Messages each way, counted and sized.
    sent: Arc<MessageSeries>,
    received: Arc<MessageSeries>,
    duration: Histogram,
    stream_messages_sent: Histogram,
    stream_messages_received: Histogram,
    stream_bytes_sent: Histogram,
    stream_bytes_received: Histogram,
}

impl MethodMetrics {
    fn new(entry: &MethodEntry) -> Self {
        Self::labelled(entry.service.clone(), entry.method.clone(), entry.kind_label())
    }

    fn labelled(service: String, method: String, kind: &'static str) -> Self {
        let with_kind = [("service", service.clone()), ("method", method.clone()), ("kind", kind.to_owned())];
        let directed = |direction: &'static str| {
            [("service", service.clone()), ("method", method.clone()), ("direction", direction.to_owned())]
        };
        Self {
            active: metrics::gauge!(names::STREAMS_ACTIVE, &with_kind),
            started: metrics::counter!(names::STREAMS_STARTED, &with_kind),
            ended: std::array::from_fn(|_| OnceLock::new()),
            sent: hot::series(&service, &method, Direction::Sent),
            received: hot::series(&service, &method, Direction::Received),
            duration: metrics::histogram!(names::STREAM_DURATION, &with_kind),
            stream_messages_sent: metrics::histogram!(names::STREAM_MESSAGES, &directed("sent")),
            stream_messages_received: metrics::histogram!(names::STREAM_MESSAGES, &directed("received")),
            stream_bytes_sent: metrics::histogram!(names::STREAM_BYTES, &directed("sent")),
            stream_bytes_received: metrics::histogram!(names::STREAM_BYTES, &directed("received")),
            service,
            method,
            kind,
        }
    }

    fn ended(&self, code: Code) -> &Counter {
        self.ended[code as usize].get_or_init(|| {
            metrics::counter!(
                names::STREAMS_ENDED,
                "service" => self.service.clone(),
                "method" => self.method.clone(),
                "kind" => self.kind,
                "code" => code_name(code),
            )
        })
    }
}

/// One open stream.
pub struct LiveStream {
    /// Server-wide stream number, unique for the life of the process.
    pub id: u64,
    pub method: Arc<MethodEntry>,
    pub connection: ConnectionId,
    pub opened: Instant,
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Whether this stream has series of its own on `/metrics`.
    pub detailed: bool,
    /// Where a live cut of the stream is asked for (see [`super::live_cut`]).
    pub control: Arc<StreamControl>,
    /// The faults drawn for the stream at its start; boxed, and only when there are any, so a
    /// stream without faults pays one pointer for them.
    faults: OnceLock<Box<FaultSummary>>,
    metrics: Arc<MethodMetrics>,
}

impl LiveStream {
    /// Records the faults drawn for the stream, for `/streams`.
    pub fn set_faults(&self, faults: FaultSummary) {
        if faults != FaultSummary::default() {
            let _ = self.faults.set(Box::new(faults));
        }
    }

    pub fn faults(&self) -> FaultSummary {
        self.faults.get().map(|faults| **faults).unwrap_or_default()
    }
}

impl WireMeter for LiveStream {
    fn sent(&self, bytes: usize) {
        self.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
        self.metrics.sent.record(bytes);
    }

    fn received(&self, bytes: usize) {
        self.messages_received.fetch_add(1, Ordering::Relaxed);
        self.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
        self.metrics.received.record(bytes);
    }
}

/// Every open stream, by id, with server-wide counts.
pub struct StreamRegistry {
    shards: Box<[Shard]>,
    methods: HashMap<String, Arc<MethodMetrics>>,
    /// Series of methods outside the catalog, registered as they are first seen.
    uncatalogued: Mutex<HashMap<String, Arc<MethodMetrics>>>,
    /// The series shared by uncatalogued methods beyond [`MAX_UNCATALOGUED_METHODS`].
    other: OnceLock<Arc<MethodMetrics>>,
    started: AtomicU64,
    active: AtomicUsize,
    /// Woken when the last open stream ends.
    idle: tokio::sync::Notify,
    /// Messages carried by streams that have ended, each way: added once per stream as it ends,
    /// so the hot path shares no counter across cores.
    ended_messages_sent: AtomicU64,
    ended_messages_received: AtomicU64,
    /// Streams with series of their own, at most `max_detailed` at once.
    detailed: AtomicUsize,
    max_detailed: usize,
}

impl StreamRegistry {
    /// Registers the metric handles of every method in `catalog`; up to `max_detailed` live
    /// streams get series of their own.
    pub fn new(catalog: &MethodCatalog, max_detailed: usize) -> Self {
        let methods = catalog
            .methods()
            .map(|entry| (entry.path.clone(), Arc::new(MethodMetrics::new(entry))))
            .collect();
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            methods,
            uncatalogued: Mutex::default(),
            other: OnceLock::new(),
            started: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
            ended_messages_sent: AtomicU64::new(0),
            ended_messages_received: AtomicU64::new(0),
            detailed: AtomicUsize::new(0),
            max_detailed,
        }
    }

    /// Opens a stream of `method` on `connection`, cut through `control`; it stays listed until
    /// the guard is dropped.
    pub fn open(
        self: &Arc<Self>,
        method: Arc<MethodEntry>,
        connection: &ConnectionContext,
        control: Arc<StreamControl>,
    ) -> StreamGuard {
        let id = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        let metrics = match self.methods.get(&method.path) {
            Some(metrics) => metrics.clone(),
            None => self.uncatalogued_metrics(&method),
        };
        metrics.started.increment(1);
        metrics.active.increment(1.0);
        self.active.fetch_add(1, Ordering::Relaxed);
        connection.stats.streams_opened.fetch_add(1, Ordering::Relaxed);
        connection.stats.streams_active.fetch_add(1, Ordering::Relaxed);
        let detailed = self.max_detailed > 0
            && self
                .detailed
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < self.max_detailed).then_some(n + 1)
                })
                .is_ok();
        let stream = Arc::new(LiveStream {
            id,
            method,
            connection: connection.id,
            opened: Instant::now(),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            detailed,
            control,
            faults: OnceLock::new(),
            metrics,
        });
        self.shard(id).insert(id, stream.clone());
        StreamGuard {
            stream,
            registry: self.clone(),
            connection: connection.clone(),
            outcome: None,
            judged: None,
        }
    }

    /// The series of a method outside the catalog: its own for the first few hundred such
    /// methods, then the shared `other` series.
    fn uncatalogued_metrics(&self, method: &MethodEntry) -> Arc<MethodMetrics> {
        let mut known = self.uncatalogued.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(metrics) = known.get(&method.path) {
            return metrics.clone();
        }
        if known.len() >= MAX_UNCATALOGUED_METHODS {
            let other = || Arc::new(MethodMetrics::labelled("other".into(), "other".into(), "unknown"));
            return self.other.get_or_init(other).clone();
        }
        let metrics = Arc::new(MethodMetrics::new(method));
        known.insert(method.path.clone(), metrics.clone());
        metrics
    }

    /// Opens the stream of a call to `method` arriving on `connection` with `headers`: listed
    /// here, followed by `judge`, cuttable through a control of its own.
    pub fn open_call(
        self: &Arc<Self>,
        judge: &Arc<Judge>,
        method: Arc<MethodEntry>,
        connection: &ConnectionContext,
        headers: &http::HeaderMap,
    ) -> StreamGuard {
        let call = judge.call_started(CallArrival {
            connection: connection.id.0,
            peer: connection.peer,
            headers,
            method: method_name(&method.path),
        });
        let mut stream = self.open(method, connection, Arc::new(StreamControl::default()));
        stream.judge(call);
        stream
    }

    fn shard(&self, id: u64) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<LiveStream>>> {
        self.shards[id as usize % SHARDS].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Streams started since the server began.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Streams open now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Waits until no stream is open.
    pub async fn until_idle(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.active() == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Messages (sent, received) carried by the streams that have ended.
    pub fn ended_messages(&self) -> (u64, u64) {
        (
            self.ended_messages_sent.load(Ordering::Relaxed),
            self.ended_messages_received.load(Ordering::Relaxed),
        )
    }

    /// Open streams, oldest first; with `detailed_only`, only those with series of their own.
    pub fn list(&self, detailed_only: bool) -> Vec<Arc<LiveStream>> {
        let mut streams: Vec<_> = self
            .shards
            .iter()
            .flat_map(|shard| {
                let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
                shard.values().filter(|stream| stream.detailed || !detailed_only).cloned().collect::<Vec<_>>()
            })
            .collect();
        streams.sort_unstable_by_key(|stream| stream.id);
        streams
    }
}

/// Keeps a stream listed while it runs; records how it ended when dropped. A stream dropped
/// without [`StreamGuard::finish`] ended without a status: the client cancelled, the stream was
/// reset, or its connection was lost — counted as `CANCELLED`.
pub struct StreamGuard {
    stream: Arc<LiveStream>,
    registry: Arc<StreamRegistry>,
    connection: ConnectionContext,
    outcome: Option<Code>,
    /// The judge's view of the call, told how it ended when the stream does.
    judged: Option<JudgedCall>,
}

impl StreamGuard {
    pub fn stream(&self) -> &Arc<LiveStream> {
        &self.stream
    }

    /// Has the judge follow the call; the stream's control notes the fault that ends it.
    pub fn judge(&mut self, call: JudgedCall) {
        self.judged = Some(call);
    }

    /// Reads the resume position of the call's first request, when its method has one.
    pub fn request_probe(&self) -> Option<RequestProbe> {
        self.judged.as_ref().and_then(JudgedCall::request_probe)
    }

    /// Keeps the faults drawn for the stream (for `/streams`); a drawn abort ends the stream
    /// at once: it is counted, noted as what ended the stream, and returned.
    pub fn drawn(&mut self, faults: &mut StreamFaults, tally: &FaultTally) -> Option<Status> {
        self.stream.set_faults(faults.summary());
        let (kind, abort) = faults.abort.take()?;
        tally.record(kind, Some(abort.code()), self.stream.id);
        self.stream.control.note_fault(kind, Some(abort.code()));
        self.finish(&abort);
        Some(abort)
    }

    /// A message is on its way to the client.
    pub fn delivering(&mut self, message: &OutboundMessage) {
        if let Some(judged) = &mut self.judged {
            judged.delivering(message);
        }
    }

    /// Records the status the stream ended with (`OK` when it completed).
    pub fn finish(&mut self, status: &Status) {
        if self.outcome.is_none() {
            self.outcome = Some(status.code());
            if let Some(judged) = &mut self.judged {
                judged.status(status);
            }
        }
    }

    /// How the call ended: the fault injected, else its status, else a cancel.
    fn ending(&self) -> Ending {
        match (self.stream.control.ended_by(), self.outcome) {
            (Some((kind, code)), _) => Ending::Fault(kind, code),
            (None, Some(Code::Ok)) => Ending::Ok,
            (None, Some(code)) => Ending::Error(code),
            (None, None) => Ending::Cancelled,
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let stream = &self.stream;
        let metrics = &stream.metrics;
        metrics.ended(self.outcome.unwrap_or(Code::Cancelled)).increment(1);
        metrics.active.decrement(1.0);
        metrics.duration.record(stream.opened.elapsed().as_secs_f64());
        let (sent, received) =
            (stream.messages_sent.load(Ordering::Relaxed), stream.messages_received.load(Ordering::Relaxed));
        metrics.stream_messages_sent.record(sent as f64);
        metrics.stream_messages_received.record(received as f64);
        self.registry.ended_messages_sent.fetch_add(sent, Ordering::Relaxed);
        self.registry.ended_messages_received.fetch_add(received, Ordering::Relaxed);
        metrics.stream_bytes_sent.record(stream.bytes_sent.load(Ordering::Relaxed) as f64);
        metrics.stream_bytes_received.record(stream.bytes_received.load(Ordering::Relaxed) as f64);
        self.registry.shard(stream.id).remove(&stream.id);
        if stream.detailed {
            self.registry.detailed.fetch_sub(1, Ordering::Relaxed);
        }
        if self.registry.active.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.registry.idle.notify_waiters();
        }
        self.connection.stats.streams_active.fetch_sub(1, Ordering::Relaxed);
        if let Some(judged) = self.judged.take() {
            judged.end(self.ending(), sent, self.stream.control.cut_at());
        }
    }
}
