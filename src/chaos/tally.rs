//! Counting every injected fault by kind and status code: in process (for the simulator's
//! report, which reconciles them with what clients saw, and the admin endpoint) and as
//! `streamstorm_faults_injected_total{kind,code}` for Prometheus. Each fault is also logged at
//! debug with its stream id.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Histogram};
use tonic::Code;
use tracing::debug;

use super::plan::{DisconnectMode, FaultPlan, Faults};
use crate::proto::status::{CODE_COUNT, code_name};
use crate::telemetry::names;

/// What kind of fault was injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// The call ended with a status before any message.
    Abort,
    /// The stream ended with a status part-way.
    Fail,
    ResetStream,
    Goaway,
    TcpReset,
    Stall,
    Blackhole,
    /// The server stopped sending at its message cap.
    Cap,
    /// The client sent more messages than the inbound cap allows.
    InboundCap,
    /// The stream outlived its timeout.
    Timeout,
    /// A call refused by a call rate limit.
    RateLimited,
    /// A message delayed by injected latency.
    Latency,
    /// A connection drained with GOAWAY for reaching its maximum age.
    MaxAge,
    /// The proxy's connection to its upstream broken part-way.
    Upstream,
}

impl FaultKind {
    pub const ALL: [FaultKind; 14] = [
        Self::Abort,
        Self::Fail,
        Self::ResetStream,
        Self::Goaway,
        Self::TcpReset,
        Self::Stall,
        Self::Blackhole,
        Self::Cap,
        Self::InboundCap,
        Self::Timeout,
        Self::RateLimited,
        Self::Latency,
        Self::MaxAge,
        Self::Upstream,
    ];

    /// The name used in metrics labels, reports and profiles.
    pub fn name(self) -> &'static str {
        match self {
            Self::Abort => "abort",
            Self::Fail => "fail",
            Self::ResetStream => "reset_stream",
            Self::Goaway => "goaway",
            Self::TcpReset => "tcp_reset",
            Self::Stall => "stall",
            Self::Blackhole => "blackhole",
            Self::Cap => "cap",
            Self::InboundCap => "inbound_cap",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::Latency => "latency",
            Self::MaxAge => "max_age",
            Self::Upstream => "upstream",
        }
    }
}

impl From<DisconnectMode> for FaultKind {
    fn from(mode: DisconnectMode) -> Self {
        match mode {
            DisconnectMode::ResetStream { .. } => Self::ResetStream,
            DisconnectMode::Goaway { .. } => Self::Goaway,
            DisconnectMode::TcpReset => Self::TcpReset,
            DisconnectMode::Stall => Self::Stall,
            DisconnectMode::Blackhole => Self::Blackhole,
        }
    }
}

/// gRPC codes 0..=16, plus one slot for faults that end without a status.
const CODE_SLOTS: usize = CODE_COUNT + 1;
const NO_CODE: usize = CODE_COUNT;

/// The `code` label of a fault that carries no gRPC status (a disconnect, a delay).
pub const NO_CODE_LABEL: &str = "none";

/// One cell of the tally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultCount {
    pub kind: FaultKind,
    /// The status the fault ended the stream with, if any.
    pub code: Option<Code>,
    pub count: u64,
}

/// Faults injected so far, by kind and code.
pub struct FaultTally {
    counts: [[AtomicU64; CODE_SLOTS]; FaultKind::ALL.len()],
    /// Prometheus counters: registered at zero for what the plan can inject ([`FaultTally::register`]),
    /// otherwise on first use, so the series are bounded by the plan and what happened.
    counters: [[OnceLock<Counter>; CODE_SLOTS]; FaultKind::ALL.len()],
    injected_latency: OnceLock<Histogram>,
    /// How late delayed or paced messages went out against their schedule.
    schedule_error: OnceLock<Histogram>,
    /// Messages streams had sent when a `reset_stream` fault reset them.
    messages_before_resets: AtomicU64,
    /// Set when the run's books are closed ([`FaultTally::close_books`]).
    closed: AtomicBool,
}

