//! The scalar value syntaxes a profile accepts — durations, rates, status codes, counts, byte
//! sizes, addresses, method patterns — each parsed from one document node into its typed form,
//! or into a message that quotes the bad value and says what would be right. Where the value
//! sits (line, column, field path) is the caller's to add.

use std::time::Duration;

use tonic::Code;

use crate::chaos::plan::CountRange;
use crate::document::{Node, NodeValue};
use crate::proto::status::code_from_node;
use crate::stub::output::parse_go_duration;

/// The parsed value, or what is wrong with it.
pub type Parsed<T> = Result<T, String>;

/// The node of `v: <yaml>`, for tests of value syntaxes.
#[cfg(test)]
pub(super) fn node(yaml: &str) -> Node {
    let text = format!("v: {yaml}\n");
    let documents = crate::document::read_documents(std::path::Path::new("t.yaml"), &text).unwrap();
    documents[0].get("v").unwrap().clone()
}

const DURATION_HINT: &str = "write e.g. 500ms, 30s, 2m, 1.5s";

/// Parses duration text: humantime (`500ms`, `2m`, `1h 30m`, `1.5s`) or Go (`1m30s`).
pub fn parse_duration_text(text: &str) -> Option<Duration> {
    let text = text.trim();
    humantime::parse_duration(text).ok().or_else(|| parse_go_duration(text))
}

/// Parses a command-line duration flag (`--duration 20s`); the error suggests the form the
/// README uses, with the number given when it lacked a unit.
pub fn duration_flag(text: &str) -> Result<Duration, String> {
    if let Some(duration) = parse_duration_text(text) {
        return Ok(duration);
    }
    match text.trim().parse::<f64>() {
        Ok(number) => Err(format!("'{text}' has no unit: write {number}s (or e.g. {number}ms, 2m)")),
        Err(_) => Err(format!("not a duration: '{text}' ({DURATION_HINT})")),
    }
}

/// A duration written as text with a unit; a bare `0` is zero.
pub fn duration(node: &Node) -> Parsed<Duration> {
    let parsed = match &node.value {
        NodeValue::String(text) => parse_duration_text(text),
        NodeValue::Number(number) if number.as_u64() == Some(0) => Some(Duration::ZERO),
        _ => None,
    };
    parsed.ok_or_else(|| format!("not a duration: {node} ({DURATION_HINT})"))
}

/// A duration (`500ms`) or an inclusive range of them (`100ms..1s`), as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationSpan {
    One(Duration),
    Range(Duration, Duration),
}

/// Reads a [`DurationSpan`]; `not_a_span` says what else the field accepts when the value is
/// neither. A range that runs backwards is an error of its own.
pub fn duration_span(node: &Node, not_a_span: impl FnOnce() -> String) -> Parsed<DurationSpan> {
    let Some(text) = node.as_str() else {
        return duration(node).map(DurationSpan::One).map_err(|_| not_a_span());
    };
    let Some((low, high)) = text.split_once("..") else {
        return parse_duration_text(text).map(DurationSpan::One).ok_or_else(not_a_span);
    };
    match (parse_duration_text(low), parse_duration_text(high)) {
        (Some(low), Some(high)) if low <= high => Ok(DurationSpan::Range(low, high)),
        (Some(_), Some(_)) => Err(format!("range {node} runs backwards (write the shorter duration first)")),
        _ => Err(not_a_span()),
    }
}

/// A duration longer than zero.
pub fn positive_duration(node: &Node) -> Parsed<Duration> {
    match duration(node)? {
        Duration::ZERO => Err(format!("must be longer than 0, found {node} ({DURATION_HINT})")),
        parsed => Ok(parsed),
    }
}

