//! The profile's `load` section compiled into a [`LoadPlan`]: where to send traffic, for how
//! long, over how many connections, and the scenarios — one per method, each with its
//! concurrent streams, request template, send rate, ramps, stop conditions and reconnect
//! policy — plus the thresholds the run is judged by. Syntax only: whether the methods exist
//! and the requests fit their messages is checked once the protos are loaded
//! ([`crate::client::compile_scenarios`]).

mod thresholds;

use std::path::Path;
use std::time::Duration;

use serde_json::Value as Json;

pub(super) use thresholds::split_condition;
pub use thresholds::{Comparison, Percentile, Threshold, ThresholdMetric};

use super::reader::{Reader, join};
use super::tls::TlsSection;
use super::{Profile, values};
use crate::diagnostic::Problems;
use crate::document::{Node, Position};

/// How long a run lasts when neither the profile nor `--duration` says.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);
/// Connections when the profile does not say.
pub const DEFAULT_CONNECTIONS: usize = 4;

const LOAD_FIELDS: &[&str] = &[
    "target",
    "upstream",
    "duration",
    "calls",
    "connections",
    "streams",
    "connect_timeout",
    "embedded",
    "progress_interval",
    "scenarios",
    "thresholds",
    "tls",
];
const SCENARIO_FIELDS: &[&str] = &[
    "method",
    "streams",
    "weight",
    "ramp",
    "request",
    "send_rate",
    "messages_per_stream",
    "stream_lifetime",
    "idle_timeout",
    "think_time",
    "reconnect",
    "sequence_field",
    "timestamp_field",
];
const RECONNECT_FIELDS: &[&str] =
    &["initial_backoff", "max_backoff", "multiplier", "jitter", "max_attempts", "resume"];

/// The compiled `load` section.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// Where the traffic goes.
    pub target: LoadTarget,
    /// A real server the embedded server relays to as `streamstorm proxy` would, so the
    /// chaos acts on the real server's streams (`load.upstream`, `simulate --upstream`).
    pub upstream: Option<super::UpstreamTarget>,
    /// How long the run lasts; `None` when the profile does not say (see [`DEFAULT_DURATION`]).
    pub duration: Option<Duration>,
    /// A total number of call attempts after which the run ends (whichever comes first).
    pub calls: Option<u64>,
    /// HTTP/2 connections; streams are spread over them.
    pub connections: usize,
    /// How long to wait for a connection before a call counts as failed.
    pub connect_timeout: Duration,
    /// How the embedded server answers streaming methods nothing else answers.
    pub embedded: EmbeddedStreams,
    /// Gap between progress lines; `None` lets the printer choose from the duration.
    pub progress_interval: Option<Duration>,
    pub scenarios: Vec<ScenarioSpec>,
    pub thresholds: Vec<Threshold>,
    /// `load.tls`: connect over TLS (with the embedded server, it follows `server.tls`).
    pub tls: Option<TlsSection>,
}

/// `load.target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadTarget {
    /// The profile's own server, started in-process.
    Embedded,
    /// A running server at `host:port`.
    Address(String),
}

/// `load.embedded`: the default responder's server streams, so streams without stubs last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedStreams {
    /// Messages per server stream.
    pub stream_messages: u32,
    /// Gap between them (chaos latency comes on top).
    pub stream_interval: Duration,
}

impl Default for EmbeddedStreams {
    fn default() -> Self {
        Self { stream_messages: u32::MAX, stream_interval: Duration::from_millis(100) }
    }
}

