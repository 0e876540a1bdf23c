//! Live progress while the load runs: on a terminal a compact live view (an indicatif bar with
//! streams active, msgs/s, p50/p99, errors/s, reconnects, elapsed/remaining); elsewhere one
//! summary line per interval; nothing with `--quiet`. Every tick also becomes a
//! [`TimelinePoint`], which the report and the plot use.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::client::Collector;
use crate::client::stats::{Counts, LatencyWindow};

/// One interval of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since the start, at the end of the interval.
    pub t_s: f64,
    /// Wall-clock time at the end of the interval (seconds since the Unix epoch), on which
    /// `report merge` aligns the shards' timelines.
    pub unix_s: f64,
    /// The interval's length in seconds.
    pub interval_s: f64,
    /// Messages received and calls failed during the interval.
    pub messages: u64,
    pub errors: u64,
    pub messages_per_second: f64,
    pub errors_per_second: f64,
    pub streams_active: u64,
    pub reconnects: u64,
    /// Latency in this interval alone (0 when none was measured).
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The interval's latency, serialized ([`super::histograms`]).
    pub latency_histogram: String,
}

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A live view redrawn in place (stderr is a terminal).
    Live,
    /// One line per interval on stderr.
    Lines,
    /// Nothing until the report.
    Quiet,
}

/// The progress task; [`Progress::finish`] stops it and returns the timeline.
pub struct Progress {
    stop: CancellationToken,
    task: JoinHandle<Vec<TimelinePoint>>,
}

/// The interval to print at when the profile does not say: every second for short runs.
pub fn default_interval(duration: Duration) -> Duration {
    if duration <= Duration::from_secs(120) { Duration::from_secs(1) } else { Duration::from_secs(5) }
}

impl Progress {
    pub fn spawn(
        collector: Arc<Collector>,
        started: Instant,
        duration: Duration,
        interval: Duration,
        mode: ProgressMode,
    ) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(collector, started, duration, interval, mode, stop.clone()));
        Self { stop, task }
    }

    /// Stops the ticks and returns one point per interval, plus the last partial one.
    pub async fn finish(self) -> Vec<TimelinePoint> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

async fn run(
    collector: Arc<Collector>,
    started: Instant,
    duration: Duration,
    interval: Duration,
    mode: ProgressMode,
    stop: CancellationToken,
) -> Vec<TimelinePoint> {
    let bar = (mode == ProgressMode::Live).then(|| live_bar(duration));
    let mut ticker = tokio::time::interval_at(started + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut timeline = Vec::new();
    let (mut previous, mut previous_at) = (Counts::default(), started);
    loop {
        let stopping = tokio::select! {
            _ = ticker.tick() => false,
            _ = stop.cancelled() => true,
        };
        let now = Instant::now();
        let counts = collector.counts();
        let latency = collector.take_latency(LatencyWindow::Progress);
        let seconds = (now - previous_at).as_secs_f64().max(1e-3);
        let ms = |quantile: f64| {
            if latency.is_empty() { 0.0 } else { latency.value_at_quantile(quantile) as f64 / 1000.0 }
        };
        let messages = counts.messages_received - previous.messages_received;
        let errors = counts.calls_failed - previous.calls_failed;
        let point = TimelinePoint {
            t_s: (now - started).as_secs_f64(),
            unix_s: unix_seconds(std::time::SystemTime::now()),
            interval_s: seconds,
            messages,
            errors,
            messages_per_second: messages as f64 / seconds,
            errors_per_second: errors as f64 / seconds,
            streams_active: collector.active_calls(),
            reconnects: counts.reconnects,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
            max_ms: if latency.is_empty() { 0.0 } else { latency.max() as f64 / 1000.0 },
            latency_histogram: super::histograms::encode(&latency),
        };
        (previous, previous_at) = (counts, now);
        let line = describe(&point, duration);
        match (&bar, mode) {
            (Some(bar), _) => {
                bar.set_position(point.t_s.min(duration.as_secs_f64()) as u64);
                bar.set_message(line);
            }
            (None, ProgressMode::Lines) if !stopping => eprintln!("{line}"),
            _ => {}
        }
        if !stopping || seconds > interval.as_secs_f64() / 4.0 {
            timeline.push(point);
        }
        if stopping {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    timeline
}

/// Seconds since the Unix epoch.
pub fn unix_seconds(time: std::time::SystemTime) -> f64 {
    time.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |since| since.as_secs_f64())
}

fn live_bar(duration: Duration) -> ProgressBar {
    let bar = ProgressBar::new(duration.as_secs().max(1));
    let style =
        ProgressStyle::with_template("{spinner} [{elapsed_precise} / -{eta_precise}] {wide_bar} \n  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// `[ 5s/20s] 1020 streams | 8123 msg/s | p50 102ms p99 340ms | 12.0 err/s | 34 reconnects`.
fn describe(point: &TimelinePoint, duration: Duration) -> String {
    format!(
        "[{:>4.0}s/{}s] {} streams | {:.0} msg/s | p50 {:.1}ms p99 {:.1}ms | {:.1} err/s | {} reconnects",
        point.t_s,
        duration.as_secs(),
        point.streams_active,
        point.messages_per_second,
        point.p50_ms,
        point.p99_ms,
        point.errors_per_second,
        point.reconnects
    )
}