/// A probability: `5%` (0%..=100%) or `0.05` (0..=1).
pub fn rate(node: &Node) -> Parsed<f64> {
    let hint = "write a percentage like 5% or a fraction from 0 to 1 like 0.05";
    let (value, percent) = match &node.value {
        NodeValue::Number(number) => (number.as_f64(), false),
        NodeValue::String(text) => match text.trim().strip_suffix('%') {
            Some(percent) => (percent.trim().parse::<f64>().ok(), true),
            None => (text.trim().parse::<f64>().ok(), false),
        },
        _ => (None, false),
    };
    match value {
        Some(value) if percent && (0.0..=100.0).contains(&value) => Ok(value / 100.0),
        Some(value) if !percent && (0.0..=1.0).contains(&value) => Ok(value),
        Some(value) if !percent && value > 1.0 && value <= 100.0 => {
            Err(format!("not a rate: {node} ({hint}; did you mean {value}%?)"))
        }
        _ => Err(format!("not a rate: {node} ({hint})")),
    }
}

/// A gRPC status code by name in any case (`UNAVAILABLE`, `unavailable`) or number (`14`).
pub fn code(node: &Node) -> Parsed<Code> {
    code_from_node(node)
}

/// A whole number of at least `min`, no larger than `max`.
fn whole(node: &Node, min: u64, max: u64) -> Parsed<u64> {
    match &node.value {
        NodeValue::Number(number) => number.as_u64().filter(|value| (min..=max).contains(value)),
        _ => None,
    }
    .ok_or_else(|| format!("expected a whole number from {min} to {max}, found {node}"))
}

/// A count from 0 up.
pub fn count(node: &Node) -> Parsed<u64> {
    whole(node, 0, u64::MAX)
}

/// A whole number from 1 up that fits 32 bits (per-second rates, stream counts).
pub fn positive_u32(node: &Node) -> Parsed<u32> {
    whole(node, 1, u32::MAX.into()).map(|value| u32::try_from(value).unwrap_or(u32::MAX))
}

/// A whole number from 1 up.
pub fn positive_usize(node: &Node) -> Parsed<usize> {
    whole(node, 1, usize::MAX as u64).map(|value| usize::try_from(value).unwrap_or(usize::MAX))
}

/// Any 64-bit whole number (seeds).
pub fn seed(node: &Node) -> Parsed<u64> {
    count(node)
}

/// `3..20` (inclusive) or one value (`5`, `"5"`).
pub fn count_range(node: &Node) -> Parsed<CountRange> {
    let error = || format!("not a count: {node} (write a whole number like 5 or a range like 3..20)");
    let (min, max) = match &node.value {
        NodeValue::Number(number) => number.as_u64().map(|value| (value, value)).ok_or_else(error)?,
        NodeValue::String(text) => match text.split_once("..") {
            Some((min, max)) => {
                (min.trim().parse().map_err(|_| error())?, max.trim().parse().map_err(|_| error())?)
            }
            None => text.trim().parse().map(|value| (value, value)).map_err(|_| error())?,
        },
        _ => return Err(error()),
    };
    if min > max {
        return Err(format!("range {node} runs backwards (write the smaller bound first)"));
    }
    Ok(CountRange { min, max })
}

/// `true` or `false`.
pub fn boolean(node: &Node) -> Parsed<bool> {
    match node.value {
        NodeValue::Bool(value) => Ok(value),
        _ => Err(format!("expected true or false, found {node}")),
    }
}

/// `read_only` or `read_write` (true when writes are allowed).
pub fn admin_access(node: &Node) -> Parsed<bool> {
    match node.as_str() {
        Some("read_only") => Ok(false),
        Some("read_write") => Ok(true),
        _ => Err(format!("expected read_only or read_write, found {node}")),
    }
}