/// One entry of `load.scenarios`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSpec {
    /// `package.Service/Method` as written.
    pub method: String,
    /// Where the method name is, for problems found against the protos.
    pub method_at: Position,
    /// `load.scenarios[0]`.
    pub field: String,
    /// Concurrent stream slots (for unary methods, concurrent callers): `streams`, or this
    /// scenario's share of `load.streams` by `weight`.
    pub streams: u32,
    /// Streams ramp from `ramp.from` to `streams`.
    pub ramp: Option<Ramp>,
    /// The request (or each client message) as JSON whose strings may hold templates.
    pub request: Json,
    pub request_at: Position,
    /// Messages per second per stream for client and bidi streaming; `None`: as fast as
    /// replies come (bidi) or back to back (client streaming).
    pub send_rate: Option<SendRate>,
    /// The client ends a stream after this many messages (sent for client and bidi
    /// streaming, received for server streaming).
    pub messages_per_stream: Option<u64>,
    /// The client ends a stream after this long.
    pub stream_lifetime: Option<Duration>,
    /// A stream silent this long is given up as stalled (counted as an `idle_timeout`).
    pub idle_timeout: Option<Duration>,
    /// Pause before a slot opens its next call after one ends cleanly: uniform in the range.
    pub think_time: Option<(Duration, Duration)>,
    pub reconnect: ReconnectPolicy,
    /// A numeric field of the response whose gaps count missed messages.
    pub sequence_field: Option<String>,
    /// A `google.protobuf.Timestamp` (or RFC 3339 / epoch-millisecond) field of the response
    /// giving each message's end-to-end age.
    pub timestamp_field: Option<String>,
}

/// `send_rate: 50` or `send_rate: {per_second: 50, ramp: {...}}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendRate {
    pub per_second: f64,
    pub ramp: Option<Ramp>,
}

/// A ramp from `from` to the target value over `over`: linear, or in `steps` equal steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    pub from: f64,
    pub over: Duration,
    pub steps: Option<u32>,
}

impl Ramp {
    /// The value `elapsed` into the run, heading for `target`.
    pub fn value_at(&self, target: f64, elapsed: Duration) -> f64 {
        if self.over.is_zero() || elapsed >= self.over {
            return target;
        }
        let mut progress = elapsed.as_secs_f64() / self.over.as_secs_f64();
        if let Some(steps) = self.steps.filter(|steps| *steps > 0) {
            // Step k of n holds (k/n) of the way from its start until the next step.
            progress = ((progress * f64::from(steps)).floor() + 1.0) / f64::from(steps);
            progress = progress.min(1.0);
        }
        self.from + (target - self.from) * progress
    }
}

/// What a client does after a call fails: gRPC's connection backoff (initial, multiplier,
/// jitter, maximum), a cap on consecutive failed attempts, and whether the re-opened stream
/// continues the old one (its sequence numbers are expected to carry on).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectPolicy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub multiplier: f64,
    /// Each backoff is spread uniformly by ± this fraction.
    pub jitter: f64,
    /// Consecutive failed attempts after which the slot gives up; `None`: never.
    pub max_attempts: Option<u32>,
    pub resume: bool,
}

impl Default for ReconnectPolicy {
    /// gRPC's connection-backoff defaults.
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(120),
            multiplier: 1.6,
            jitter: 0.2,
            max_attempts: None,
            resume: true,
        }
    }
}

impl ReconnectPolicy {
    /// The wait before retry number `attempt` (1 for the first retry); `spread` in [-1, 1]
    /// picks where in the jitter band it falls.
    pub fn backoff(&self, attempt: u32, spread: f64) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = (self.initial_backoff.as_secs_f64() * self.multiplier.powi(exponent))
            .min(self.max_backoff.as_secs_f64());
        let jittered = base * (1.0 + self.jitter * spread.clamp(-1.0, 1.0));
        // A `max_backoff` near the longest duration, jittered upwards, no longer fits one.
        Duration::try_from_secs_f64(jittered.max(0.0)).unwrap_or(Duration::MAX)
    }
}

/// Compiles `profile.load`; a profile without one gets an empty plan (no scenarios).
pub fn compile_load(profile: &Profile) -> Result<LoadPlan, Problems> {
    match compile_load_leniently(profile) {
        (Some(plan), problems) if problems.is_empty() => Ok(plan),
        (_, problems) => Err(problems),
    }
}

