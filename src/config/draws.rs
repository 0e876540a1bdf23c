//! The profile values that describe a random draw rather than one value: latency
//! distributions, when a mid-stream fault strikes, and weighted status codes. They may be
//! mappings, so they are read through the [`Reader`] and report nested field paths.

use tonic::Code;

use super::reader::{Reader, join};
use super::values::{self, DurationSpan, Parsed};
use crate::chaos::plan::{After, Codes, Distribution};
use crate::document::{Node, NodeValue};

const DISTRIBUTION_FORMS: &[&str] = &["normal", "lognormal", "p50", "p99"];
const DISTRIBUTION_HINT: &str =
    "write 10ms, 10ms..100ms, {normal: {mean, stddev}}, {lognormal: {median, sigma}} or {p50, p99}";

/// `10ms..100ms` as a uniform draw, or one duration as a fixed one.
fn duration_or_range(node: &Node) -> Parsed<Distribution> {
    Ok(match values::duration_span(node, || format!("not a latency: {node} ({DISTRIBUTION_HINT})"))? {
        DurationSpan::One(duration) => Distribution::Fixed(duration),
        DurationSpan::Range(low, high) => Distribution::Uniform(low, high),
    })
}

/// A sigma for the log-normal: a finite number from 0 up.
fn sigma(node: &Node) -> Parsed<f64> {
    match &node.value {
        NodeValue::Number(number) => number.as_f64().filter(|sigma| sigma.is_finite() && *sigma >= 0.0),
        _ => None,
    }
    .ok_or_else(|| format!("expected a number from 0 up (e.g. 0.5), found {node}"))
}

impl Reader<'_> {
    /// A latency distribution in any of its forms.
    pub(super) fn distribution(&mut self, node: &Node, field: &str) -> Option<Distribution> {
        if node.as_map().is_none() {
            return self.parse(node, field, duration_or_range);
        }
        let entries = self.mapping(node, field, DISTRIBUTION_FORMS)?;
        let present: Vec<&str> =
            DISTRIBUTION_FORMS.iter().copied().filter(|form| node.get(form).is_some()).collect();
        match present.as_slice() {
            ["normal"] => {
                let (inner, inner_field) = (node.get("normal")?, join(field, "normal"));
                self.mapping(inner, &inner_field, &["mean", "stddev"])?;
                let mean = self.required(inner, &inner_field, "mean", "50ms", values::duration);
                let stddev = self.required(inner, &inner_field, "stddev", "10ms", values::duration);
                Some(Distribution::Normal { mean: mean?, stddev: stddev? })
            }
            ["lognormal"] => {
                let (inner, inner_field) = (node.get("lognormal")?, join(field, "lognormal"));
                self.mapping(inner, &inner_field, &["median", "sigma"])?;
                let median = self.required(inner, &inner_field, "median", "50ms", values::positive_duration);
                let sigma = self.required(inner, &inner_field, "sigma", "0.5", sigma);
                Some(Distribution::LogNormal { median: median?, sigma: sigma? })
            }
            ["p50"] | ["p99"] | ["p50", "p99"] => {
                let p50 = self.required(node, field, "p50", "20ms", values::positive_duration);
                let p99 = self.required(node, field, "p99", "250ms", values::positive_duration);
                let (p50, p99) = (p50?, p99?);
                if p50 > p99 {
                    self.problem(node.at, field, "p50 must not be longer than p99");
                    return None;
                }
                Some(Distribution::Percentiles { p50, p99 })
            }
            // Only unknown keys: already reported.
            [] if !entries.is_empty() => None,
            _ => {
                let found = if present.is_empty() { "nothing".to_owned() } else { present.join(" and ") };
                self.problem(
                    node.at,
                    field,
                    format!("a distribution is one form, found {found} ({DISTRIBUTION_HINT})"),
                );
                None
            }
        }
    }

    /// `after_messages: 3..20` or `after: 5s` (any distribution); one is required.
    pub(super) fn after(&mut self, map: &Node, field: &str) -> Option<After> {
        if !self.exclusive(map, field, "after_messages", "after") {
            return None;
        }
        if let Some(count) = map.get("after_messages") {
            return self
                .parse(count, &join(field, "after_messages"), values::count_range)
                .map(After::Messages);
        }
        if let Some(elapsed) = map.get("after") {
            return self.distribution(elapsed, &join(field, "after")).map(After::Elapsed);
        }
        self.problem(
            map.at,
            field,
            "missing field 'after_messages' or 'after' (e.g. after_messages: 3..20 or after: 5s)",
        );
        None
    }

    /// `code: X`, or `codes` weighted (`{UNAVAILABLE: 3, INTERNAL: 1}`) or equal (`[A, B]`);
    /// `default` when neither is written.
    pub(super) fn codes(&mut self, map: &Node, field: &str, default: Code) -> Option<Codes> {
        if !self.exclusive(map, field, "code", "codes") {
            return None;
        }
        if let Some(code) = map.get("code") {
            return self.parse(code, &join(field, "code"), values::code).map(|code| Codes(vec![(code, 1)]));
        }
        let Some(codes) = map.get("codes") else { return Some(Codes(vec![(default, 1)])) };
        let field = join(field, "codes");
        let (mut weighted, before) = (Vec::new(), self.problems.len());
        match &codes.value {
            NodeValue::Map(entries) => {
                for (key, weight) in entries {
                    let name = Node { value: NodeValue::String(key.name.clone()), at: key.at };
                    let code = self.parse(&name, &join(&field, &key.name), values::code);
                    let weight = self.parse(weight, &join(&field, &key.name), values::positive_u32);
                    weighted.extend(code.zip(weight));
                }
            }
            NodeValue::Seq(items) => {
                for (index, item) in items.iter().enumerate() {
                    weighted.extend(
                        self.parse(item, &format!("{field}[{index}]"), values::code).map(|code| (code, 1)),
                    );
                }
            }
            _ => {
                let message = format!(
                    "expected codes with weights like {{UNAVAILABLE: 3, INTERNAL: 1}}, found {codes}"
                );
                self.problem(codes.at, &field, message);
                return None;
            }
        }
        if weighted.is_empty() && self.problems.len() == before {
            self.problem(codes.at, &field, "name at least one code");
        }
        (self.problems.len() == before).then_some(Codes(weighted))
    }
}
