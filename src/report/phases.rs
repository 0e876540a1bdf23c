//! The simulator's per-phase breakdown: while the load runs, each change of the chaos phase in
//! force (as the embedded server's engine publishes it, [`ChaosEngine::phase_changes`]) closes
//! one occurrence of a phase with what the load client saw during it — calls started, calls
//! failed by code, and the latency of the messages received. One entry per occurrence, in
//! order, so an outage that repeats shows each time it came round.
//!
//! Attribution follows the load client's batches, which reach the collector a few times a
//! second: a call or message near a boundary may count in the neighbouring phase.
//!
//! [`ChaosEngine::phase_changes`]: crate::chaos::ChaosEngine::phase_changes

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Percentiles, error_rate, errors_by_code};
use crate::chaos::PhaseInForce;
use crate::client::Collector;
use crate::client::stats::{Counts, LatencyWindow};

/// One occurrence of a phase, as the load client saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseReport {
    pub name: String,
    /// Whether the phase is an outage (it refuses, breaks or cuts calls).
    pub outage: bool,
    /// When it began and ended, in seconds since the load started (clamped to the run).
    pub started_s: f64,
    pub ended_s: f64,
    /// Calls started during the phase.
    pub calls: u64,
    /// Calls that failed during the phase.
    pub errors: u64,
    /// `errors` over `calls` (0 without calls).
    pub error_rate: f64,
    /// Failed calls by status code.
    pub errors_by_code: BTreeMap<String, u64>,
    pub latency_ms: Percentiles,
    /// The phase's latency, serialized ([`super::histograms`]).
    pub latency_histogram: String,
}

/// The task recording phase occurrences; [`PhaseRecorder::finish`] returns them.
pub struct PhaseRecorder {
    stop: CancellationToken,
    task: JoinHandle<Vec<PhaseReport>>,
}

impl PhaseRecorder {
    /// Follows `changes` from `started` (the load's start) until finished.
    pub fn spawn(
        changes: watch::Receiver<PhaseInForce>,
        collector: Arc<Collector>,
        started: Instant,
    ) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(record(changes, collector, started, stop.clone()));
        Self { stop, task }
    }

    /// Closes the phase in force and returns every occurrence.
    pub async fn finish(self) -> Vec<PhaseReport> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

async fn record(
    mut changes: watch::Receiver<PhaseInForce>,
    collector: Arc<Collector>,
    started: Instant,
    stop: CancellationToken,
) -> Vec<PhaseReport> {
    let mut phases = Vec::new();
    let mut current = changes.borrow_and_update().clone();
    let mut before = collector.counts();
    // What came before the load belongs to no phase of it.
    collector.take_latency(LatencyWindow::Phase);
    loop {
        let stopping = tokio::select! {
            changed = changes.changed() => changed.is_err(),
            _ = stop.cancelled() => true,
        };
        let next = changes.borrow_and_update().clone();
        // A republished phase (say, a pin released back to the same phase) is no new one.
        if !stopping && next.index == current.index && next.since == current.since {
            continue;
        }
        let now = collector.counts();
        phases.extend(occurrence(&current, &before, &now, &collector, started));
        if stopping {
            return phases;
        }
        (current, before) = (next, now);
    }
}

/// The occurrence of `phase` that ends now, with the counts since `before`; none outside
/// phases.
fn occurrence(
    phase: &PhaseInForce,
    before: &Counts,
    now: &Counts,
    collector: &Collector,
    started: Instant,
) -> Option<PhaseReport> {
    let latency = collector.take_latency(LatencyWindow::Phase);
    let name = phase.name.clone()?;
    let mut during = Counts {
        calls_started: now.calls_started - before.calls_started,
        calls_failed: now.calls_failed - before.calls_failed,
        ..Counts::default()
    };
    for (code, count) in during.errors.iter_mut().enumerate() {
        *count = now.errors[code] - before.errors[code];
    }
    let started = started.into_std();
    Some(PhaseReport {
        name,
        outage: phase.outage,
        started_s: phase.since.saturating_duration_since(started).as_secs_f64(),
        ended_s: started.elapsed().as_secs_f64(),
        calls: during.calls_started,
        errors: during.calls_failed,
        error_rate: error_rate(&during),
        errors_by_code: errors_by_code(&during.errors),
        latency_ms: Percentiles::of(&latency),
        latency_histogram: super::histograms::encode(&latency),
    })
}