/// Compiles what can be compiled of `profile.load` (fields with problems left out), with
/// every problem, so that `validate` can go on to check the scenarios against the protos.
pub fn compile_load_leniently(profile: &Profile) -> (Option<LoadPlan>, Problems) {
    let Some(node) = profile.load.as_ref() else {
        return (Some(empty_plan()), Problems::default());
    };
    let mut reader = Reader::new(&profile.file);
    let plan = reader.load(node);
    reader.problems.0.sort_by_key(|problem| (problem.line, problem.column));
    (plan, reader.problems)
}

/// Compiles the `load` mapping of a profile read from `file` (for tests and tools).
pub fn compile_load_node(file: &Path, node: &Node) -> Result<LoadPlan, Problems> {
    let mut reader = Reader::new(file);
    let plan = reader.load(node);
    match plan {
        Some(plan) => reader.problems.into_result(plan),
        None => Err(reader.problems),
    }
}

fn empty_plan() -> LoadPlan {
    LoadPlan {
        target: LoadTarget::Embedded,
        upstream: None,
        duration: None,
        calls: None,
        connections: DEFAULT_CONNECTIONS,
        connect_timeout: Duration::from_secs(5),
        embedded: EmbeddedStreams::default(),
        progress_interval: None,
        scenarios: Vec::new(),
        thresholds: Vec::new(),
        tls: None,
    }
}

/// A positive finite number (multipliers, rates).
fn positive_number(node: &Node) -> values::Parsed<f64> {
    let value = match &node.value {
        crate::document::NodeValue::Number(number) => number.as_f64(),
        crate::document::NodeValue::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    value
        .filter(|value: &f64| value.is_finite() && *value > 0.0)
        .ok_or_else(|| format!("expected a number above 0 (e.g. 1.6), found {node}"))
}

fn target(node: &Node) -> values::Parsed<LoadTarget> {
    match node.as_str().map(str::trim) {
        Some("embedded") => Ok(LoadTarget::Embedded),
        Some(address)
            if address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()) =>
        {
            Ok(LoadTarget::Address(address.to_owned()))
        }
        _ => Err(format!("not a target: {node} (write embedded, or host:port like localhost:50051)")),
    }
}

