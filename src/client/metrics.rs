//! The load client's Prometheus metrics: names under `streamstorm_client_` (the contract
//! dashboards use; extend, never rename) and per-scenario handles registered once, so the
//! hot path never formats a label. Labels are bounded: method, code, kind.

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use super::stats::{CODES, DisconnectKind};
use crate::proto::status::code_name;
use crate::telemetry::names::{Family, describe_families};

pub const MESSAGE_LATENCY: &str = "streamstorm_client_message_latency_seconds";
pub const TIME_TO_FIRST_MESSAGE: &str = "streamstorm_client_time_to_first_message_seconds";
pub const RECOVERY: &str = "streamstorm_client_recovery_seconds";
pub const STREAM_DURATION: &str = "streamstorm_client_stream_duration_seconds";
pub const MESSAGE_AGE: &str = "streamstorm_client_message_age_seconds";
pub const STREAMS_ACTIVE: &str = "streamstorm_client_streams_active";
pub const STREAMS_STARTED: &str = "streamstorm_client_streams_started_total";
/// Label `code`: the status the stream ended with (`OK` for clean ends).
pub const STREAMS_ENDED: &str = "streamstorm_client_streams_ended_total";
pub const MESSAGES_SENT: &str = "streamstorm_client_messages_sent_total";
pub const MESSAGES_RECEIVED: &str = "streamstorm_client_messages_received_total";
/// Label `code` (gRPC status) or `kind` (disconnect kind).
pub const ERRORS: &str = "streamstorm_client_errors_total";
pub const RECONNECTS: &str = "streamstorm_client_reconnects_total";
pub const STREAMS_GIVEN_UP: &str = "streamstorm_client_streams_given_up_total";
pub const MISSED_MESSAGES: &str = "streamstorm_client_missed_messages_total";
pub const MESSAGES_UNREAD: &str = "streamstorm_client_messages_unread_total";

/// Handles for one scenario, labelled by its method.
#[derive(Debug, Clone)]
pub struct ScenarioMetrics {
    pub latency: Histogram,
    pub time_to_first_message: Histogram,
    pub recovery: Histogram,
    pub stream_duration: Histogram,
    pub age: Histogram,
    pub active: Gauge,
    pub started: Counter,
    /// Indexed by gRPC code.
    pub ended: Vec<Counter>,
    pub sent: Counter,
    pub received: Counter,
    /// Indexed by gRPC code.
    pub errors_by_code: Vec<Counter>,
    /// Indexed by [`DisconnectKind`].
    pub errors_by_kind: Vec<Counter>,
    pub reconnects: Counter,
    pub given_up: Counter,
    pub missed: Counter,
    pub unread: Counter,
}

/// Help text for every family (Prometheus tooling expects one per family).
const HELP: &[(&str, Family, &str)] = &[
    (
        MESSAGE_LATENCY,
        Family::Histogram,
        "Per-message latency: send to reply (bidi), inter-arrival (server streaming), the reply (unary, client streaming).",
    ),
    (TIME_TO_FIRST_MESSAGE, Family::Histogram, "From opening a call to its first reply."),
    (RECOVERY, Family::Histogram, "From a failed call to the next first message on its slot."),
    (STREAM_DURATION, Family::Histogram, "How long calls lasted, from open to end."),
    (MESSAGE_AGE, Family::Histogram, "Age of a reply on arrival, from the timestamp it carries."),
    (STREAMS_ACTIVE, Family::Gauge, "Calls open now."),
    (STREAMS_STARTED, Family::Counter, "Call attempts started."),
    (STREAMS_ENDED, Family::Counter, "Calls ended, by the gRPC status code they ended with."),
    (MESSAGES_SENT, Family::Counter, "Messages the client sent."),
    (MESSAGES_RECEIVED, Family::Counter, "Messages the client received."),
    (ERRORS, Family::Counter, "Failed calls, by gRPC status code or by disconnect kind."),
    (RECONNECTS, Family::Counter, "Calls re-opened after a failure."),
    (STREAMS_GIVEN_UP, Family::Counter, "Slots that stopped after their reconnect attempts ran out."),
    (MISSED_MESSAGES, Family::Counter, "Messages missed, from gaps in the sequence field."),
    (
        MESSAGES_UNREAD,
        Family::Counter,
        "Messages sent on calls the server ended before reading them (servers that report what they read).",
    ),
];

impl ScenarioMetrics {
    /// Registers every series for `method` (`package.Service/Method`).
    pub fn register(method: &str) -> Self {
        static DESCRIBED: std::sync::Once = std::sync::Once::new();
        DESCRIBED.call_once(|| describe_families(HELP));
        let method = method.to_owned();
        let by_code = |name: &'static str| -> Vec<Counter> {
            (0..CODES as i32)
                .map(|code| {
                    let code = code_name(tonic::Code::from_i32(code));
                    counter!(name, "method" => method.clone(), "code" => code)
                })
                .collect()
        };
        Self {
            latency: histogram!(MESSAGE_LATENCY, "method" => method.clone()),
            time_to_first_message: histogram!(TIME_TO_FIRST_MESSAGE, "method" => method.clone()),
            recovery: histogram!(RECOVERY, "method" => method.clone()),
            stream_duration: histogram!(STREAM_DURATION, "method" => method.clone()),
            age: histogram!(MESSAGE_AGE, "method" => method.clone()),
            active: gauge!(STREAMS_ACTIVE, "method" => method.clone()),
            started: counter!(STREAMS_STARTED, "method" => method.clone()),
            ended: by_code(STREAMS_ENDED),
            sent: counter!(MESSAGES_SENT, "method" => method.clone()),
            received: counter!(MESSAGES_RECEIVED, "method" => method.clone()),
            errors_by_code: by_code(ERRORS),
            errors_by_kind: DisconnectKind::ALL
                .iter()
                .map(|kind| counter!(ERRORS, "method" => method.clone(), "kind" => kind.name()))
                .collect(),
            reconnects: counter!(RECONNECTS, "method" => method.clone()),
            given_up: counter!(STREAMS_GIVEN_UP, "method" => method.clone()),
            missed: counter!(MISSED_MESSAGES, "method" => method.clone()),
            unread: counter!(MESSAGES_UNREAD, "method" => method),
        }
    }
}