/// Any text.
pub fn text(node: &Node) -> Parsed<String> {
    node.as_str().map(str::to_owned).ok_or_else(|| format!("expected a string, found {}", node.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_flag_without_a_unit_suggests_seconds() {
        assert_eq!(duration_flag("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration_flag("5"), Err("'5' has no unit: write 5s (or e.g. 5ms, 2m)".to_owned()));
        assert!(duration_flag("soon").unwrap_err().contains("write e.g. 500ms, 30s"));
    }

    #[test]
    fn durations_in_humantime_and_go_syntax() {
        let ms = Duration::from_millis;
        for (text, expected) in [("500ms", ms(500)), ("30s", ms(30_000)), ("2m", ms(120_000))] {
            assert_eq!(duration(&node(text)), Ok(expected), "{text}");
        }
        assert_eq!(duration(&node("1.5s")), Ok(ms(1500)));
        assert_eq!(duration(&node("1m30s")), Ok(ms(90_000)));
        assert_eq!(duration(&node("0")), Ok(Duration::ZERO));
        assert_eq!(
            duration(&node("soon")),
            Err("not a duration: \"soon\" (write e.g. 500ms, 30s, 2m, 1.5s)".into())
        );
        assert_eq!(duration(&node("30")), Err("not a duration: 30 (write e.g. 500ms, 30s, 2m, 1.5s)".into()));
        assert_eq!(
            positive_duration(&node("0s")),
            Err("must be longer than 0, found \"0s\" (write e.g. 500ms, 30s, 2m, 1.5s)".into())
        );
    }

    #[test]
    fn rates_as_percentages_or_fractions() {
        assert_eq!(rate(&node("5%")), Ok(0.05));
        assert_eq!(rate(&node("0.05")), Ok(0.05));
        assert_eq!(rate(&node("\"0.5\"")), Ok(0.5));
        assert_eq!(rate(&node("100%")), Ok(1.0));
        assert_eq!(rate(&node("1")), Ok(1.0));
        let hint = "write a percentage like 5% or a fraction from 0 to 1 like 0.05";
        assert_eq!(rate(&node("150%")), Err(format!("not a rate: \"150%\" ({hint})")));
        assert_eq!(rate(&node("5")), Err(format!("not a rate: 5 ({hint}; did you mean 5%?)")));
        assert_eq!(rate(&node("-0.1")), Err(format!("not a rate: -0.1 ({hint})")));
        assert_eq!(rate(&node("often")), Err(format!("not a rate: \"often\" ({hint})")));
    }

    #[test]
    fn codes_by_name_or_number() {
        assert_eq!(code(&node("UNAVAILABLE")), Ok(Code::Unavailable));
        assert_eq!(code(&node("unavailable")), Ok(Code::Unavailable));
        assert_eq!(code(&node("14")), Ok(Code::Unavailable));
        assert_eq!(code(&node("\"4\"")), Ok(Code::DeadlineExceeded));
        let error = code(&node("17")).unwrap_err();
        assert!(error.starts_with("not a gRPC status code: 17 (use 0-16 or OK, CANCELLED,"), "{error}");
        assert!(code(&node("BOGUS")).unwrap_err().starts_with("not a gRPC status code: \"BOGUS\""));
    }

    #[test]
    fn counts_and_ranges() {
        assert_eq!(count_range(&node("5")), Ok(CountRange { min: 5, max: 5 }));
        assert_eq!(count_range(&node("3..20")), Ok(CountRange { min: 3, max: 20 }));
        assert_eq!(count_range(&node("\"7\"")), Ok(CountRange { min: 7, max: 7 }));
        assert_eq!(
            count_range(&node("a..b")),
            Err("not a count: \"a..b\" (write a whole number like 5 or a range like 3..20)".into())
        );
        assert_eq!(
            count_range(&node("20..3")),
            Err("range \"20..3\" runs backwards (write the smaller bound first)".into())
        );
        assert_eq!(
            count(&node("-1")),
            Err(format!("expected a whole number from 0 to {}, found -1", u64::MAX))
        );
        assert_eq!(
            positive_u32(&node("0")),
            Err("expected a whole number from 1 to 4294967295, found 0".into())
        );
        assert_eq!(positive_u32(&node("100")), Ok(100));
    }

    #[test]
    fn flags_and_text() {
        assert_eq!(boolean(&node("true")), Ok(true));
        assert_eq!(boolean(&node("maybe")), Err("expected true or false, found \"maybe\"".into()));
        assert_eq!(text(&node("[1]")), Err("expected a string, found a list".into()));
    }
}