impl Reader<'_> {
    fn load(&mut self, node: &Node) -> Option<LoadPlan> {
        self.mapping(node, "load", LOAD_FIELDS)?;
        let defaults = empty_plan();
        let total_streams = self.optional(node, "load", "streams", values::positive_u32);
        let scenarios = self.list(node.get("scenarios"), "load.scenarios", |reader, item, field| {
            reader.scenario(item, field, total_streams.is_some())
        });
        if node.get("scenarios").is_none() {
            self.problem(
                node.at,
                "load",
                "missing field 'scenarios' (e.g. scenarios: [{method: myapp.NotificationService/Subscribe, streams: 10}])",
            );
        }
        let embedded = node.get("embedded").and_then(|embedded| self.embedded(embedded));
        let plan = LoadPlan {
            target: self.optional(node, "load", "target", target).unwrap_or(defaults.target),
            upstream: self.optional(node, "load", "upstream", |node| values::text(node)?.trim().parse()),
            duration: self.optional(node, "load", "duration", values::positive_duration),
            calls: self.optional(node, "load", "calls", values::count).filter(|calls| *calls > 0),
            connections: self
                .optional(node, "load", "connections", values::positive_usize)
                .unwrap_or(defaults.connections),
            connect_timeout: self
                .optional(node, "load", "connect_timeout", values::positive_duration)
                .unwrap_or(defaults.connect_timeout),
            embedded: embedded.unwrap_or_default(),
            progress_interval: self.optional(node, "load", "progress_interval", values::positive_duration),
            scenarios: distribute_streams(scenarios, total_streams),
            thresholds: node
                .get("thresholds")
                .map(|thresholds| self.thresholds(thresholds, "load.thresholds"))
                .unwrap_or_default(),
            tls: node.get("tls").and_then(|tls| self.client_tls_at(tls, "load.tls")),
        };
        Some(plan)
    }

    fn embedded(&mut self, node: &Node) -> Option<EmbeddedStreams> {
        self.mapping(node, "load.embedded", &["stream_messages", "stream_interval"])?;
        let defaults = EmbeddedStreams::default();
        Some(EmbeddedStreams {
            stream_messages: self
                .optional(node, "load.embedded", "stream_messages", values::positive_u32)
                .unwrap_or(defaults.stream_messages),
            stream_interval: self
                .optional(node, "load.embedded", "stream_interval", values::duration)
                .unwrap_or(defaults.stream_interval),
        })
    }

    fn scenario(&mut self, node: &Node, field: &str, weighted: bool) -> Option<ScenarioSpec> {
        self.mapping(node, field, SCENARIO_FIELDS)?;
        let method = self.required(node, field, "method", "myapp.NotificationService/Subscribe", |node| {
            values::text(node).and_then(|text| match text.trim().trim_start_matches('/').split_once('/') {
                Some((service, method)) if !service.is_empty() && !method.is_empty() => {
                    Ok(format!("{service}/{method}"))
                }
                _ => Err(format!("not a method: {node} (write package.Service/Method)")),
            })
        });
        let streams = self.optional(node, field, "streams", values::positive_u32);
        let weight = self.optional(node, field, "weight", values::positive_u32);
        match (weighted, node.get("streams"), node.get("weight")) {
            (true, Some(value), _) => {
                let why = "load.streams shares the streams by weight: write weight here, not streams";
                self.problem(value.at, &join(field, "streams"), why);
            }
            (false, _, Some(value)) => {
                let why = "a weight shares load.streams: set load.streams, or write streams here";
                self.problem(value.at, &join(field, "weight"), why);
            }
            (false, None, None) => {
                self.problem(node.at, field, "missing field 'streams' (e.g. streams: 100)")
            }
            _ => {}
        }
        let request = node.get("request");
        let spec = ScenarioSpec {
            method: method?,
            method_at: node.get("method").map(|method| method.at).unwrap_or(node.at),
            field: field.to_owned(),
            streams: if weighted { weight.unwrap_or(1) } else { streams.unwrap_or(1) },
            ramp: node.get("ramp").and_then(|ramp| self.ramp(ramp, &join(field, "ramp"))),
            request: request.map(Node::to_json).unwrap_or_else(|| Json::Object(Default::default())),
            request_at: request.map(|request| request.at).unwrap_or(node.at),
            send_rate: node.get("send_rate").and_then(|rate| self.send_rate(rate, &join(field, "send_rate"))),
            messages_per_stream: self
                .optional(node, field, "messages_per_stream", values::count)
                .filter(|count| *count > 0),
            stream_lifetime: self.optional(node, field, "stream_lifetime", values::positive_duration),
            idle_timeout: self.optional(node, field, "idle_timeout", values::positive_duration),
            think_time: self.optional(node, field, "think_time", duration_range),
            reconnect: node
                .get("reconnect")
                .and_then(|reconnect| self.reconnect(reconnect, &join(field, "reconnect")))
                .unwrap_or_default(),
            sequence_field: self.optional(node, field, "sequence_field", values::text),
            timestamp_field: self.optional(node, field, "timestamp_field", values::text),
        };
        Some(spec)
    }

    fn ramp(&mut self, node: &Node, field: &str) -> Option<Ramp> {
        self.mapping(node, field, &["from", "over", "steps"])?;
        let over = self.required(node, field, "over", "10s", values::positive_duration);
        let from = self.optional(node, field, "from", |node| match &node.value {
            crate::document::NodeValue::Number(number) => number
                .as_f64()
                .filter(|value| *value >= 0.0)
                .ok_or_else(|| format!("expected a number from 0 up, found {node}")),
            _ => Err(format!("expected a number from 0 up, found {node}")),
        });
        let steps = self.optional(node, field, "steps", values::positive_u32);
        Some(Ramp { from: from.unwrap_or(0.0), over: over?, steps })
    }

    fn send_rate(&mut self, node: &Node, field: &str) -> Option<SendRate> {
        if node.as_map().is_none() {
            return self
                .parse(node, field, positive_number)
                .map(|per_second| SendRate { per_second, ramp: None });
        }
        self.mapping(node, field, &["per_second", "ramp"])?;
        let per_second = self.required(node, field, "per_second", "50", positive_number);
        let ramp = node.get("ramp").and_then(|ramp| self.ramp(ramp, &join(field, "ramp")));
        Some(SendRate { per_second: per_second?, ramp })
    }

    fn reconnect(&mut self, node: &Node, field: &str) -> Option<ReconnectPolicy> {
        self.mapping(node, field, RECONNECT_FIELDS)?;
        let defaults = ReconnectPolicy::default();
        let policy = ReconnectPolicy {
            initial_backoff: self
                .optional(node, field, "initial_backoff", values::duration)
                .unwrap_or(defaults.initial_backoff),
            max_backoff: self
                .optional(node, field, "max_backoff", values::duration)
                .unwrap_or(defaults.max_backoff),
            multiplier: self
                .optional(node, field, "multiplier", positive_number)
                .unwrap_or(defaults.multiplier),
            jitter: self.optional(node, field, "jitter", values::rate).unwrap_or(defaults.jitter),
            max_attempts: self.optional(node, field, "max_attempts", values::positive_u32),
            resume: self.optional(node, field, "resume", values::boolean).unwrap_or(defaults.resume),
        };
        if policy.max_backoff < policy.initial_backoff {
            if let Some(max) = node.get("max_backoff") {
                self.problem(max.at, &join(field, "max_backoff"), "must not be shorter than initial_backoff");
            }
        }
        Some(policy)
    }
}

