//! The `chaos` section compiled into a [`FaultPlan`]: rules with their method matches, the
//! phase timeline (a phase's `on_enter` is read by [`super::live_cut`]), connection faults,
//! and each fault kind with its defaults filled in (abort → `UNAVAILABLE` "injected abort",
//! fail → `INTERNAL` "injected failure", disconnect → `reset_stream` with `CANCEL`, message cap
//! → `OK`, stream timeout → `DEADLINE_EXCEEDED`).

use tonic::Code;

use super::MethodReference;
use super::details::encode_details;
use super::reader::{Reader, join};
use super::{protocol, values};
use crate::chaos::plan::{
    Abort, ConnectionFaults, Disconnect, DisconnectMode, Fail, FaultPlan, Faults, Latency, MessageCap,
    MethodMatch, Phase, RateLimit, Rule, StreamTimeout, UpstreamCut, UpstreamFault,
};
use crate::document::{Node, NodeValue};

/// Which messages a `latency` delays.
enum Direction {
    /// The server's (the default).
    Response,
    /// The client's.
    Request,
}

/// `value` as one of the `known` names, or why not.
fn one_of(value: &Node, known: &[&'static str], what: &str) -> Result<&'static str, String> {
    let found = value.as_str().and_then(|name| known.iter().find(|known| **known == name));
    found.copied().ok_or_else(|| format!("not a {what}: {value} (expected one of: {})", known.join(", ")))
}

/// The keys that set a fault, in rules and phases alike.
pub(super) const FAULT_FIELDS: &[&str] = &[
    "latency",
    "abort",
    "fail",
    "disconnect",
    "upstream",
    "message_cap",
    "inbound_cap",
    "stream_timeout",
    "rate_limit",
];
const CHAOS_FIELDS: &[&str] = &["seed", "header_faults", "connections", "linger", "rules", "phases"];
const DISCONNECT_MODES: &[&str] = &["reset_stream", "goaway", "tcp_reset", "stall", "blackhole"];
const UPSTREAM_MODES: &[&str] = &["reset", "close"];
const LATENCY_DIRECTIONS: &[&str] = &["response", "request"];
/// HTTP/2 `CANCEL`, what a client sees when a server gives up on a stream.
const DEFAULT_H2_CODE: u32 = 8;

impl Reader<'_> {
    /// The whole `chaos` section. Without `seed` one is drawn, so `--seed` or `chaos.seed`
    /// repeats a run and nothing else does.
    pub(super) fn chaos(&mut self, node: Option<&Node>, methods: &mut Vec<MethodReference>) -> FaultPlan {
        let mut plan = FaultPlan { seed: rand::random(), ..FaultPlan::default() };
        let Some(node) = node else { return plan };
        if self.mapping(node, "chaos", CHAOS_FIELDS).is_none() {
            return plan;
        }
        plan.seed = self.optional(node, "chaos", "seed", values::seed).unwrap_or(plan.seed);
        plan.header_faults = self.optional(node, "chaos", "header_faults", values::boolean).unwrap_or(false);
        plan.linger = self.optional(node, "chaos", "linger", values::duration).unwrap_or(plan.linger);
        if let Some(connections) = node.get("connections") {
            plan.connections = self.connections(connections, "chaos.connections").unwrap_or_default();
        }
        plan.rules = self
            .list(node.get("rules"), "chaos.rules", |reader, rule, field| reader.rule(rule, field, methods));
        plan.phases = self.list(node.get("phases"), "chaos.phases", |reader, phase, field| {
            reader.phase(phase, field, methods)
        });
        plan
    }

    fn connections(&mut self, node: &Node, field: &str) -> Option<ConnectionFaults> {
        self.mapping(node, field, &["max_age", "max_age_grace", "calls_per_second"])?;
        Some(ConnectionFaults {
            max_age: self.optional(node, field, "max_age", values::positive_duration),
            max_age_grace: self.optional(node, field, "max_age_grace", values::duration),
            calls_per_second: self.optional(node, field, "calls_per_second", values::positive_u32),
        })
    }

    fn rule(&mut self, node: &Node, field: &str, methods: &mut Vec<MethodReference>) -> Option<Rule> {
        self.mapping(node, field, &[&["match"][..], FAULT_FIELDS].concat())?;
        let matcher = match node.get("match") {
            None => Some(MethodMatch::All),
            Some(pattern) => self.method_match(pattern, &join(field, "match"), methods),
        };
        let faults = self.faults(node, field);
        Some(Rule { matcher: matcher?, faults })
    }

    fn method_match(
        &mut self,
        node: &Node,
        field: &str,
        methods: &mut Vec<MethodReference>,
    ) -> Option<MethodMatch> {
        self.mapping(node, field, &["method"])?;
        let field = join(field, "method");
        let Some(method) = node.get("method") else {
            return Some(MethodMatch::All);
        };
        let matcher = self.parse(method, &field, protocol::method_match)?;
        methods.push(MethodReference { matcher: matcher.clone(), field, at: method.at });
        Some(matcher)
    }

    fn phase(&mut self, node: &Node, field: &str, methods: &mut Vec<MethodReference>) -> Option<Phase> {
        self.mapping(node, field, &[&["name", "duration", "on_enter"][..], FAULT_FIELDS].concat())?;
        let name = self.required(node, field, "name", "outage", values::text);
        let duration = self.required(node, field, "duration", "10s", values::positive_duration);
        let faults = self.faults(node, field);
        let on_enter = match node.get("on_enter") {
            None => None,
            Some(on_enter) => {
                Some(self.live_cut(on_enter, &join(field, "on_enter"), "disconnect", methods)?)
            }
        };
        Some(Phase { name: name?, duration: duration?, faults, on_enter })
    }

    /// The fault keys of a rule or phase; the caller has already checked for unknown keys.
    pub(super) fn faults(&mut self, node: &Node, field: &str) -> Faults {
        let at = |key: &str| node.get(key).map(|value| (value, join(field, key)));
        let (latency, request_latency) =
            match at("latency").and_then(|(value, field)| self.latency(value, &field)) {
                Some((latency, Direction::Request)) => (None, Some(latency)),
                Some((latency, Direction::Response)) => (Some(latency), None),
                None => (None, None),
            };
        Faults {
            latency,
            request_latency,
            upstream: at("upstream").and_then(|(value, field)| {
                self.proxy_only.push((field.clone(), value.at));
                self.upstream(value, &field)
            }),
            abort: at("abort").and_then(|(value, field)| self.abort(value, &field)),
            fail: at("fail").and_then(|(value, field)| self.fail(value, &field)),
            disconnect: at("disconnect").and_then(|(value, field)| self.disconnect(value, &field)),
            message_cap: at("message_cap").and_then(|(value, field)| self.message_cap(value, &field)),
            inbound_cap: self.optional(node, field, "inbound_cap", values::count),
            stream_timeout: at("stream_timeout")
                .and_then(|(value, field)| self.stream_timeout(value, &field)),
            rate_limit: at("rate_limit").and_then(|(value, field)| self.rate_limit(value, &field)),
        }
    }

    /// A latency and the direction it delays: the server's messages (`response`, the default)
    /// or the client's (`request`).
    fn latency(&mut self, node: &Node, field: &str) -> Option<(Latency, Direction)> {
        self.mapping(node, field, &["first_message", "per_message", "direction"])?;
        let direction = match node.get("direction") {
            None => Direction::Response,
            Some(direction) => {
                match self.parse(direction, &join(field, "direction"), |value| {
                    one_of(value, LATENCY_DIRECTIONS, "direction")
                })? {
                    "request" => Direction::Request,
                    _ => Direction::Response,
                }
            }
        };
        let mut draw =
            |key: &str| node.get(key).and_then(|value| self.distribution(value, &join(field, key)));
        let latency = Latency { first_message: draw("first_message"), per_message: draw("per_message") };
        if node.get("first_message").is_none() && node.get("per_message").is_none() {
            self.problem(
                node.at,
                field,
                "set first_message, per_message or both (e.g. per_message: 10ms..100ms)",
            );
        }
        Some((latency, direction))
    }

    /// `upstream: { rate, after_messages | after, mode: reset | close }`.
    fn upstream(&mut self, node: &Node, field: &str) -> Option<UpstreamFault> {
        self.mapping(node, field, &["rate", "after_messages", "after", "mode"])?;
        let rate = self.required(node, field, "rate", "1%", values::rate);
        let after = self.after(node, field);
        let mode = match node.get("mode") {
            None => Some("reset"),
            Some(mode) => {
                self.parse(mode, &join(field, "mode"), |mode| one_of(mode, UPSTREAM_MODES, "upstream mode"))
            }
        };
        let mode = match mode? {
            "close" => UpstreamCut::Close,
            _ => UpstreamCut::Reset,
        };
        Some(UpstreamFault { rate: rate?, after: after?, mode })
    }

    fn abort(&mut self, node: &Node, field: &str) -> Option<Abort> {
        self.mapping(node, field, &["rate", "code", "codes", "message", "details"])?;
        let rate = self.required(node, field, "rate", "5%", values::rate);
        let codes = self.codes(node, field, Code::Unavailable);
        let message =
            self.optional(node, field, "message", values::text).unwrap_or_else(|| "injected abort".into());
        let details = match (node.get("details"), codes.as_ref().map(|codes| codes.0.as_slice())) {
            // Without usable codes there is nothing to check the details against.
            (None, _) | (_, None) => None,
            (Some(details), Some([(code, _)])) => self
                .parse(details, &join(field, "details"), |details| encode_details(*code, &message, details)),
            (Some(details), Some(_)) => {
                let why = "details need a single 'code': the encoded google.rpc.Status carries it";
                self.problem(details.at, &join(field, "details"), why);
                None
            }
        };
        Some(Abort { rate: rate?, codes: codes?, message, details })
    }

    fn fail(&mut self, node: &Node, field: &str) -> Option<Fail> {
        self.mapping(node, field, &["rate", "after_messages", "after", "code", "codes", "message"])?;
        let rate = self.required(node, field, "rate", "2%", values::rate);
        let after = self.after(node, field);
        let codes = self.codes(node, field, Code::Internal);
        let message =
            self.optional(node, field, "message", values::text).unwrap_or_else(|| "injected failure".into());
        Some(Fail { rate: rate?, after: after?, codes: codes?, message })
    }

    fn disconnect(&mut self, node: &Node, field: &str) -> Option<Disconnect> {
        self.mapping(node, field, &["rate", "after_messages", "after", "mode", "h2_code", "grace"])?;
        let rate = self.required(node, field, "rate", "1%", values::rate);
        let after = self.after(node, field);
        let mode = match node.get("mode") {
            None => Some("reset_stream"),
            Some(mode) => self
                .parse(mode, &join(field, "mode"), |mode| one_of(mode, DISCONNECT_MODES, "disconnect mode")),
        };
        let h2_code = self.optional(node, field, "h2_code", protocol::h2_code);
        let grace = self.optional(node, field, "grace", values::duration);
        for (key, wanted_mode) in [("h2_code", "reset_stream"), ("grace", "goaway")] {
            if let (Some(value), Some(mode)) = (node.get(key), mode) {
                if mode != wanted_mode {
                    self.problem(
                        value.at,
                        &join(field, key),
                        format!("applies to mode {wanted_mode} only, not {mode}"),
                    );
                }
            }
        }
        let mode = match mode? {
            "reset_stream" => DisconnectMode::ResetStream { h2_code: h2_code.unwrap_or(DEFAULT_H2_CODE) },
            "goaway" => DisconnectMode::Goaway { grace },
            "tcp_reset" => DisconnectMode::TcpReset,
            "stall" => DisconnectMode::Stall,
            _ => DisconnectMode::Blackhole,
        };
        Some(Disconnect { rate: rate?, after: after?, mode })
    }

    /// `message_cap: 100`, or `{max: 100, code: RESOURCE_EXHAUSTED}`.
    fn message_cap(&mut self, node: &Node, field: &str) -> Option<MessageCap> {
        if !matches!(node.value, NodeValue::Map(_)) {
            return self.parse(node, field, values::count).map(|max| MessageCap { max, code: Code::Ok });
        }
        self.mapping(node, field, &["max", "code"])?;
        let max = self.required(node, field, "max", "100", values::count);
        let code = self.optional(node, field, "code", values::code).unwrap_or(Code::Ok);
        Some(MessageCap { max: max?, code })
    }

    /// `stream_timeout: 30s`, or `{after: 30s, code: CANCELLED}`.
    fn stream_timeout(&mut self, node: &Node, field: &str) -> Option<StreamTimeout> {
        if !matches!(node.value, NodeValue::Map(_)) {
            return self
                .parse(node, field, values::positive_duration)
                .map(|after| StreamTimeout { after, code: Code::DeadlineExceeded });
        }
        self.mapping(node, field, &["after", "code"])?;
        let after = self.required(node, field, "after", "30s", values::positive_duration);
        let code = self.optional(node, field, "code", values::code).unwrap_or(Code::DeadlineExceeded);
        Some(StreamTimeout { after: after?, code })
    }

    fn rate_limit(&mut self, node: &Node, field: &str) -> Option<RateLimit> {
        self.mapping(node, field, &["messages_per_second", "calls_per_second"])?;
        let limit = RateLimit {
            messages_per_second: self.optional(node, field, "messages_per_second", values::positive_u32),
            calls_per_second: self.optional(node, field, "calls_per_second", values::positive_u32),
        };
        if node.get("messages_per_second").is_none() && node.get("calls_per_second").is_none() {
            self.problem(node.at, field, "set messages_per_second, calls_per_second or both");
        }
        Some(limit)
    }
}
