//! `load.thresholds`, like k6's: each key names a measurement, each value a comparison
//! (`"< 10%"`, `"<= 500ms"`, `"> 1000"`). The run fails (exit code 1) when any does not hold.

use std::fmt;
use std::time::Duration;

use super::super::reader::{Reader, join};
use super::super::values::{self, Parsed};
use crate::document::{Node, NodeValue, Position};

/// A percentile of a latency histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Percentile {
    P50,
    P90,
    P99,
    P999,
    Max,
}

impl Percentile {
    /// The quantile in 0..=1.
    pub fn quantile(self) -> f64 {
        match self {
            Self::P50 => 0.5,
            Self::P90 => 0.9,
            Self::P99 => 0.99,
            Self::P999 => 0.999,
            Self::Max => 1.0,
        }
    }
}

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdMetric {
    /// Failed call attempts over all call attempts (0..=1).
    ErrorRate,
    /// Per-message latency, in seconds.
    Latency(Percentile),
    /// Time from opening a call to its first message, in seconds.
    TimeToFirstMessage(Percentile),
    /// Time from a failure to the next first message (time to recover), in seconds.
    RecoveryTime(Percentile),
    /// Messages received per second over the run.
    MessagesPerSecond,
    /// Stream slots that gave up after `reconnect.max_attempts`.
    StreamsGivenUp,
    /// Failed call attempts, counted (across every shard when shard reports are merged).
    Errors,
}

/// How the measured value must compare with the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    pub fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            Self::Less => measured < limit,
            Self::LessOrEqual => measured <= limit,
            Self::Greater => measured > limit,
            Self::GreaterOrEqual => measured >= limit,
        }
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Less => "<",
            Self::LessOrEqual => "<=",
            Self::Greater => ">",
            Self::GreaterOrEqual => ">=",
        })
    }
}

/// One compiled threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The key as written (`p99_latency`), which the report names.
    pub name: String,
    pub metric: ThresholdMetric,
    pub comparison: Comparison,
    /// In base units: a fraction, seconds, messages per second or a count.
    pub limit: f64,
    /// The condition as written (`< 500ms`).
    pub condition: String,
    pub at: Position,
}

/// The value syntax a threshold's limit takes.
#[derive(Clone, Copy)]
enum Unit {
    Fraction,
    Seconds,
    Number,
}

/// Every threshold key, with what it measures and the syntax of its limit.
const KEYS: &[(&str, ThresholdMetric, Unit)] = {
    use Percentile::*;
    use ThresholdMetric::*;
    &[
        ("error_rate", ErrorRate, Unit::Fraction),
        ("p50_latency", Latency(P50), Unit::Seconds),
        ("p90_latency", Latency(P90), Unit::Seconds),
        ("p99_latency", Latency(P99), Unit::Seconds),
        ("p999_latency", Latency(P999), Unit::Seconds),
        ("max_latency", Latency(Max), Unit::Seconds),
        ("p50_time_to_first_message", TimeToFirstMessage(P50), Unit::Seconds),
        ("p99_time_to_first_message", TimeToFirstMessage(P99), Unit::Seconds),
        ("p50_recovery_time", RecoveryTime(P50), Unit::Seconds),
        ("p99_recovery_time", RecoveryTime(P99), Unit::Seconds),
        ("max_recovery_time", RecoveryTime(Max), Unit::Seconds),
        ("messages_per_second", MessagesPerSecond, Unit::Number),
        ("streams_given_up", StreamsGivenUp, Unit::Number),
        ("errors", Errors, Unit::Number),
    ]
};

/// `< 10%`, `<=500ms`, `> 1000`: the comparison and the rest of the text.
pub(in crate::config) fn split_condition(text: &str) -> Option<(Comparison, &str)> {
    let text = text.trim();
    for (prefix, comparison) in [
        ("<=", Comparison::LessOrEqual),
        (">=", Comparison::GreaterOrEqual),
        ("<", Comparison::Less),
        (">", Comparison::Greater),
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return Some((comparison, rest.trim()));
        }
    }
    None
}

fn limit(unit: Unit, text: &str, at: Position) -> Parsed<f64> {
    let node = Node { value: NodeValue::String(text.to_owned()), at };
    match unit {
        Unit::Fraction => values::rate(&node),
        Unit::Seconds => values::duration(&node).map(|duration: Duration| duration.as_secs_f64()),
        Unit::Number => text
            .parse::<f64>()
            .ok()
            .filter(|value| value.is_finite() && *value >= 0.0)
            .ok_or_else(|| format!("not a number: {text:?}")),
    }
}

fn example(unit: Unit) -> &'static str {
    match unit {
        Unit::Fraction => "\"< 5%\"",
        Unit::Seconds => "\"< 500ms\"",
        Unit::Number => "\"> 1000\"",
    }
}

impl Reader<'_> {
    /// Every entry of the `thresholds` mapping, unknown keys and bad conditions reported.
    pub(in crate::config) fn thresholds(&mut self, node: &Node, field: &str) -> Vec<Threshold> {
        let names: Vec<&str> = KEYS.iter().map(|(name, _, _)| *name).collect();
        let Some(entries) = self.mapping(node, field, &names) else { return Vec::new() };
        let mut thresholds = Vec::new();
        for (key, value) in entries {
            let Some((_, metric, unit)) = KEYS.iter().find(|(name, _, _)| *name == key.name) else {
                continue;
            };
            let key_field = join(field, &key.name);
            let parsed = self.parse(value, &key_field, |value| {
                let text = match &value.value {
                    NodeValue::String(text) => text.clone(),
                    _ => return Err(format!("expected a condition like {}, found {value}", example(*unit))),
                };
                let (comparison, rest) = split_condition(&text).ok_or_else(|| {
                    format!("a condition starts with <, <=, > or >= (e.g. {}), found {value}", example(*unit))
                })?;
                let limit = limit(*unit, rest, value.at)
                    .map_err(|why| format!("{why} in {value} (e.g. {})", example(*unit)))?;
                Ok((comparison, limit, text.trim().to_owned()))
            });
            if let Some((comparison, limit, condition)) = parsed {
                thresholds.push(Threshold {
                    name: key.name.clone(),
                    metric: *metric,
                    comparison,
                    limit,
                    condition,
                    at: value.at,
                });
            }
        }
        thresholds
    }
}
