//! Gap measurement: per stream, the time between consecutive message arrivals minus the gap
//! the server was configured to leave, signed, in microseconds. Errors go into a
//! [`SignedHistogram`] — two HdrHistograms, one for late and one for early arrivals — so values
//! near zero keep microsecond resolution (a single histogram offset by the expected gap would
//! round them to its resolution at 100 ms, 64 µs).
//!
//! Streams buffer a few errors locally ([`GapRecorder`]) and flush them into one of a few
//! shared histograms, so the hot path takes a lock once per [`FLUSH_EVERY`] messages.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Errors a stream buffers before it takes a shared histogram's lock.
const FLUSH_EVERY: usize = 64;
/// Largest error recorded: an hour, in microseconds. Larger ones saturate.
const HIGHEST_MICROS: u64 = 3_600_000_000;

/// A histogram of signed values in microseconds, with their exact sum for the mean.
#[derive(Debug, Clone)]
pub struct SignedHistogram {
    /// Values ≥ 0.
    late: Histogram<u64>,
    /// Magnitudes of values < 0.
    early: Histogram<u64>,
    sum: i128,
}

impl Default for SignedHistogram {
    fn default() -> Self {
        let histogram = || Histogram::new_with_max(HIGHEST_MICROS, 3).expect("valid bounds");
        Self { late: histogram(), early: histogram(), sum: 0 }
    }
}

impl SignedHistogram {
    pub fn record(&mut self, micros: i64) {
        if micros >= 0 {
            self.late.saturating_record(micros as u64);
        } else {
            self.early.saturating_record(micros.unsigned_abs());
        }
        self.sum += i128::from(micros);
    }

    pub fn add(&mut self, other: &Self) {
        self.late.add(&other.late).expect("same bounds");
        self.early.add(&other.early).expect("same bounds");
        self.sum += other.sum;
    }

    pub fn len(&self) -> u64 {
        self.late.len() + self.early.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The exact mean, in microseconds (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.is_empty() { 0.0 } else { self.sum as f64 / self.len() as f64 }
    }

    /// The value at quantile `q` (0..=1), in microseconds: the smallest value with at least
    /// `q` of all values at or below it.
    pub fn quantile(&self, q: f64) -> i64 {
        let total = self.len();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let early = self.early.len();
        if rank <= early {
            // The rank-th most negative value is the (early - rank + 1)-th smallest magnitude.
            let magnitude = self.early.value_at_quantile((early - rank + 1) as f64 / early as f64);
            -(magnitude as i64)
        } else {
            let late = self.late.len();
            self.late.value_at_quantile((rank - early) as f64 / late as f64) as i64
        }
    }

    pub fn max(&self) -> i64 {
        if self.late.is_empty() { -(self.early.min() as i64) } else { self.late.max() as i64 }
    }
}

/// The histograms a run's streams flush into: a few, so streams rarely wait on one another.
#[derive(Debug, Clone)]
pub struct SharedGaps {
    shards: Arc<[Mutex<SignedHistogram>]>,
}

impl SharedGaps {
    pub fn new(shards: usize) -> Self {
        Self { shards: (0..shards.max(1)).map(|_| Mutex::default()).collect() }
    }

    /// All shards merged.
    pub fn merged(&self) -> SignedHistogram {
        let mut merged = SignedHistogram::default();
        for shard in self.shards.iter() {
            merged.add(&shard.lock().expect("not poisoned"));
        }
        merged
    }
}

/// One stream's gap measurement: the last arrival, and errors not yet flushed.
#[derive(Debug)]
pub struct GapRecorder {
    expected_micros: i64,
    shared: SharedGaps,
    shard: usize,
    last: Option<Instant>,
    pending: Vec<i64>,
}

impl GapRecorder {
    pub fn new(expected: Duration, shared: SharedGaps, slot: usize) -> Self {
        let shard = slot % shared.shards.len();
        Self { expected_micros: expected.as_micros() as i64, shared, shard, last: None, pending: Vec::new() }
    }

    /// Notes a message that arrived `at`; `counted` says whether it falls in the measuring
    /// window (its gap to the previous message is recorded only then).
    pub fn arrived(&mut self, at: Instant, counted: bool) {
        if let Some(last) = self.last.replace(at)
            && counted
        {
            let gap = at.duration_since(last).as_micros() as i64;
            self.pending.push(gap - self.expected_micros);
            if self.pending.len() >= FLUSH_EVERY {
                self.flush();
            }
        }
    }

    /// A new call begins: its first message has no gap before it.
    pub fn restart(&mut self) {
        self.last = None;
    }

    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut shard = self.shared.shards[self.shard].lock().expect("not poisoned");
        for error in self.pending.drain(..) {
            shard.record(error);
        }
    }
}

impl Drop for GapRecorder {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_run_from_the_most_negative_to_the_most_positive() {
        let mut histogram = SignedHistogram::default();
        for value in [-300, -200, -100, 0, 100, 200, 300, 400, 500, 600] {
            histogram.record(value);
        }
        assert_eq!(histogram.quantile(0.0), -300);
        assert_eq!(histogram.quantile(0.1), -300);
        assert_eq!(histogram.quantile(0.2), -200);
        assert_eq!(histogram.quantile(0.5), 100);
        assert_eq!(histogram.quantile(1.0), 600);
        assert_eq!(histogram.max(), 600);
        assert!((histogram.mean() - 150.0).abs() < 1e-9);
    }

    #[test]
    fn an_all_early_histogram_has_a_negative_maximum() {
        let mut histogram = SignedHistogram::default();
        histogram.record(-50);
        histogram.record(-20);
        assert_eq!(histogram.max(), -20);
        assert_eq!(histogram.quantile(0.5), -50);
    }

    #[test]
    fn gaps_are_recorded_against_the_expected_gap_inside_the_window_only() {
        let shared = SharedGaps::new(2);
        let mut recorder = GapRecorder::new(Duration::from_millis(100), shared.clone(), 0);
        let start = Instant::now();
        recorder.arrived(start, true);
        recorder.arrived(start + Duration::from_millis(101), true);
        recorder.arrived(start + Duration::from_millis(200), false);
        recorder.restart();
        recorder.arrived(start + Duration::from_millis(900), true);
        recorder.arrived(start + Duration::from_millis(999), true);
        drop(recorder);
        let merged = shared.merged();
        assert_eq!(merged.len(), 2);
        assert_eq!(merged.quantile(0.0), -1000);
        assert_eq!(merged.max(), 1000);
    }
}
