//! What goes wrong between the proxy and its upstream, as the status the client gets and the
//! reason it is counted under (`streamstorm_proxy_upstream_errors_total{reason}`). The
//! statuses are what a gRPC client library talking to the upstream directly would report:
//! `UNAVAILABLE` for a server it cannot reach or whose connection dies, and a reset of the
//! stream, with the upstream's own HTTP/2 code, when the upstream resets it.

use std::error::Error as _;
use std::io::ErrorKind;

use tonic::Status;

use super::UpstreamTarget;
use super::sniff::Sniffed;
use crate::telemetry::names;

/// Why the upstream could not carry a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorReason {
    /// The connection was refused.
    Refused,
    /// No route, no such host, or another failure to connect.
    Unreachable,
    /// Connecting took longer than the connect timeout.
    Timeout,
    /// The TLS handshake failed.
    Tls,
    /// The upstream does not speak HTTP/2.
    Protocol,
    /// The upstream reset the connection.
    Reset,
    /// The upstream closed the connection (or sent GOAWAY) with the call in flight.
    Closed,
    /// The upstream reset the call's stream.
    StreamReset,
}

impl UpstreamErrorReason {
    pub const ALL: [Self; 8] = [
        Self::Refused,
        Self::Unreachable,
        Self::Timeout,
        Self::Tls,
        Self::Protocol,
        Self::Reset,
        Self::Closed,
        Self::StreamReset,
    ];

    /// The `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::Reset => "reset",
            Self::Closed => "closed",
            Self::StreamReset => "stream_reset",
        }
    }

    /// Why a TCP connect failed.
    pub fn of_connect(error: &std::io::Error) -> Self {
        match error.kind() {
            ErrorKind::ConnectionRefused => Self::Refused,
            ErrorKind::TimedOut => Self::Timeout,
            _ => Self::Unreachable,
        }
    }

    fn count(self) {
        metrics::counter!(names::PROXY_UPSTREAM_ERRORS, "reason" => self.name()).increment(1);
    }
}

/// The upstream failed a call: counted once made.
#[derive(Debug)]
pub struct UpstreamError {
    pub reason: UpstreamErrorReason,
    /// What the client gets.
    pub status: Status,
}

impl UpstreamError {
    /// A failure with `detail` (the OS's or the library's words), counted.
    pub fn new(target: &UpstreamTarget, reason: UpstreamErrorReason, detail: String) -> Self {
        use UpstreamErrorReason as Reason;
        reason.count();
        let status = match reason {
            Reason::Refused | Reason::Unreachable | Reason::Timeout => {
                Status::unavailable(format!("upstream {target} unreachable: {detail}"))
            }
            Reason::Tls => Status::unavailable(format!("upstream {target}: {detail}")),
            Reason::Protocol => {
                Status::unavailable(format!("upstream {target} does not speak HTTP/2: {detail}"))
            }
            Reason::Reset => Status::unavailable(format!("upstream {target} reset the connection: {detail}")),
            Reason::Closed => {
                Status::unavailable(format!("upstream {target} closed the connection: {detail}"))
            }
            // Without the upstream's code (see `of_call`), as hyper resets a failed stream.
            Reason::StreamReset => reset(h2::Reason::INTERNAL_ERROR),
        };
        Self { reason, status }
    }

    /// Classifies a failure of a call in flight (its request, or its response body).
    pub fn of_call(target: &UpstreamTarget, error: &hyper::Error, sniffed: &Sniffed) -> Self {
        let reason = classify(error, sniffed);
        if reason == UpstreamErrorReason::StreamReset {
            reason.count();
            let code = h2_error(error).and_then(h2::Error::reason).unwrap_or(h2::Reason::INTERNAL_ERROR);
            return Self { reason, status: reset(code) };
        }
        let detail = match reason {
            UpstreamErrorReason::Protocol if sniffed.not_http2() => sniffed.describe(),
            UpstreamErrorReason::Protocol if sniffed.silent() => {
                format!("{} ({})", sniffed.describe(), describe(error))
            }
            _ => describe(error),
        };
        Self::new(target, reason, detail)
    }
}

/// The reason of a call's failure, from the errors hyper and h2 report.
fn classify(error: &hyper::Error, sniffed: &Sniffed) -> UpstreamErrorReason {
    use UpstreamErrorReason as Reason;
    if sniffed.not_http2() || sniffed.silent() {
        return Reason::Protocol;
    }
    match h2_error(error) {
        Some(h2) if h2.is_reset() && h2.is_remote() => Reason::StreamReset,
        Some(h2) if h2.is_go_away() => Reason::Closed,
        Some(h2) if h2.get_io().is_some_and(|io| io.kind() == ErrorKind::ConnectionReset) => Reason::Reset,
        Some(h2) if h2.is_library() => Reason::Protocol,
        _ if io_error(error).is_some_and(|io| io.kind() == ErrorKind::ConnectionReset) => Reason::Reset,
        _ => Reason::Closed,
    }
}

fn h2_error(error: &hyper::Error) -> Option<&h2::Error> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return Some(h2);
        }
        source = cause.source();
    }
    None
}

fn io_error(error: &hyper::Error) -> Option<&std::io::Error> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = cause.source();
    }
    None
}

/// A status that resets the client's stream with `code`: hyper finds the HTTP/2 code among
/// the error's sources and resets with it.
fn reset(code: h2::Reason) -> Status {
    Status::from_error(Box::new(h2::Error::from(code)))
}

/// The error and its causes, in one line.
fn describe(error: &hyper::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Registers every reason's series at zero, so dashboards see them before the first error.
pub fn register_metrics() {
    crate::telemetry::register_counter_at_zero(
        names::PROXY_UPSTREAM_ERRORS,
        "reason",
        &UpstreamErrorReason::ALL.map(UpstreamErrorReason::name),
    );
    metrics::gauge!(names::PROXY_UPSTREAM_CONNECTIONS).set(0.0);
}
