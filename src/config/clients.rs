//! The profile's `clients` and `expect` sections: who a client under test is, the backoff it
//! should follow, which fields carry a resume position, and the thresholds every client must
//! meet. Plain data, located and checked here; [`crate::judge`] measures and judges.

use std::time::Duration;

use super::load::{Comparison, Percentile, split_condition};
use super::protocol;
use super::reader::{Reader, join};
use super::values::{self, Parsed};
use crate::chaos::FaultKind;
use crate::chaos::plan::MethodMatch;
use crate::document::{Node, NodeValue, Position};

const CLIENTS_FIELDS: &[&str] =
    &["identify_by", "max_tracked", "backoff", "hot_loop", "herd_window", "resume"];
const BACKOFF_FIELDS: &[&str] = &["initial", "multiplier", "jitter", "max"];
const RESUME_FIELDS: &[&str] = &["method", "request_field", "response_field"];
/// The keys of `expect` other than `reconnect_delay_after_<ending>`.
const EXPECT_KEYS: &[&str] = &[
    "backoff",
    "max_attempts_per_second",
    "recovers_within",
    "resume",
    "retry_info",
    "detects_dead_peer_within",
    "deadlines",
];
const RECONNECT_DELAY_PREFIX: &str = "reconnect_delay_after_";
/// Endings that are not injected faults: a natural end, an error status of the responder's own,
/// and a call the client cancelled (or whose connection it lost).
pub const NATURAL_ENDINGS: [&str; 3] = ["ok", "error", "cancelled"];

/// How the server tells one client under test from another.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ClientIdentity {
    /// The peer's IP address: every connection from one host is one client.
    #[default]
    PeerIp,
    /// `ip:port`: each connection is a client of its own.
    Peer,
    /// The value of a request header (e.g. `x-client-id`), lower-cased.
    Header(String),
    /// The `user-agent` header.
    UserAgent,
}

/// A retry policy: `initial`, then each delay `multiplier` times the last, up to `max`, each
/// spread by ±`jitter`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub multiplier: f64,
    /// A fraction (0.2 = ±20%).
    pub jitter: f64,
    pub max: Duration,
}

impl BackoffPolicy {
    /// gRPC's connection backoff: 1 s, ×1.6, ±20%, at most 120 s.
    pub const GRPC: Self =
        Self { initial: Duration::from_secs(1), multiplier: 1.6, jitter: 0.2, max: Duration::from_secs(120) };

    /// The delay before the `retry`-th retry of a streak (1-based), before jitter.
    pub fn nominal(&self, retry: u32) -> Duration {
        let grown = self.initial.as_secs_f64() * self.multiplier.powi(retry.saturating_sub(1) as i32);
        Duration::from_secs_f64(grown.min(self.max.as_secs_f64()))
    }
}

/// `clients.resume`: the request field a reconnecting client sets to resume, and the response
/// field whose last delivered value it should carry.
#[derive(Debug, Clone, PartialEq)]
pub struct ResumeFields {
    /// The methods it applies to; every method whose messages have both fields by default.
    pub method: MethodMatch,
    pub request_field: String,
    pub response_field: String,
    /// Where `method` was written (or the section, without one).
    pub at: Position,
}

/// `clients`: how the server tracks the clients under test.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientsSection {
    pub identify_by: ClientIdentity,
    /// At most this many identities; the least recently seen is dropped first.
    pub max_tracked: usize,
    /// The policy clients are meant to follow (`expect.backoff: declared`); gRPC's by default.
    pub backoff: BackoffPolicy,
    /// Attempts per second (in any one-second window) counted as a hot loop.
    pub hot_loop: Option<f64>,
    /// After an outage, the window whose peak attempt rate is compared with the steady rate.
    pub herd_window: Duration,
    pub resume: Option<ResumeFields>,
}

impl Default for ClientsSection {
    fn default() -> Self {
        Self {
            identify_by: ClientIdentity::PeerIp,
            max_tracked: 10_000,
            backoff: BackoffPolicy::GRPC,
            hot_loop: None,
            herd_window: Duration::from_secs(10),
            resume: None,
        }
    }
}

/// Which policy `expect.backoff` holds clients to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyChoice {
    /// gRPC's connection backoff.
    Grpc,
    /// `clients.backoff`.
    Declared,
}