/// What the report needs of the tally at the end of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TallySummary {
    pub faults: Vec<FaultCount>,
    /// Messages sent by streams before a `reset_stream` fault reset them: those that did not
    /// arrive were discarded in flight by the reset.
    pub messages_before_resets: u64,
}

impl Default for FaultTally {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            counters: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            injected_latency: OnceLock::new(),
            schedule_error: OnceLock::new(),
            messages_before_resets: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for FaultTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.snapshot()).finish()
    }
}

impl FaultTally {
    /// Counts one `kind` fault on `stream_id`, ending it with `code` if it carries a status.
    pub fn record(&self, kind: FaultKind, code: Option<Code>, stream_id: u64) {
        let slot = code.map_or(NO_CODE, |code| code as usize);
        self.counts[kind as usize][slot].fetch_add(1, Ordering::Relaxed);
        self.counter(kind, slot, code).increment(1);
        if kind != FaultKind::Latency {
            debug!(stream_id, kind = kind.name(), code = code.map(code_name), "Injected fault.");
        }
    }

    /// Counts a fault that ends a stream with a status or a reset, if the books are still open;
    /// false when they are closed, and the fault must not be injected.
    pub fn admit(&self, kind: FaultKind, code: Option<Code>, stream_id: u64) -> bool {
        let open = !self.closed.load(Ordering::Acquire);
        if open {
            self.record(kind, code, stream_id);
        }
        open
    }

    /// Closes the books before a run cuts its open streams: from here on, faults that end a
    /// stream are no longer admitted, so none can be on its way to a client the cut stops
    /// listening (which would count it injected and never observed).
    pub fn close_books(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Registers at zero the `faults_injected_total` series `plan` can produce, so dashboards
    /// show 0 rather than no data before the first fault of each kind.
    pub fn register(&self, plan: &FaultPlan) {
        let layers =
            plan.rules.iter().map(|rule| &rule.faults).chain(plan.phases.iter().map(|phase| &phase.faults));
        for faults in layers.chain([&plan.base]) {
            for (kind, code) in series(faults) {
                let slot = code.map_or(NO_CODE, |code| code as usize);
                self.counter(kind, slot, code);
            }
        }
        let connections = &plan.connections;
        if connections.max_age.is_some() {
            self.counter(FaultKind::MaxAge, NO_CODE, None);
        }
        if connections.calls_per_second.is_some() {
            let code = Code::ResourceExhausted;
            self.counter(FaultKind::RateLimited, code as usize, Some(code));
        }
    }

    fn counter(&self, kind: FaultKind, slot: usize, code: Option<Code>) -> &Counter {
        self.counters[kind as usize][slot].get_or_init(|| {
            let code = code.map_or(NO_CODE_LABEL, code_name);
            metrics::counter!(names::FAULTS_INJECTED, "kind" => kind.name(), "code" => code)
        })
    }

    /// Counts a message delayed by `delay`.
    pub fn record_latency(&self, delay: Duration, stream_id: u64) {
        self.record(FaultKind::Latency, None, stream_id);
        self.injected_latency
            .get_or_init(|| metrics::histogram!(names::INJECTED_LATENCY))
            .record(delay.as_secs_f64());
    }

    /// Records how long after its scheduled time a delayed or paced message went out.
    pub fn record_schedule_error(&self, late: Duration) {
        self.schedule_error
            .get_or_init(|| metrics::histogram!(names::SCHEDULE_ERROR))
            .record(late.as_secs_f64());
    }

    /// Counts the messages a stream had sent when it was reset.
    pub fn record_messages_before_reset(&self, messages: u64) {
        self.messages_before_resets.fetch_add(messages, Ordering::Relaxed);
    }

    /// The counts and the messages sent before resets.
    pub fn summary(&self) -> TallySummary {
        TallySummary {
            faults: self.snapshot(),
            messages_before_resets: self.messages_before_resets.load(Ordering::Relaxed),
        }
    }

    /// Every non-zero count.
    pub fn snapshot(&self) -> Vec<FaultCount> {
        let mut counts = Vec::new();
        for kind in FaultKind::ALL {
            for (slot, count) in self.counts[kind as usize].iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let code = (slot != NO_CODE).then(|| Code::from_i32(slot as i32));
                    counts.push(FaultCount { kind, code, count });
                }
            }
        }
        counts
    }

    /// Faults of `kind`, whatever their code.
    pub fn total(&self, kind: FaultKind) -> u64 {
        self.counts[kind as usize].iter().map(|count| count.load(Ordering::Relaxed)).sum()
    }
}

