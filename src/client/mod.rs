//! The built-in load client: scenarios from a profile's `load` section driven over N HTTP/2
//! connections by stream slots, each slot opening calls one after another (see [`slot`]) and
//! each call composed from an outbound and an inbound half (see [`call`]). Measurements follow
//! the oha model: small records per slot, batched into sharded per-worker stats and merged
//! for progress and the report ([`stats`]). Metrics go through the `metrics` facade under
//! `streamstorm_client_` ([`metrics`]); exporting them is the telemetry module's job, and
//! printing and judging the results is [`crate::report`]'s.

pub mod call;
pub mod codec;
pub mod connect;
pub mod metrics;
pub mod outcome;
pub mod scenario;
pub mod shard;
pub mod slot;
pub mod stats;
pub mod targets;
pub mod tls;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use connect::{ConnectError, channels, pool_from_reflection};
pub use scenario::{Scenario, compile_scenarios};
pub use shard::{ShardPlan, ShardSpec, shard_plan};
pub use stats::{Collector, DisconnectKind, Sample, ScenarioStats};
pub use targets::{ConnectionPool, PoolSettings, TargetEntry, connect_targets, parse_targets};
pub use tls::{ClientTls, ClientTlsFiles, Trust};

use slot::{RunShared, Slot, run_slot};

/// How a run goes, once flags and profile are merged.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// How long new calls may start.
    pub duration: Duration,
    /// A total number of call attempts, when the run is bounded by count.
    pub calls: Option<u64>,
    /// Seeds jitter, think times and request templates.
    pub seed: u64,
    /// How long calls open at the end may finish on their own before they are cut.
    pub drain: Duration,
    /// Per scenario, the run-wide number of the first slot (a shard's slots are numbered as
    /// in the whole run); empty numbers every scenario's slots on from 0.
    pub first_stream_ids: Vec<u64>,
}

/// A run in progress.
pub struct LoadRun {
    shared: Arc<RunShared>,
    tasks: JoinSet<()>,
    duration: Duration,
}

/// What [`LoadRun::finish`] measured about the run itself.
#[derive(Debug, Clone, Copy)]
pub struct RunTiming {
    /// From the start until new calls stopped (the duration, or less when stopped early).
    pub elapsed: Duration,
}

/// Starts every scenario's slots, spread over the pool's connections round-robin.
pub fn start(scenarios: &[Arc<Scenario>], pool: &Arc<ConnectionPool>, settings: &LoadSettings) -> LoadRun {
    let shards = std::thread::available_parallelism().map_or(4, |cores| cores.get() * 4);
    let collector = Arc::new(Collector::new(scenarios.len(), shards));
    let shared = Arc::new(RunShared {
        collector,
        started: Instant::now(),
        stop: CancellationToken::new(),
        cut: CancellationToken::new(),
        calls_left: settings.calls.map(AtomicU64::new),
        seed: settings.seed,
    });
    let mut tasks = JoinSet::new();
    let mut connection = 0usize;
    let mut next_id = 0u64;
    for (position, scenario) in scenarios.iter().enumerate() {
        let first = settings.first_stream_ids.get(position).copied().unwrap_or(next_id);
        for index in 0..scenario.spec.streams {
            let stream_id = first + u64::from(index);
            let slot = Slot { scenario: scenario.clone(), index, stream_id, connection, pool: pool.clone() };
            tasks.spawn(run_slot(slot, shared.clone()));
            connection += 1;
        }
        next_id = first + u64::from(scenario.spec.streams);
    }
    LoadRun { shared, tasks, duration: settings.duration }
}

impl LoadRun {
    pub fn collector(&self) -> Arc<Collector> {
        self.shared.collector.clone()
    }

    /// When the run started.
    pub fn started(&self) -> Instant {
        self.shared.started
    }

    /// A token that ends the run early (e.g. on Ctrl-C) when cancelled.
    pub fn stopper(&self) -> CancellationToken {
        self.shared.stop.clone()
    }

    /// Waits for the duration (or every slot ending, or an early stop), lets open calls end
    /// for up to `drain`, runs `before_cut` if calls are still open (still listening to
    /// them), cuts the rest and joins every slot.
    pub async fn finish(mut self, drain: Duration, before_cut: impl Future<Output = ()>) -> RunTiming {
        let deadline = self.shared.started + self.duration;
        let all_done = async { while self.tasks.join_next().await.is_some() {} };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = self.shared.stop.cancelled() => {}
            _ = all_done => {}
        }
        let elapsed = self.shared.started.elapsed();
        self.shared.stop.cancel();
        let drained =
            tokio::time::timeout(drain, async { while self.tasks.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            before_cut.await;
            self.shared.cut.cancel();
            while self.tasks.join_next().await.is_some() {}
        }
        RunTiming { elapsed }
    }
}
