//! The fault plan a profile compiles into: rules matched by method, each setting some fault
//! kinds, and an optional repeating timeline of phases. Plain data, checked at load; drawing
//! the faults for a stream is [`super::decide`]'s job.

use std::time::Duration;

use bytes::Bytes;
use tonic::Code;

/// How long a cut waits by default, once what was sent before it has been delivered, for the
/// client application to read it (see [`crate::driver`]).
pub const DEFAULT_LINGER: Duration = Duration::from_millis(500);

/// Everything the chaos engine does, compiled.
#[derive(Debug, Clone)]
pub struct FaultPlan {
    /// Seeds every draw together with the stream id (`chaos.seed`; `--seed` overrides).
    pub seed: u64,
    /// For each fault kind, the first rule (in order) that matches the method and sets it wins.
    pub rules: Vec<Rule>,
    /// A timeline that repeats from server start; empty for none.
    pub phases: Vec<Phase>,
    /// Whether clients may ask for faults with `x-streamstorm-*` request headers.
    pub header_faults: bool,
    /// Connection-level settings.
    pub connections: ConnectionFaults,
    /// The base layer under the rules: the stream limits of `server.limits` and the
    /// environment. Its latency applies only where no phase or rule sets latency; its message
    /// cap and stream timeout bound every stream (the smaller cap and shorter timeout win).
    pub base: Faults,
    /// How long a cut (reset, GOAWAY, TCP reset, blackhole) waits after the messages before it
    /// were delivered, so the client application reads them first; zero for the raw race.
    pub linger: Duration,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self {
            seed: 0,
            rules: Vec::new(),
            phases: Vec::new(),
            header_faults: false,
            connections: ConnectionFaults::default(),
            base: Faults::default(),
            linger: DEFAULT_LINGER,
        }
    }
}

/// Which methods a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodMatch {
    All,
    /// `package.Service/*`
    Service(String),
    /// `package.Service/Method`
    Method {
        service: String,
        method: String,
    },
}

impl MethodMatch {
    pub fn matches(&self, service: &str, method: &str) -> bool {
        match self {
            Self::All => true,
            Self::Service(wanted) => wanted == service,
            Self::Method { service: wanted_service, method: wanted_method } => {
                wanted_service == service && wanted_method == method
            }
        }
    }
}

/// As a profile writes it: `*`, `package.Service/*` or `package.Service/Method`.
impl std::fmt::Display for MethodMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => write!(f, "*"),
            Self::Service(service) => write!(f, "{service}/*"),
            Self::Method { service, method } => write!(f, "{service}/{method}"),
        }
    }
}

/// One rule: the faults it sets for the methods it matches.
#[derive(Debug, Clone)]
pub struct Rule {
    pub matcher: MethodMatch,
    pub faults: Faults,
}

/// Fault settings; `None` leaves a kind to later rules.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub latency: Option<Latency>,
    pub abort: Option<Abort>,
    pub fail: Option<Fail>,
    pub disconnect: Option<Disconnect>,
    /// Latency before each of the client's messages is handed on (`latency` with
    /// `direction: request`): to the responder under `serve`, to the upstream under `proxy`.
    pub request_latency: Option<Latency>,
    /// The proxy's connection to its upstream, broken part-way (`streamstorm proxy` only).
    pub upstream: Option<UpstreamFault>,
    pub message_cap: Option<MessageCap>,
    /// Inbound messages accepted before the stream ends with `RESOURCE_EXHAUSTED`.
    pub inbound_cap: Option<u64>,
    pub stream_timeout: Option<StreamTimeout>,
    pub rate_limit: Option<RateLimit>,
}

/// A probability in 0..=1.
pub type Rate = f64;

/// How a duration is drawn.
#[derive(Debug, Clone, PartialEq)]
pub enum Distribution {
    Fixed(Duration),
    /// `a..b`, uniform.
    Uniform(Duration, Duration),
    Normal {
        mean: Duration,
        stddev: Duration,
    },
    LogNormal {
        median: Duration,
        sigma: f64,
    },
    /// `{p50, p99}`: a log-normal fitted through both percentiles.
    Percentiles {
        p50: Duration,
        p99: Duration,
    },
}

/// A whole-number range, `a..b` inclusive, or one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountRange {
    pub min: u64,
    pub max: u64,
}

/// Latency injected before messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    pub first_message: Option<Distribution>,
    pub per_message: Option<Distribution>,
}

/// Status codes to draw from, with weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Codes(pub Vec<(Code, u32)>);

/// Ends a call before any message.
#[derive(Debug, Clone)]
pub struct Abort {
    pub rate: Rate,
    pub codes: Codes,
    pub message: String,
    /// An encoded `google.rpc.Status` for `grpc-status-details-bin`.
    pub details: Option<Bytes>,
}