/// The (kind, code) series one layer of a plan can count.
fn series(faults: &Faults) -> Vec<(FaultKind, Option<Code>)> {
    let mut series = Vec::new();
    let codes = |codes: &super::plan::Codes| codes.0.iter().map(|(code, _)| Some(*code)).collect::<Vec<_>>();
    if let Some(abort) = &faults.abort {
        series.extend(codes(&abort.codes).into_iter().map(|code| (FaultKind::Abort, code)));
    }
    if let Some(fail) = &faults.fail {
        series.extend(codes(&fail.codes).into_iter().map(|code| (FaultKind::Fail, code)));
    }
    if let Some(disconnect) = &faults.disconnect {
        series.push((FaultKind::from(disconnect.mode), None));
    }
    if let Some(cap) = faults.message_cap {
        series.push((FaultKind::Cap, (cap.code != Code::Ok).then_some(cap.code)));
    }
    if faults.inbound_cap.is_some() {
        series.push((FaultKind::InboundCap, Some(Code::ResourceExhausted)));
    }
    if let Some(timeout) = faults.stream_timeout {
        series.push((FaultKind::Timeout, Some(timeout.code)));
    }
    if faults.rate_limit.is_some_and(|limit| limit.calls_per_second.is_some()) {
        series.push((FaultKind::RateLimited, Some(Code::ResourceExhausted)));
    }
    if faults.latency.is_some() || faults.request_latency.is_some() {
        series.push((FaultKind::Latency, None));
    }
    if faults.upstream.is_some() {
        series.push((FaultKind::Upstream, Some(Code::Unavailable)));
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_code() {
        let tally = FaultTally::default();
        tally.record(FaultKind::Abort, Some(Code::Unavailable), 1);
        tally.record(FaultKind::Abort, Some(Code::Unavailable), 2);
        tally.record(FaultKind::Abort, Some(Code::Internal), 3);
        tally.record(FaultKind::ResetStream, None, 4);
        tally.record_latency(Duration::from_millis(5), 5);
        assert_eq!(
            tally.snapshot(),
            vec![
                FaultCount { kind: FaultKind::Abort, code: Some(Code::Internal), count: 1 },
                FaultCount { kind: FaultKind::Abort, code: Some(Code::Unavailable), count: 2 },
                FaultCount { kind: FaultKind::ResetStream, code: None, count: 1 },
                FaultCount { kind: FaultKind::Latency, code: None, count: 1 },
            ]
        );
        assert_eq!(tally.total(FaultKind::Abort), 3);
        assert_eq!(tally.total(FaultKind::Fail), 0);
    }

    #[test]
    fn closed_books_admit_nothing_more() {
        let tally = FaultTally::default();
        assert!(tally.admit(FaultKind::Fail, Some(Code::Internal), 1));
        tally.close_books();
        assert!(!tally.admit(FaultKind::Fail, Some(Code::Internal), 2));
        assert!(!tally.admit(FaultKind::ResetStream, None, 3));
        assert_eq!(
            tally.snapshot(),
            vec![FaultCount { kind: FaultKind::Fail, code: Some(Code::Internal), count: 1 }]
        );
    }
}
