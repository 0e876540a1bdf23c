//! Judging a run by its thresholds: each measured in base units, compared, and reported with
//! how far it missed (or cleared) its limit.

use std::time::Duration;

use serde::Serialize;

use super::error_rate;
use crate::client::{Sample, ScenarioStats};
use crate::config::load::{Comparison, Threshold, ThresholdMetric};

#[derive(Debug, Clone, Serialize)]
pub struct ThresholdsReport {
    pub passed: bool,
    pub results: Vec<ThresholdOutcome>,
}

/// One threshold's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdOutcome {
    /// The key as written (`p99_latency`).
    pub name: String,
    /// The condition as written (`< 500ms`).
    pub condition: String,
    /// The measured value in base units (fraction, seconds, per second, count); null when
    /// nothing was measured (no samples), which passes.
    pub measured: Option<f64>,
    pub limit: f64,
    pub passed: bool,
    /// How far the measurement is past the limit, in base units (positive = failed by).
    pub excess: f64,
    /// Base unit of `measured`, `limit` and `excess`.
    pub unit: &'static str,
}

fn measure(metric: ThresholdMetric, total: &ScenarioStats, elapsed: Duration) -> Option<f64> {
    let quantile = |sample: Sample, quantile: f64| {
        let histogram = total.histogram(sample);
        (!histogram.is_empty()).then(|| histogram.value_at_quantile(quantile) as f64 / 1e6)
    };
    match metric {
        ThresholdMetric::ErrorRate => Some(error_rate(&total.counts)),
        ThresholdMetric::Latency(p) => quantile(Sample::Latency, p.quantile()),
        ThresholdMetric::TimeToFirstMessage(p) => quantile(Sample::TimeToFirstMessage, p.quantile()),
        ThresholdMetric::RecoveryTime(p) => quantile(Sample::Recovery, p.quantile()),
        ThresholdMetric::MessagesPerSecond => {
            Some(total.counts.messages_received as f64 / elapsed.as_secs_f64().max(1e-3))
        }
        ThresholdMetric::StreamsGivenUp => Some(total.counts.given_up as f64),
        ThresholdMetric::Errors => Some(total.counts.calls_failed as f64),
    }
}

fn unit(metric: ThresholdMetric) -> &'static str {
    match metric {
        ThresholdMetric::ErrorRate => "fraction",
        ThresholdMetric::MessagesPerSecond => "per_second",
        ThresholdMetric::StreamsGivenUp | ThresholdMetric::Errors => "count",
        _ => "seconds",
    }
}

pub fn evaluate(thresholds: &[Threshold], total: &ScenarioStats, elapsed: Duration) -> ThresholdsReport {
    let results: Vec<ThresholdOutcome> = thresholds
        .iter()
        .map(|threshold| {
            let measured = measure(threshold.metric, total, elapsed);
            let passed = measured.is_none_or(|value| threshold.comparison.holds(value, threshold.limit));
            let excess = measured.map_or(0.0, |value| match threshold.comparison {
                Comparison::Less | Comparison::LessOrEqual => value - threshold.limit,
                Comparison::Greater | Comparison::GreaterOrEqual => threshold.limit - value,
            });
            ThresholdOutcome {
                name: threshold.name.clone(),
                condition: threshold.condition.clone(),
                measured,
                limit: threshold.limit,
                passed,
                excess,
                unit: unit(threshold.metric),
            }
        })
        .collect();
    ThresholdsReport { passed: results.iter().all(|result| result.passed), results }
}