/// When a mid-stream fault strikes.
#[derive(Debug, Clone, PartialEq)]
pub enum After {
    /// After this many messages sent.
    Messages(CountRange),
    /// After this long.
    Elapsed(Distribution),
}

/// Ends a stream part-way with a status.
#[derive(Debug, Clone)]
pub struct Fail {
    pub rate: Rate,
    pub after: After,
    pub codes: Codes,
    pub message: String,
}

/// Breaks a stream or its connection part-way.
#[derive(Debug, Clone)]
pub struct Disconnect {
    pub rate: Rate,
    pub after: After,
    pub mode: DisconnectMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectMode {
    /// HTTP/2 RST_STREAM on the stream, with this h2 error code.
    ResetStream { h2_code: u32 },
    /// GOAWAY on the stream's connection: drain for `grace` (then close), or close at once.
    Goaway { grace: Option<Duration> },
    /// The connection is closed with a TCP RST.
    TcpReset,
    /// The stream stops sending but stays open.
    Stall,
    /// The whole connection stops reading, writing and answering pings.
    Blackhole,
}

/// Breaks the proxy's connection to its upstream part-way, as a backend crash would.
#[derive(Debug, Clone)]
pub struct UpstreamFault {
    pub rate: Rate,
    pub after: After,
    pub mode: UpstreamCut,
}

/// How the proxy breaks its connection to the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamCut {
    /// Closed with a TCP RST: the upstream sees its connection reset.
    Reset,
    /// Closed with a FIN and no GOAWAY, as when a backend's process dies.
    Close,
}

impl UpstreamCut {
    /// The name used in profiles, logs and statuses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reset => "reset",
            Self::Close => "close",
        }
    }
}

/// At most `max` messages sent, then the stream ends with `code` (OK by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCap {
    pub max: u64,
    pub code: Code,
}

/// The stream's lifetime, then it ends with `code` (`DEADLINE_EXCEEDED` by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTimeout {
    pub after: Duration,
    pub code: Code,
}

/// Rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    /// Messages a stream may send per second (sends are paced, not dropped).
    pub messages_per_second: Option<u32>,
    /// New calls per second to a matching method; beyond it, `RESOURCE_EXHAUSTED`.
    pub calls_per_second: Option<u32>,
}

/// Connection-level faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnectionFaults {
    /// Connections older than this get GOAWAY (like load balancers' max connection age).
    pub max_age: Option<Duration>,
    /// Grace after that GOAWAY before the connection is closed.
    pub max_age_grace: Option<Duration>,
    /// New calls per second across the whole server; beyond it, `RESOURCE_EXHAUSTED`.
    pub calls_per_second: Option<u32>,
}

/// One step of the repeating timeline.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub duration: Duration,
    /// Faults that take precedence over the rules while the phase lasts.
    pub faults: Faults,
    /// What the phase does, as it begins, to the streams and connections already live.
    pub on_enter: Option<LiveCut>,
}

impl Phase {
    /// Whether the phase is an outage: it refuses or breaks calls (abort, fail, disconnect) or
    /// cuts what is live as it begins.
    pub fn is_outage(&self) -> bool {
        self.faults.abort.is_some()
            || self.faults.fail.is_some()
            || self.faults.disconnect.is_some()
            || self.on_enter.is_some()
    }
}

/// A cut of live traffic: what a phase does as it begins (`on_enter`), or what
/// `POST /admin/disconnect` asks for.
#[derive(Debug, Clone)]
pub struct LiveCut {
    pub action: LiveAction,
    /// The share of the matching live streams (status, `reset_stream`) or connections
    /// (`goaway`, `tcp_reset`, `blackhole`) cut; which ones is drawn from the plan's seed.
    pub fraction: Rate,
    /// Only streams of these methods, or connections carrying one; all by default.
    pub matcher: MethodMatch,
}

/// What a live cut does to each stream or connection it hits.
#[derive(Debug, Clone)]
pub enum LiveAction {
    /// Reset the stream, or GOAWAY, TCP-reset or blackhole its connection (never `Stall`).
    Disconnect(DisconnectMode),
    /// End the stream with this status (`code`, `message`, and encoded details if any).
    Fail { code: Code, message: String, details: Option<Bytes> },
}

impl LiveAction {
    /// Whether the cut acts on whole connections rather than single streams.
    pub fn cuts_connections(&self) -> bool {
        matches!(
            self,
            Self::Disconnect(
                DisconnectMode::Goaway { .. } | DisconnectMode::TcpReset | DisconnectMode::Blackhole
            )
        )
    }

    /// The action in a word or two: the mode's name, or `fail CODE`.
    pub fn describe(&self) -> String {
        match self {
            Self::Disconnect(mode) => super::FaultKind::from(*mode).name().to_owned(),
            Self::Fail { code, .. } => format!("fail {}", crate::proto::status::code_name(*code)),
        }
    }
}