/// What one expectation checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// `reconnect_delay_after_<ending>: "p99 < 5s"`, in seconds.
    ReconnectDelay { ending: String, percentile: Percentile, comparison: Comparison, limit: f64 },
    /// The retry gaps follow the policy.
    Backoff(PolicyChoice),
    /// No one-second window holds more attempts.
    MaxAttemptsPerSecond(f64),
    /// Every outage is followed by a delivered message within this long.
    RecoversWithin(Duration),
    /// At least this share of resumes is classed `resumed`.
    Resume(f64),
    /// At least this share of `RetryInfo` delays is honoured.
    RetryInfo(f64),
    /// Every blackholed connection is abandoned within this long.
    DetectsDeadPeerWithin(Duration),
    /// At least this share of calls carries a deadline.
    Deadlines(f64),
}

/// One entry of `expect`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// The key as written.
    pub name: String,
    /// The value as written.
    pub condition: String,
    pub expected: Expected,
    pub at: Position,
}

impl Reader<'_> {
    pub(super) fn clients(&mut self, node: &Node) -> Option<ClientsSection> {
        self.mapping(node, "clients", CLIENTS_FIELDS)?;
        let defaults = ClientsSection::default();
        let identify_by = node.get("identify_by").and_then(|value| self.identity(value));
        let backoff = node.get("backoff").and_then(|value| self.backoff_policy(value, "clients.backoff"));
        let resume = node.get("resume").and_then(|value| self.resume_fields(value));
        Some(ClientsSection {
            identify_by: identify_by.unwrap_or_default(),
            max_tracked: self
                .optional(node, "clients", "max_tracked", values::positive_usize)
                .unwrap_or(defaults.max_tracked),
            backoff: backoff.unwrap_or(defaults.backoff),
            hot_loop: self.optional(node, "clients", "hot_loop", positive_number),
            herd_window: self
                .optional(node, "clients", "herd_window", values::positive_duration)
                .unwrap_or(defaults.herd_window),
            resume,
        })
    }

    fn identity(&mut self, node: &Node) -> Option<ClientIdentity> {
        const FIELD: &str = "clients.identify_by";
        if let Some(text) = node.as_str() {
            return self.parse(node, FIELD, |_| match text {
                "peer_ip" => Ok(ClientIdentity::PeerIp),
                "peer" => Ok(ClientIdentity::Peer),
                "user_agent" => Ok(ClientIdentity::UserAgent),
                other => Err(format!(
                    "unknown identity '{other}' (expected peer_ip, peer, user_agent or {{header: NAME}})"
                )),
            });
        }
        self.mapping(node, FIELD, &["header"])?;
        let name = self.required(node, FIELD, "header", "x-client-id", values::text)?;
        let header = join(FIELD, "header");
        let valid = http::HeaderName::from_bytes(name.as_bytes()).is_ok();
        let at = node.get("header").map_or(node.at, |value| value.at);
        if !valid {
            self.problem(at, &header, format!("'{name}' is not a valid header name"));
            return None;
        }
        Some(ClientIdentity::Header(name.to_ascii_lowercase()))
    }

    fn backoff_policy(&mut self, node: &Node, field: &str) -> Option<BackoffPolicy> {
        self.mapping(node, field, BACKOFF_FIELDS)?;
        let grpc = BackoffPolicy::GRPC;
        let initial =
            self.optional(node, field, "initial", values::positive_duration).unwrap_or(grpc.initial);
        let multiplier = self.optional(node, field, "multiplier", multiplier).unwrap_or(grpc.multiplier);
        let jitter = self.optional(node, field, "jitter", values::rate).unwrap_or(grpc.jitter);
        let max = self.optional(node, field, "max", values::positive_duration).unwrap_or(grpc.max);
        if max < initial {
            let at = node.get("max").map_or(node.at, |value| value.at);
            self.problem(at, &join(field, "max"), "max is shorter than initial");
            return None;
        }
        Some(BackoffPolicy { initial, multiplier, jitter, max })
    }

    fn resume_fields(&mut self, node: &Node) -> Option<ResumeFields> {
        const FIELD: &str = "clients.resume";
        self.mapping(node, FIELD, RESUME_FIELDS)?;
        let method = match node.get("method") {
            None => Some(MethodMatch::All),
            Some(value) => self.parse(value, &join(FIELD, "method"), protocol::method_match),
        };
        let request_field = self.required(node, FIELD, "request_field", "resume_after", values::text);
        let response_field = self.required(node, FIELD, "response_field", "sequence", values::text);
        let at = node.get("method").map_or(node.at, |value| value.at);
        Some(ResumeFields {
            method: method?,
            request_field: request_field?,
            response_field: response_field?,
            at,
        })
    }

    /// Every entry of `expect`, unknown keys and bad conditions reported.
    pub(super) fn expectations(&mut self, node: &Node) -> Vec<Expectation> {
        let Some(entries) = node.as_map() else {
            self.problem(node.at, "expect", format!("expected a mapping, found {}", node.kind()));
            return Vec::new();
        };
        let mut expectations = Vec::new();
        for (key, value) in entries {
            let field = join("expect", &key.name);
            let parsed = if let Some(ending) = key.name.strip_prefix(RECONNECT_DELAY_PREFIX) {
                if !known_ending(ending) {
                    self.problem(key.at, &field, unknown_ending(ending));
                    continue;
                }
                self.parse(value, &field, |value| reconnect_delay(ending, value))
            } else if EXPECT_KEYS.contains(&key.name.as_str()) {
                self.parse(value, &field, |value| expected(&key.name, value))
            } else {
                let mut known: Vec<String> = EXPECT_KEYS.iter().map(|key| (*key).to_owned()).collect();
                known.push(format!("{RECONNECT_DELAY_PREFIX}<ending>"));
                self.problem(
                    key.at,
                    &field,
                    format!("unknown expectation '{}' (expected one of: {})", key.name, known.join(", ")),
                );
                continue;
            };
            if let Some(expected) = parsed {
                let condition = match &value.value {
                    NodeValue::String(text) => text.clone(),
                    _ => value.to_json().to_string(),
                };
                expectations.push(Expectation { name: key.name.clone(), condition, expected, at: value.at });
            }
        }
        expectations
    }
}

