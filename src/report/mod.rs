//! The simulator's results: the [`Report`] built from the load client's merged stats, the
//! server's fault tally (when the server is embedded) and the thresholds; printed for people
//! ([`print`]), written as JSON (`--report`, keys fixed by the design and checked against
//! `schemas/report.schema.json`), drawn as a latency-over-time plot ([`plot`]). Live progress
//! during the run is [`progress`].

pub mod histograms;
pub mod merge;
mod merge_timeline;
pub mod phases;
pub mod plot;
pub mod print;
pub mod progress;
pub mod reconcile;
pub mod scale;
pub mod thresholds;

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::chaos::TallySummary;
use crate::client::stats::{CODES, Counts};
use crate::client::{DisconnectKind, Sample, Scenario, ScenarioStats};
use crate::config::load::Threshold;
use crate::judge::JudgeReport;
use crate::proto::status::code_name;

pub use histograms::SampleHistograms;
pub use phases::{PhaseRecorder, PhaseReport};
pub use progress::TimelinePoint;
pub use reconcile::ServerFaults;
pub use scale::{MergedFrom, ProfileIdentity, ShardReport, TargetReport};
pub use thresholds::{ThresholdOutcome, ThresholdsReport};

/// Everything the run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Seconds during which calls were started.
    pub duration_s: f64,
    /// How long the load was driven: the duration asked for, or until the run stopped early
    /// (a call limit, a signal); `duration_s` adds the final drain.
    pub load_duration_s: f64,
    /// A signal stopped the run early; everything up to then is counted.
    pub interrupted: bool,
    /// `embedded (127.0.0.1:PORT)` or the target address.
    pub target: String,
    /// The run's seed (a shard draws from its own, derived from it: `shard.seed`).
    pub seed: u64,
    /// The profile run, with a digest of its bytes.
    pub profile: ProfileIdentity,
    /// Which shard of a sharded run this is; null when unsharded.
    pub shard: Option<ShardReport>,
    /// For a report made by `report merge`, what it was made from; null otherwise.
    pub merged_from: Option<MergedFrom>,
    /// Calls by target address (one row per address connected to).
    pub targets: Vec<TargetReport>,
    pub streams: StreamCounts,
    pub messages: MessageCounts,
    /// Failed calls by gRPC code name.
    pub errors: BTreeMap<String, u64>,
    /// Failed calls by disconnect kind (reset, goaway, transport, idle_timeout).
    pub disconnects: BTreeMap<String, u64>,
    /// Failed calls over every call attempt (calls still open at the end count as not failed).
    pub error_rate: f64,
    pub reconnects: u64,
    pub latency_ms: Percentiles,
    pub time_to_first_message_ms: Percentiles,
    pub recovery_ms: Percentiles,
    pub stream_duration_ms: Percentiles,
    pub message_age_ms: Percentiles,
    pub backoff_ms: Percentiles,
    pub scenarios: Vec<ScenarioReport>,
    /// Faults the embedded server injected, beside what the client saw; null for a target.
    pub server_faults: Option<ServerFaults>,
    pub thresholds: ThresholdsReport,
    /// The embedded server's view of the load client, judged against the profile's `expect`
    /// section as any client under test is; null for a target.
    pub peers: Option<JudgeReport>,
    /// One point per progress interval.
    pub timeline: Vec<TimelinePoint>,
    /// Each occurrence of a chaos phase, in order, with what the client saw during it; empty
    /// without phases or against a `--target` (whose phases this process cannot see).
    pub phases: Vec<PhaseReport>,
}

/// Call attempts: every attempt counts, reconnects included.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct StreamCounts {
    pub opened: u64,
    pub completed: u64,
    pub failed: u64,
    /// Still open when the run ended.
    pub cut_at_end: u64,
    /// Slots that stopped after `reconnect.max_attempts` consecutive failures.
    pub given_up: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct MessageCounts {
    pub sent: u64,
    pub received: u64,
    /// Received per second over `duration_s`.
    pub per_second: f64,
    /// Sequence numbers skipped (only where a scenario names a `sequence_field`).
    pub missed: u64,
    /// Sent on calls the server ended before reading them (known when the server reports
    /// what it read, as `serve` does).
    pub unread_by_server: u64,
}

/// Milliseconds at the usual percentiles.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.5)),
            p90: ms(histogram.value_at_quantile(0.9)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// One scenario's share, with every per-call measure of its own: scenarios differ in
/// call kind and reconnect policy, so a merged figure (a backoff of 1 s beside one of
/// 100 ms) describes neither.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioReport {
    pub method: String,
    pub kind: String,
    /// Concurrent slots configured.
    pub slots: u32,
    pub streams: StreamCounts,
    pub messages: MessageCounts,
    pub errors: BTreeMap<String, u64>,
    pub disconnects: BTreeMap<String, u64>,
    pub reconnects: u64,
    pub latency_ms: Percentiles,
    pub time_to_first_message_ms: Percentiles,
    pub recovery_ms: Percentiles,
    pub backoff_ms: Percentiles,
    pub stream_duration_ms: Percentiles,
    pub message_age_ms: Percentiles,
    /// Every measure above as a serialized histogram, for `report merge`.
    pub histograms: SampleHistograms,
}

/// What a report says of a scenario besides its measurements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioIdentity {
    pub method: String,
    pub kind: String,
    pub slots: u32,
}

