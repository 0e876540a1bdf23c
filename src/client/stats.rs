//! The load client's measurements, in the oha model: each stream slot gathers small records
//! (samples and counts) in a [`Batch`] and hands them to its shard now and then; a shard's
//! lock is taken once per batch, never per message, and shards are merged only when progress
//! or the report asks. Histograms are in microseconds.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// gRPC status codes 0..=16.
pub const CODES: usize = crate::proto::status::CODE_COUNT;

/// How a stream was cut off below gRPC, when it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectKind {
    /// HTTP/2 `RST_STREAM` on the stream.
    Reset,
    /// The connection was drained with `GOAWAY`.
    Goaway,
    /// The connection failed (TCP reset, refused, keepalive timeout).
    Transport,
    /// The stream went silent for longer than the scenario's `idle_timeout`.
    IdleTimeout,
}

impl DisconnectKind {
    pub const ALL: [DisconnectKind; 4] = [Self::Reset, Self::Goaway, Self::Transport, Self::IdleTimeout];

    /// The name used in metrics labels and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::Goaway => "goaway",
            Self::Transport => "transport",
            Self::IdleTimeout => "idle_timeout",
        }
    }
}

/// What a histogram sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// Per-message latency: bidi send → reply (from the intended send time), server
    /// streaming inter-arrival, unary and client streaming the reply's latency.
    Latency,
    TimeToFirstMessage,
    StreamDuration,
    /// From a failure to the next first message.
    Recovery,
    /// Now minus the message's timestamp field.
    Age,
    /// Backoff waited before a reconnect.
    Backoff,
}

pub const SAMPLES: usize = 6;

/// Counts a slot accumulates between flushes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub calls_started: u64,
    /// Calls that ended with OK or were ended by the client's own limits.
    pub calls_completed: u64,
    pub calls_failed: u64,
    /// Calls still open when the run ended (neither completed nor failed).
    pub calls_cut_at_end: u64,
    pub messages_sent: u64,
    pub messages_received: u64,
    pub reconnects: u64,
    pub given_up: u64,
    pub missed_messages: u64,
    /// Messages sent on calls the server ended before reading them (from the count of
    /// messages read that the server's status carries).
    pub messages_unread: u64,
    /// Replies received on calls that ended with an HTTP/2 reset.
    pub received_before_resets: u64,
    /// Failed calls by status code.
    pub errors: [u64; CODES],
    /// Failed calls by status code, only those with no disconnect under them: what the
    /// server's status faults (abort, fail, timeout, rate limit, caps) account for.
    pub status_errors: [u64; CODES],
    pub disconnects: [u64; 4],
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.calls_started += other.calls_started;
        self.calls_completed += other.calls_completed;
        self.calls_failed += other.calls_failed;
        self.calls_cut_at_end += other.calls_cut_at_end;
        self.messages_sent += other.messages_sent;
        self.messages_received += other.messages_received;
        self.reconnects += other.reconnects;
        self.given_up += other.given_up;
        self.missed_messages += other.missed_messages;
        self.messages_unread += other.messages_unread;
        self.received_before_resets += other.received_before_resets;
        for (sum, add) in self.errors.iter_mut().zip(other.errors) {
            *sum += add;
        }
        for (sum, add) in self.status_errors.iter_mut().zip(other.status_errors) {
            *sum += add;
        }
        for (sum, add) in self.disconnects.iter_mut().zip(other.disconnects) {
            *sum += add;
        }
    }
}

/// A histogram from 1 µs to one hour at three significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static histogram bounds are valid")
}

/// Microseconds, at least 1 and within the histogram's range.
pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).clamp(1, 3_600_000_000)
}

/// Everything measured for one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioStats {
    pub counts: Counts,
    histograms: [Histogram<u64>; SAMPLES],
}

impl Default for ScenarioStats {
    fn default() -> Self {
        Self { counts: Counts::default(), histograms: std::array::from_fn(|_| new_histogram()) }
    }
}

impl ScenarioStats {
    /// Stats read back from a report: its counts, and its histograms in [`Sample`] order.
    pub fn from_parts(counts: Counts, histograms: [Histogram<u64>; SAMPLES]) -> Self {
        Self { counts, histograms }
    }

    pub fn histogram(&self, sample: Sample) -> &Histogram<u64> {
        &self.histograms[sample as usize]
    }

    pub fn merge(&mut self, other: &ScenarioStats) {
        self.counts.add(&other.counts);
        for (mine, theirs) in self.histograms.iter_mut().zip(&other.histograms) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = mine.add(theirs);
        }
    }
}

/// A slot's records since its last flush.
pub struct Batch {
    pub scenario: usize,
    pub counts: Counts,
    samples: Vec<(Sample, u64)>,
    last_flush: Instant,
}

/// Flush when this many samples wait, or this long after the last flush.
const FLUSH_SAMPLES: usize = 256;
const FLUSH_EVERY: Duration = Duration::from_millis(200);