/// The ending names `reconnect_delay_after_<ending>` takes: fault kinds that end a stream, and
/// the natural endings.
pub fn ending_names() -> impl Iterator<Item = &'static str> {
    FaultKind::ALL
        .into_iter()
        .filter(|kind| !matches!(kind, FaultKind::Latency))
        .map(FaultKind::name)
        .chain(NATURAL_ENDINGS)
}

fn known_ending(ending: &str) -> bool {
    ending_names().any(|name| name == ending)
}

fn unknown_ending(ending: &str) -> String {
    let names: Vec<&str> = ending_names().collect();
    format!("unknown ending '{ending}' (expected one of: {})", names.join(", "))
}

/// `"p99 < 5s"`.
fn reconnect_delay(ending: &str, node: &Node) -> Parsed<Expected> {
    const EXAMPLE: &str = "expected a condition like \"p99 < 5s\"";
    let text = node.as_str().ok_or_else(|| format!("{EXAMPLE}, found {node}"))?;
    let (percentile, rest) = text.trim().split_once(char::is_whitespace).ok_or(EXAMPLE)?;
    let percentile = match percentile {
        "p50" => Percentile::P50,
        "p90" => Percentile::P90,
        "p99" => Percentile::P99,
        "p999" => Percentile::P999,
        "max" => Percentile::Max,
        other => return Err(format!("unknown percentile '{other}' (expected p50, p90, p99, p999 or max)")),
    };
    let (comparison, limit) = split_condition(rest).ok_or(EXAMPLE)?;
    let limit = values::duration(&Node { value: NodeValue::String(limit.to_owned()), at: node.at })?;
    Ok(Expected::ReconnectDelay {
        ending: ending.to_owned(),
        percentile,
        comparison,
        limit: limit.as_secs_f64(),
    })
}

/// The value of one of [`EXPECT_KEYS`].
fn expected(key: &str, node: &Node) -> Parsed<Expected> {
    let share = values::rate;
    Ok(match key {
        "backoff" => Expected::Backoff(match node.as_str() {
            Some("grpc") => PolicyChoice::Grpc,
            Some("declared") => PolicyChoice::Declared,
            _ => return Err(format!("expected grpc or declared (clients.backoff), found {node}")),
        }),
        "max_attempts_per_second" => Expected::MaxAttemptsPerSecond(positive_number(node)?),
        "recovers_within" => Expected::RecoversWithin(values::positive_duration(node)?),
        "resume" => Expected::Resume(share(node)?),
        "retry_info" => Expected::RetryInfo(share(node)?),
        "detects_dead_peer_within" => Expected::DetectsDeadPeerWithin(values::positive_duration(node)?),
        "deadlines" => Expected::Deadlines(share(node)?),
        other => unreachable!("{other} is one of EXPECT_KEYS"),
    })
}