impl ScenarioIdentity {
    pub fn of(scenario: &Scenario) -> Self {
        Self {
            method: scenario.method().to_owned(),
            kind: scenario.kind.as_str().to_owned(),
            slots: scenario.spec.streams,
        }
    }
}

/// What a report is built from.
pub struct ReportInputs<'a> {
    pub scenarios: &'a [ScenarioIdentity],
    pub stats: &'a [ScenarioStats],
    pub elapsed: Duration,
    /// The duration the run was asked to last.
    pub planned: Duration,
    /// Whether a signal stopped the run early.
    pub interrupted: bool,
    pub target: String,
    pub seed: u64,
    pub faults: Option<TallySummary>,
    pub thresholds: &'a [Threshold],
    pub peers: Option<JudgeReport>,
    pub timeline: Vec<TimelinePoint>,
    /// Each occurrence of a chaos phase during the run (embedded server only).
    pub phases: Vec<PhaseReport>,
    pub profile: ProfileIdentity,
    pub shard: Option<ShardReport>,
    pub merged_from: Option<MergedFrom>,
    pub targets: Vec<TargetReport>,
}

fn errors_by_code(counts: &[u64; CODES]) -> BTreeMap<String, u64> {
    counts
        .iter()
        .enumerate()
        .filter(|(_, count)| **count > 0)
        .map(|(code, count)| (code_name(tonic::Code::from_i32(code as i32)).to_owned(), *count))
        .collect()
}

fn disconnects(counts: &Counts) -> BTreeMap<String, u64> {
    DisconnectKind::ALL
        .iter()
        .map(|kind| (kind.name().to_owned(), counts.disconnects[*kind as usize]))
        .collect()
}

fn stream_counts(counts: &Counts) -> StreamCounts {
    StreamCounts {
        opened: counts.calls_started,
        completed: counts.calls_completed,
        failed: counts.calls_failed,
        cut_at_end: counts.calls_cut_at_end,
        given_up: counts.given_up,
    }
}

fn message_counts(counts: &Counts, elapsed: Duration) -> MessageCounts {
    MessageCounts {
        sent: counts.messages_sent,
        received: counts.messages_received,
        per_second: counts.messages_received as f64 / elapsed.as_secs_f64().max(1e-3),
        missed: counts.missed_messages,
        unread_by_server: counts.messages_unread,
    }
}

/// Failed calls over every call attempt; a stream still healthy at the end is no failure.
pub fn error_rate(counts: &Counts) -> f64 {
    if counts.calls_started == 0 { 0.0 } else { counts.calls_failed as f64 / counts.calls_started as f64 }
}

impl Report {
    pub fn build(inputs: ReportInputs<'_>) -> Self {
        let mut total = ScenarioStats::default();
        for stats in inputs.stats {
            total.merge(stats);
        }
        let counts = total.counts;
        let pct = |sample| Percentiles::of(total.histogram(sample));
        let scenarios = inputs
            .scenarios
            .iter()
            .zip(inputs.stats)
            .map(|(scenario, stats)| ScenarioReport {
                method: scenario.method.clone(),
                kind: scenario.kind.clone(),
                slots: scenario.slots,
                streams: stream_counts(&stats.counts),
                messages: message_counts(&stats.counts, inputs.elapsed),
                errors: errors_by_code(&stats.counts.errors),
                disconnects: disconnects(&stats.counts),
                reconnects: stats.counts.reconnects,
                latency_ms: Percentiles::of(stats.histogram(Sample::Latency)),
                time_to_first_message_ms: Percentiles::of(stats.histogram(Sample::TimeToFirstMessage)),
                recovery_ms: Percentiles::of(stats.histogram(Sample::Recovery)),
                backoff_ms: Percentiles::of(stats.histogram(Sample::Backoff)),
                stream_duration_ms: Percentiles::of(stats.histogram(Sample::StreamDuration)),
                message_age_ms: Percentiles::of(stats.histogram(Sample::Age)),
                histograms: SampleHistograms::of(stats),
            })
            .collect();
        let thresholds = thresholds::evaluate(inputs.thresholds, &total, inputs.elapsed);
        Self {
            duration_s: inputs.elapsed.as_secs_f64(),
            load_duration_s: inputs.planned.min(inputs.elapsed).as_secs_f64(),
            interrupted: inputs.interrupted,
            target: inputs.target,
            seed: inputs.seed,
            profile: inputs.profile,
            shard: inputs.shard,
            merged_from: inputs.merged_from,
            targets: inputs.targets,
            streams: stream_counts(&counts),
            messages: message_counts(&counts, inputs.elapsed),
            errors: errors_by_code(&counts.errors),
            disconnects: disconnects(&counts),
            error_rate: error_rate(&counts),
            reconnects: counts.reconnects,
            latency_ms: pct(Sample::Latency),
            time_to_first_message_ms: pct(Sample::TimeToFirstMessage),
            recovery_ms: pct(Sample::Recovery),
            stream_duration_ms: pct(Sample::StreamDuration),
            message_age_ms: pct(Sample::Age),
            backoff_ms: pct(Sample::Backoff),
            scenarios,
            server_faults: inputs.faults.map(|tally| reconcile::reconcile(&tally, &counts)),
            thresholds,
            peers: inputs.peers,
            timeline: inputs.timeline,
            phases: inputs.phases,
        }
    }

    /// True when every threshold held, and every expectation of the clients under test.
    pub fn passed(&self) -> bool {
        self.thresholds.passed && self.peers.as_ref().is_none_or(|peers| peers.expectations.passed)
    }
}
