//! A stream slot: one of a scenario's `streams`, opening calls one after another until the
//! run ends. The composition lives here — ramp gating, the run's call budget, think time after
//! a clean end, and the reconnect policy after a failure (backoff with jitter, a cap on
//! consecutive attempts, resuming the sequence) — while [`super::call`] runs any kind of call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

use super::call::{CallSetup, SlotState, run_call};
use super::outcome::CallEnd;
use super::scenario::Scenario;
use super::stats::{Batch, Collector, Sample};
use super::targets::ConnectionPool;

/// What every slot of a run shares.
pub struct RunShared {
    pub collector: Arc<Collector>,
    pub started: Instant,
    /// Fires when no new call may start (the duration is over).
    pub stop: CancellationToken,
    /// Fires when open calls are cut (shortly after `stop`, so calls ending anyway are counted).
    pub cut: CancellationToken,
    /// Call attempts left when the run has a total count.
    pub calls_left: Option<AtomicU64>,
    pub seed: u64,
}

impl RunShared {
    fn take_call(&self) -> bool {
        self.calls_left.as_ref().is_none_or(|left| {
            left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(1)).is_ok()
        })
    }
}

/// One slot's identity.
pub struct Slot {
    pub scenario: Arc<Scenario>,
    /// Index among the scenario's slots (ramps activate slots in this order).
    pub index: u32,
    /// Number within the run: `{{stream.id}}`, and the shard it records into.
    pub stream_id: u64,
    /// Which of the pool's connections carries this slot's calls.
    pub connection: usize,
    pub pool: Arc<ConnectionPool>,
}

/// Sleeps `duration` unless `stop` fires first; false when it did.
async fn pause(duration: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = sleep(duration) => true,
        _ = stop.cancelled() => false,
    }
}

/// Runs a slot until the run stops, its budget runs out or it gives up.
pub async fn run_slot(slot: Slot, shared: Arc<RunShared>) {
    let scenario = slot.scenario.clone();
    let spec = &scenario.spec;
    let shard = usize::try_from(slot.stream_id).unwrap_or(0) % shared.collector.shard_count();
    // SmallRng: 32 bytes in every slot's task, where StdRng's block buffer took over 300.
    let mut rng = SmallRng::seed_from_u64(shared.seed ^ slot.stream_id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut batch = Batch::new(scenario.index);
    let mut state = SlotState::default();
    let mut failures = 0u32;
    while !shared.stop.is_cancelled() {
        if !wait_until_active(&slot, &shared).await || !shared.take_call() {
            break;
        }
        if !spec.reconnect.resume && failures > 0 {
            state.last_sequence = None;
        }
        shared.collector.active.fetch_add(1, Ordering::Relaxed);
        scenario.metrics.active.increment(1.0);
        // Picked per call, so a re-resolved target list takes effect at the next call.
        let connection = slot.pool.pick(slot.connection);
        connection.counts.calls.fetch_add(1, Ordering::Relaxed);
        let setup = CallSetup {
            scenario: scenario.clone(),
            channel: connection.channel.clone(),
            stream_id: slot.stream_id,
            seed: rng.random(),
            run_started: shared.started,
            cut: shared.cut.clone(),
            collector: shared.collector.clone(),
            shard,
        };
        let result = run_call(setup, &mut state, &mut batch).await;
        shared.collector.active.fetch_sub(1, Ordering::Relaxed);
        scenario.metrics.active.decrement(1.0);
        match result.end {
            CallEnd::RunEnded => break,
            CallEnd::Ok | CallEnd::ClientEnded => {
                failures = 0;
                shared.collector.flush(shard, &mut batch, false);
                if let Some((low, high)) = spec.think_time {
                    let think = if low == high { low } else { rng.random_range(low..=high) };
                    if !pause(think, &shared.stop).await {
                        break;
                    }
                }
            }
            CallEnd::Failed { .. } => {
                connection.counts.failed.fetch_add(1, Ordering::Relaxed);
                // A stream that delivered messages was healthy: its failure starts a fresh
                // backoff sequence, as gRPC resets backoff after a successful connection.
                failures = if result.received > 0 { 1 } else { failures + 1 };
                state.failed_at.get_or_insert_with(Instant::now);
                if spec.reconnect.max_attempts.is_some_and(|max| failures >= max) {
                    batch.counts.given_up += 1;
                    scenario.metrics.given_up.increment(1);
                    break;
                }
                let backoff = spec.reconnect.backoff(failures, rng.random_range(-1.0..=1.0));
                batch.sample(Sample::Backoff, backoff);
                shared.collector.flush(shard, &mut batch, false);
                if !pause(backoff, &shared.stop).await {
                    break;
                }
                batch.counts.reconnects += 1;
                scenario.metrics.reconnects.increment(1);
            }
        }
    }
    shared.collector.flush(shard, &mut batch, true);
}

/// Waits until the scenario's ramp reaches this slot; false when the run stops first.
async fn wait_until_active(slot: &Slot, shared: &RunShared) -> bool {
    let spec = &slot.scenario.spec;
    let Some(ramp) = spec.ramp else { return true };
    loop {
        let wanted = ramp.value_at(f64::from(spec.streams), shared.started.elapsed()).round();
        if f64::from(slot.index) < wanted {
            return true;
        }
        if !pause(Duration::from_millis(50), &shared.stop).await {
            return false;
        }
    }
}
