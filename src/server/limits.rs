//! Limits every stream obeys whatever answers it: a lifetime after which it ends with
//! `DEADLINE_EXCEEDED`, a cap on the messages it sends (then it ends OK), and a latency drawn
//! uniformly from a range before each message. They come from the environment (our names and
//! MockForge's) when no profile says otherwise, and become the chaos plan's base layer
//! ([`StreamLimits::base_layer`]), so the faults drawn for each stream already obey them and
//! one driver enforces both.

use std::time::Duration;

use tonic::Code;

use crate::chaos::plan::{Distribution, Faults, Latency, MessageCap, StreamTimeout};
use crate::diagnostic::{Problem, Problems};

/// Per-stream limits; the default limits nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamLimits {
    /// How long a stream may live before it ends with `DEADLINE_EXCEEDED`.
    pub stream_timeout: Option<Duration>,
    /// How many messages a stream may send before it ends OK.
    pub max_stream_messages: Option<u64>,
    /// Wait before each message, drawn uniformly from this range (inclusive).
    pub latency: Option<(Duration, Duration)>,
    /// Initial size of each stream's encode/decode buffers, in bytes.
    pub stream_buffer_bytes: Option<usize>,
}

/// Each setting's variable names: ours first, then MockForge's.
const STREAM_TIMEOUT: [&str; 2] = ["STREAMSTORM_STREAM_TIMEOUT", "MOCKFORGE_GRPC_STREAM_TIMEOUT"];
const MAX_STREAM_MESSAGES: [&str; 2] =
    ["STREAMSTORM_MAX_STREAM_MESSAGES", "MOCKFORGE_GRPC_MAX_STREAM_MESSAGES"];
const STREAM_BUFFER_SIZE: [&str; 2] = ["STREAMSTORM_STREAM_BUFFER_SIZE", "MOCKFORGE_GRPC_STREAM_BUFFER_SIZE"];
const LATENCY_MIN_MS: [&str; 2] = ["STREAMSTORM_LATENCY_MIN_MS", "MOCKFORGE_GRPC_LATENCY_MIN_MS"];
const LATENCY_MAX_MS: [&str; 2] = ["STREAMSTORM_LATENCY_MAX_MS", "MOCKFORGE_GRPC_LATENCY_MAX_MS"];

impl StreamLimits {
    /// Reads the limits from environment variables through `lookup` (pass
    /// `|name| std::env::var(name).ok()`). Values are whole numbers: milliseconds for the
    /// timeout and latencies, a count, bytes.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Problems> {
        let mut problems = Problems::default();
        let mut number = |names: [&str; 2]| -> Option<u64> {
            let (name, text) = names.iter().find_map(|name| lookup(name).map(|value| (*name, value)))?;
            let parsed = text.trim().parse::<u64>().ok();
            if parsed.is_none() {
                problems.push(Problem::in_file(
                    format!("${name}"),
                    format!("expected a whole number, found {text:?}"),
                ));
            }
            parsed
        };
        let millis = Duration::from_millis;
        let stream_timeout = number(STREAM_TIMEOUT).map(millis);
        let max_stream_messages = number(MAX_STREAM_MESSAGES);
        let stream_buffer_bytes = number(STREAM_BUFFER_SIZE).map(|bytes| bytes as usize);
        let latency = match (number(LATENCY_MIN_MS), number(LATENCY_MAX_MS)) {
            (None, None) => None,
            (min, max) => {
                let (min, max) = (min.unwrap_or(0), max.or(min).unwrap_or(0));
                if min > max {
                    problems.push(Problem::in_file(
                        format!("${}", LATENCY_MIN_MS[0]),
                        format!("minimum latency {min} ms exceeds the maximum {max} ms"),
                    ));
                }
                Some((millis(min), millis(max.max(min))))
            }
        };
        problems.into_result(Self { stream_timeout, max_stream_messages, latency, stream_buffer_bytes })
    }

    /// The limits as the chaos plan's base layer: a timeout ending with `DEADLINE_EXCEEDED`, a
    /// message cap ending `OK`, and the latency range per message. How they combine with the
    /// plan's rules is [`crate::chaos::decide`]'s precedence; the driver counts limit endings
    /// under the fault kinds `timeout` and `cap`.
    pub fn base_layer(&self) -> Faults {
        Faults {
            stream_timeout: self
                .stream_timeout
                .map(|after| StreamTimeout { after, code: Code::DeadlineExceeded }),
            message_cap: self.max_stream_messages.map(|max| MessageCap { max, code: Code::Ok }),
            latency: self.latency.map(|(min, max)| Latency {
                first_message: None,
                per_message: Some(Distribution::Uniform(min, max)),
            }),
            ..Faults::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn both_names_are_read_and_ours_win() {
        let limits = StreamLimits::from_env(env(&[
            ("MOCKFORGE_GRPC_STREAM_TIMEOUT", "30000"),
            ("MOCKFORGE_GRPC_MAX_STREAM_MESSAGES", "1000"),
            ("STREAMSTORM_MAX_STREAM_MESSAGES", "7"),
            ("MOCKFORGE_GRPC_LATENCY_MIN_MS", "10"),
            ("MOCKFORGE_GRPC_LATENCY_MAX_MS", "100"),
            ("MOCKFORGE_GRPC_STREAM_BUFFER_SIZE", "1024"),
        ]))
        .unwrap();
        assert_eq!(limits.stream_timeout, Some(Duration::from_secs(30)));
        assert_eq!(limits.max_stream_messages, Some(7));
        assert_eq!(limits.latency, Some((Duration::from_millis(10), Duration::from_millis(100))));
        assert_eq!(limits.stream_buffer_bytes, Some(1024));
        assert_eq!(StreamLimits::from_env(env(&[])).unwrap(), StreamLimits::default());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let problems = StreamLimits::from_env(env(&[("STREAMSTORM_STREAM_TIMEOUT", "soon")])).unwrap_err();
        assert_eq!(
            problems.to_string(),
            "$STREAMSTORM_STREAM_TIMEOUT: expected a whole number, found \"soon\""
        );
        let problems = StreamLimits::from_env(env(&[
            ("STREAMSTORM_LATENCY_MIN_MS", "50"),
            ("STREAMSTORM_LATENCY_MAX_MS", "5"),
        ]))
        .unwrap_err();
        assert!(problems.to_string().contains("exceeds the maximum"), "{problems}");
    }
}