/// `think_time: 100ms..1s` or one duration.
fn duration_range(node: &Node) -> values::Parsed<(Duration, Duration)> {
    let not_a_span = || format!("not a duration or range: {node} (write e.g. 500ms or 100ms..1s)");
    Ok(match values::duration_span(node, not_a_span)? {
        values::DurationSpan::One(duration) => (duration, duration),
        values::DurationSpan::Range(low, high) => (low, high),
    })
}

/// With `load.streams: N`, the scenarios share N slots in proportion to their weights, which
/// they carry in `streams` until now (largest remainder, at least one each).
fn distribute_streams(mut scenarios: Vec<ScenarioSpec>, total: Option<u32>) -> Vec<ScenarioSpec> {
    let Some(total) = total else { return scenarios };
    let weights: Vec<u32> = scenarios.iter().map(|spec| spec.streams).collect();
    let sum: u64 = weights.iter().map(|weight| u64::from(*weight)).sum();
    if sum == 0 {
        return scenarios;
    }
    let mut shares: Vec<(usize, u32, f64)> = weights
        .iter()
        .enumerate()
        .map(|(index, weight)| {
            let exact = f64::from(total) * f64::from(*weight) / sum as f64;
            (index, exact.floor() as u32, exact - exact.floor())
        })
        .collect();
    let assigned: u32 = shares.iter().map(|share| share.1).sum();
    let mut remainder = total.saturating_sub(assigned);
    shares.sort_by(|a, b| b.2.total_cmp(&a.2));
    for share in &mut shares {
        if remainder == 0 {
            break;
        }
        share.1 += 1;
        remainder -= 1;
    }
    for (index, streams, _) in shares {
        scenarios[index].streams = streams.max(1);
    }
    scenarios
}

#[cfg(test)]
mod tests;