/// A number above zero, written as a number or a string.
fn positive_number(node: &Node) -> Parsed<f64> {
    let number = match &node.value {
        NodeValue::Number(number) => number.as_f64(),
        NodeValue::String(text) => text.trim().parse::<f64>().ok(),
        _ => None,
    };
    number
        .filter(|number| number.is_finite() && *number > 0.0)
        .ok_or_else(|| format!("expected a number above 0, found {node}"))
}

/// A backoff multiplier: at least 1.
fn multiplier(node: &Node) -> Parsed<f64> {
    positive_number(node)
        .ok()
        .filter(|value| *value >= 1.0)
        .ok_or_else(|| format!("expected a multiplier of at least 1, found {node}"))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::document::read_documents;

    fn read<T>(yaml: &str, compile: impl FnOnce(&mut Reader<'_>, &Node) -> T) -> (T, Vec<String>) {
        let mut reader = Reader::new(Path::new("p.yaml"));
        let documents = read_documents(Path::new("p.yaml"), yaml).unwrap();
        let value = compile(&mut reader, &documents[0]);
        let problems = reader.problems.0.iter().map(|problem| problem.to_string()).collect();
        (value, problems)
    }

    #[test]
    fn clients_compile_with_defaults_for_what_is_left_out() {
        let (clients, problems) = read(
            "identify_by: { header: X-Client-Id }\nbackoff: { initial: 100ms, multiplier: 2, max: 2s }\n\
             resume: { request_field: resume_after, response_field: sequence }",
            |reader, node| reader.clients(node),
        );
        assert!(problems.is_empty(), "{problems:?}");
        let clients = clients.unwrap();
        assert_eq!(clients.identify_by, ClientIdentity::Header("x-client-id".into()));
        assert_eq!(clients.backoff.jitter, 0.2);
        assert_eq!(clients.backoff.nominal(1), Duration::from_millis(100));
        assert_eq!(clients.backoff.nominal(3), Duration::from_millis(400));
        assert_eq!(clients.backoff.nominal(9), Duration::from_secs(2));
        assert_eq!(clients.max_tracked, 10_000);
        assert_eq!(clients.resume.unwrap().request_field, "resume_after");
    }

    #[test]
    fn bad_clients_fields_are_located() {
        let (_, problems) = read(
            "identify_by: mac_address\nbackoff: { initial: 2s, max: 1s, multiplier: 0.5 }\nresume: {}",
            |reader, node| reader.clients(node),
        );
        let text = problems.join("\n");
        assert!(
            text.contains("clients.identify_by") && text.contains("unknown identity 'mac_address'"),
            "{text}"
        );
        assert!(text.contains("clients.backoff.multiplier") && text.contains("at least 1"), "{text}");
        assert!(text.contains("missing field 'request_field'"), "{text}");
    }

    #[test]
    fn expectations_compile_and_bad_ones_are_located() {
        let (expected, problems) = read(
            "reconnect_delay_after_reset_stream: \"p99 < 5s\"\nbackoff: grpc\nmax_attempts_per_second: 5\n\
             recovers_within: 30s\nresume: \"100%\"\nreconnect_delay_after_meteor: \"p99 < 1s\"\nretry_info: maybe",
            |reader, node| reader.expectations(node),
        );
        assert_eq!(expected.len(), 5);
        assert_eq!(
            expected[0].expected,
            Expected::ReconnectDelay {
                ending: "reset_stream".into(),
                percentile: Percentile::P99,
                comparison: Comparison::Less,
                limit: 5.0
            }
        );
        assert_eq!(expected[4].expected, Expected::Resume(1.0));
        let text = problems.join("\n");
        assert!(text.contains("p.yaml:6:1") && text.contains("unknown ending 'meteor'"), "{text}");
        assert!(text.contains("p.yaml:7:13") && text.contains("expect.retry_info"), "{text}");
    }
}
