//! A load run: connects, spawns one task per slot (slot `i` on connection `i mod C`, started at
//! its place in the opening), waits for the stop condition, then stops every slot and sums
//! what they counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::connect::{ConnectError, connect};
use crate::gaps::{GapRecorder, SharedGaps, SignedHistogram};
use crate::plan::{LoadPlan, Stop};
use crate::slot::{Progress, Slot, SlotTally};

/// Shared gap histograms per run: enough that streams on two cores rarely contend.
const GAP_SHARDS: usize = 16;

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Messages received inside the measuring window (replies, for unary calls).
    pub messages: u64,
    /// How long the window was open: shorter than planned if the run was stopped early.
    pub window: Duration,
    /// Calls that ended OK, and with an error status.
    pub completed: u64,
    pub failed: u64,
    /// Connections on which at least one call failed: a connection the server closed shows here.
    pub failed_connections: usize,
    /// The first error any slot saw.
    pub first_error: Option<Status>,
    /// Gap errors (arrival gap minus the expected gap, µs), when the plan measured them.
    pub gaps: Option<SignedHistogram>,
}

impl Outcome {
    /// Messages per second inside the window.
    pub fn per_second(&self) -> f64 {
        self.messages as f64 / self.window.as_secs_f64().max(f64::EPSILON)
    }
}

/// A run in progress.
pub struct RunningLoad {
    /// Live counts, for watching the run from outside.
    pub progress: Arc<Progress>,
    stop: Stop,
    token: CancellationToken,
    window: (Instant, Instant),
    slots: JoinSet<SlotTally>,
    gaps: Option<SharedGaps>,
}

/// Connects and starts every slot of `plan`.
pub async fn start(plan: &LoadPlan) -> Result<RunningLoad, ConnectError> {
    let channels = connect(plan.target, plan.connections).await?;
    let started = Instant::now();
    let (window_start, window_end) = plan.window_bounds();
    let window = (started + window_start, started + window_end);
    let token = match &plan.stop {
        Stop::EndOfWindow => CancellationToken::new(),
        Stop::Token(token) => token.clone(),
    };
    let progress = Arc::new(Progress::default());
    let gaps = plan.expected_gap.map(|_| SharedGaps::new(GAP_SHARDS));
    let total = plan.slots();
    let mut slots = JoinSet::new();
    for index in 0..total {
        let slot = Slot {
            channel: channels[index % channels.len()].clone(),
            connection: index % channels.len(),
            call: plan.call.clone(),
            start_at: started + plan.opening.offset(index, total),
            window,
            stop: token.clone(),
            progress: progress.clone(),
            gaps: plan
                .expected_gap
                .zip(gaps.clone())
                .map(|(gap, shared)| GapRecorder::new(gap, shared, index)),
        };
        slots.spawn(slot.run());
    }
    Ok(RunningLoad { progress, stop: plan.stop.clone(), token, window, slots, gaps })
}

/// Runs `plan` to its stop and returns what it measured.
pub async fn run(plan: &LoadPlan) -> Result<Outcome, ConnectError> {
    Ok(start(plan).await?.finish().await)
}

impl RunningLoad {
    /// Waits for the stop condition (the window's end, or the plan's token), stops every slot
    /// and sums their counts.
    pub async fn finish(mut self) -> Outcome {
        match &self.stop {
            Stop::EndOfWindow => tokio::time::sleep_until(self.window.1.into()).await,
            Stop::Token(token) => token.cancelled().await,
        }
        let stopped = Instant::now();
        self.token.cancel();
        let mut outcome = Outcome {
            messages: 0,
            window: stopped.clamp(self.window.0, self.window.1) - self.window.0,
            completed: 0,
            failed: 0,
            failed_connections: 0,
            first_error: None,
            gaps: None,
        };
        let mut failed_connections = std::collections::BTreeSet::new();
        while let Some(joined) = self.slots.join_next().await {
            let tally = joined.expect("a slot task does not panic");
            outcome.messages += tally.messages;
            outcome.completed += tally.completed;
            outcome.failed += tally.failed;
            if tally.failed > 0 {
                failed_connections.insert(tally.connection);
            }
            if outcome.first_error.is_none() {
                outcome.first_error = tally.first_error;
            }
        }
        outcome.failed_connections = failed_connections.len();
        outcome.gaps = self.gaps.as_ref().map(SharedGaps::merged);
        outcome
    }
}