impl Batch {
    pub fn new(scenario: usize) -> Self {
        Self {
            scenario,
            counts: Counts::default(),
            // Grows only as samples come: an idle slot holds few or none.
            samples: Vec::new(),
            last_flush: Instant::now(),
        }
    }

    pub fn sample(&mut self, sample: Sample, value: Duration) {
        self.samples.push((sample, micros(value)));
    }

    fn due(&self, now: Instant) -> bool {
        self.samples.len() >= FLUSH_SAMPLES || now.duration_since(self.last_flush) >= FLUSH_EVERY
    }
}

/// Who takes latency out of a [`Collector`] window by window: each has a histogram of its own
/// that taking empties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyWindow {
    /// The progress ticks.
    Progress,
    /// The phases of the chaos timeline.
    Phase,
}

/// One shard's totals, plus the latency seen since each window was last taken.
struct Shard {
    scenarios: Vec<ScenarioStats>,
    windows: [Histogram<u64>; 2],
}

/// Where every slot's batches end up.
pub struct Collector {
    shards: Vec<Mutex<Shard>>,
    /// Calls open right now.
    pub active: AtomicI64,
}

impl Collector {
    pub fn new(scenarios: usize, shards: usize) -> Self {
        let shard = || {
            Mutex::new(Shard {
                scenarios: (0..scenarios).map(|_| ScenarioStats::default()).collect(),
                windows: [new_histogram(), new_histogram()],
            })
        };
        Self { shards: (0..shards.max(1)).map(|_| shard()).collect(), active: AtomicI64::new(0) }
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Moves `batch` into shard `shard` when it is due (or `force`).
    pub fn flush(&self, shard: usize, batch: &mut Batch, force: bool) {
        let now = Instant::now();
        if force || batch.due(now) {
            self.flush_now(shard, batch, now);
        }
    }

    /// As [`Collector::flush`] when due, with the time the caller already read.
    pub fn flush_at(&self, shard: usize, batch: &mut Batch, now: Instant) {
        if batch.due(now) {
            self.flush_now(shard, batch, now);
        }
    }

    fn flush_now(&self, shard: usize, batch: &mut Batch, now: Instant) {
        batch.last_flush = now;
        let mut shard = self.shards[shard % self.shards.len()].lock().unwrap_or_else(|e| e.into_inner());
        let shard = &mut *shard;
        let stats = &mut shard.scenarios[batch.scenario];
        stats.counts.add(&batch.counts);
        batch.counts = Counts::default();
        for (sample, value) in batch.samples.drain(..) {
            stats.histograms[sample as usize].saturating_record(value);
            if sample == Sample::Latency {
                for window in &mut shard.windows {
                    window.saturating_record(value);
                }
            }
        }
    }

    /// Every scenario's totals so far, merged over the shards.
    pub fn snapshot(&self) -> Vec<ScenarioStats> {
        let mut merged: Vec<ScenarioStats> = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            if merged.is_empty() {
                merged = shard.scenarios.clone();
                continue;
            }
            for (sum, stats) in merged.iter_mut().zip(&shard.scenarios) {
                sum.merge(stats);
            }
        }
        merged
    }

    /// Every scenario's counts so far (cheap: no histograms are copied).
    pub fn counts(&self) -> Counts {
        let mut total = Counts::default();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            for stats in &shard.scenarios {
                total.add(&stats.counts);
            }
        }
        total
    }

    /// The latency recorded since `window` was last taken, merged over the shards, which
    /// start that window afresh.
    pub fn take_latency(&self, window: LatencyWindow) -> Histogram<u64> {
        let mut merged = new_histogram();
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let _ = merged.add(&shard.windows[window as usize]);
            shard.windows[window as usize].reset();
        }
        merged
    }

    pub fn active_calls(&self) -> u64 {
        u64::try_from(self.active.load(Ordering::Relaxed)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_from_many_shards_merge() {
        let collector = Collector::new(2, 3);
        for shard in 0..3 {
            let mut batch = Batch::new(1);
            batch.counts.messages_received = 10;
            batch.counts.errors[14] = 1;
            batch.sample(Sample::Latency, Duration::from_millis(10 * (shard as u64 + 1)));
            collector.flush(shard, &mut batch, true);
            assert_eq!(batch.counts, Counts::default());
        }
        let stats = collector.snapshot();
        assert_eq!(stats[0].counts, Counts::default());
        assert_eq!(stats[1].counts.messages_received, 30);
        assert_eq!(stats[1].counts.errors[14], 3);
        let latency = stats[1].histogram(Sample::Latency);
        assert_eq!(latency.len(), 3);
        assert_eq!(latency.max() / 1000, 30);
        assert_eq!(collector.take_latency(LatencyWindow::Progress).len(), 3);
        assert_eq!(collector.take_latency(LatencyWindow::Progress).len(), 0);
        assert_eq!(collector.take_latency(LatencyWindow::Phase).len(), 3, "each window has its own");
    }
}
