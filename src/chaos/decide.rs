//! Deciding a stream's faults when it starts: the plan's layers resolved for its method (the
//! phase in force, then the rules, then the base layer of stream limits — see [`resolve`]),
//! call rate limits, client-requested header faults, and every random draw made from an RNG
//! seeded by the plan's seed and the stream id — so the same seed and the same traffic give the
//! same faults on the same streams. Carrying the faults out is the stream driver's job.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::HeaderMap;
use rand::Rng;
use rand::rngs::StdRng;
use tonic::{Code, Status};

use super::plan::{
    Abort, After, Codes, Disconnect, DisconnectMode, Distribution, Fail, FaultPlan, Faults, Latency,
    MessageCap, Phase, RateLimit, StreamTimeout, UpstreamCut, UpstreamFault,
};
use super::sample::stream_rng;
use super::tally::{FaultKind, FaultTally};
use super::timeline::PhaseClock;
use crate::proto::MethodEntry;

/// Distinguishes chaos draws from other per-stream draws.
const CHAOS_RNG: u64 = 4;
/// Distinguishes the draws of delays on the client's messages.
const REQUEST_RNG: u64 = 5;

/// When a mid-stream fault strikes, drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Once this many messages have been sent.
    AfterMessages(u64),
    /// Once the stream is this old.
    AfterElapsed(Duration),
}

/// The faults one stream will suffer, drawn at its start.
#[derive(Debug)]
pub struct StreamFaults {
    /// End before any message with this status (an abort, or a call over a rate limit).
    pub abort: Option<(FaultKind, Status)>,
    pub first_message_latency: Option<Distribution>,
    pub per_message_latency: Option<Distribution>,
    pub fail: Option<(Trigger, Status)>,
    pub disconnect: Option<(Trigger, DisconnectMode)>,
    /// Break the proxy's connection to its upstream (proxied streams only).
    pub upstream: Option<(Trigger, UpstreamCut)>,
    /// Delays on the client's messages before they are handed on.
    pub request_delays: Option<RequestDelays>,
    pub message_cap: Option<MessageCap>,
    pub inbound_cap: Option<u64>,
    pub stream_timeout: Option<StreamTimeout>,
    pub messages_per_second: Option<u32>,
    /// How long a cut waits, once what was sent before it has been delivered, for the client
    /// application to read it (`chaos.linger`); zero cuts at once, the raw race.
    pub cut_linger: Duration,
    /// Draws latencies as messages go.
    pub rng: StdRng,
}

/// The latency on a stream's inbound messages, with draws of its own so it does not disturb
/// the outbound schedule's.
#[derive(Debug)]
pub struct RequestDelays {
    pub first_message: Option<Distribution>,
    pub per_message: Option<Distribution>,
    pub rng: StdRng,
}

/// What was drawn for a stream, small enough to keep while it lives (listed by `/streams`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultSummary {
    pub fail: Option<(Trigger, Code)>,
    pub disconnect: Option<(Trigger, FaultKind)>,
    pub upstream: Option<(Trigger, UpstreamCut)>,
    pub message_cap: Option<u64>,
    pub stream_timeout: Option<Duration>,
    /// Messages are delayed by injected latency.
    pub delayed: bool,
    /// The client's messages are delayed by injected latency.
    pub requests_delayed: bool,
    pub messages_per_second: Option<u32>,
}

impl FaultSummary {
    /// One line per fault, e.g. `fail INTERNAL after 5 messages`.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some((trigger, code)) = self.fail {
            lines.push(format!("fail {} {trigger}", crate::proto::status::code_name(code)));
        }
        if let Some((trigger, kind)) = self.disconnect {
            lines.push(format!("{} {trigger}", kind.name()));
        }
        if let Some((trigger, cut)) = self.upstream {
            lines.push(format!("upstream {} {trigger}", cut.name()));
        }
        if let Some(max) = self.message_cap {
            lines.push(format!("message cap {max}"));
        }
        if let Some(after) = self.stream_timeout {
            lines.push(format!("timeout after {}", humantime::format_duration(after)));
        }
        if self.delayed {
            lines.push("latency".to_owned());
        }
        if self.requests_delayed {
            lines.push("request latency".to_owned());
        }
        if let Some(rate) = self.messages_per_second {
            lines.push(format!("paced at {rate} messages/s"));
        }
        lines
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AfterMessages(count) => write!(f, "after {count} messages"),
            Self::AfterElapsed(after) => write!(f, "after {}", humantime::format_duration(*after)),
        }
    }
}

impl StreamFaults {
    /// The drawn faults in brief.
    pub fn summary(&self) -> FaultSummary {
        FaultSummary {
            fail: self.fail.as_ref().map(|(trigger, status)| (*trigger, status.code())),
            disconnect: self.disconnect.map(|(trigger, mode)| (trigger, FaultKind::from(mode))),
            upstream: self.upstream,
            message_cap: self.message_cap.map(|cap| cap.max),
            stream_timeout: self.stream_timeout.map(|timeout| timeout.after),
            delayed: self.first_message_latency.is_some() || self.per_message_latency.is_some(),
            requests_delayed: self.request_delays.is_some(),
            messages_per_second: self.messages_per_second,
        }
    }

    /// True when nothing needs to watch the stream's outbound messages.
    pub fn is_quiet(&self) -> bool {
        self.first_message_latency.is_none()
            && self.per_message_latency.is_none()
            && self.fail.is_none()
            && self.disconnect.is_none()
            && self.upstream.is_none()
            && self.message_cap.is_none()
            && self.stream_timeout.is_none()
            && self.messages_per_second.is_none()
    }
}

/// The live chaos state of a server: the current plan (swapped on reload), the phase clock,
/// the on/off switch, and call rate limiters.
pub struct ChaosEngine {
    plan: ArcSwap<FaultPlan>,
    /// The timeline: the phase in force, pinned or by the clock, and its changes.
    pub(super) phases: PhaseClock,
    enabled: AtomicBool,
    call_limiters: Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>,
    server_limiter: Mutex<Option<(u32, Arc<DefaultDirectRateLimiter>)>>,
    /// Every fault injected under this engine.
    tally: Arc<FaultTally>,
}

impl std::fmt::Debug for ChaosEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosEngine").field("enabled", &self.enabled()).finish_non_exhaustive()
    }
}

impl ChaosEngine {
    pub fn new(plan: FaultPlan) -> Self {
        let tally = Arc::<FaultTally>::default();
        tally.register(&plan);
        Self {
            phases: PhaseClock::new(&plan),
            plan: ArcSwap::from_pointee(plan),
            enabled: AtomicBool::new(true),
            call_limiters: Mutex::new(HashMap::new()),
            server_limiter: Mutex::new(None),
            tally,
        }
    }

    /// The faults injected so far.
    pub fn tally(&self) -> &Arc<FaultTally> {
        &self.tally
    }

    /// The plan new streams use.
    pub fn plan(&self) -> Arc<FaultPlan> {
        self.plan.load_full()
    }

    /// Sets the base layer (the stream limits) of this plan and of every plan swapped in later.
    pub fn set_base(&self, base: Faults) {
        let plan = FaultPlan { base, ..(*self.plan()).clone() };
        self.tally.register(&plan);
        self.plan.store(Arc::new(plan));
    }

    /// Swaps in a new plan for new streams; streams already running keep theirs. The plan keeps
    /// the engine's base layer.
    pub fn replace(&self, plan: FaultPlan) {
        let plan = FaultPlan { base: self.plan().base.clone(), ..plan };
        self.tally.register(&plan);
        self.plan.store(Arc::new(plan));
        self.call_limiters.lock().unwrap_or_else(|p| p.into_inner()).clear();
        *self.server_limiter.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.phases.pin(None);
    }

    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Draws the faults for a new stream of `method`.
    pub fn draw(&self, method: &MethodEntry, stream_id: u64, headers: &HeaderMap) -> StreamFaults {
        let plan = self.plan();
        let mut rng = stream_rng(plan.seed, stream_id, CHAOS_RNG);
        let request_rng = || stream_rng(plan.seed, stream_id, REQUEST_RNG);
        if !self.enabled() {
            // Chaos switched off: the base layer's stream limits still hold.
            let mut drawn =
                StreamFaults::draw(&resolve(&plan, Layers::BaseOnly, method), &mut rng, request_rng);
            drawn.rng = rng;
            return drawn;
        }
        let phase = self.current_phase(&plan).and_then(|index| plan.phases.get(index));
        let faults = resolve(&plan, Layers::All { phase }, method);
        let mut drawn = StreamFaults::draw(&faults, &mut rng, request_rng);
        if drawn.abort.is_none() {
            drawn.abort = self
                .rate_limited(&plan, method, faults.rate_limit.and_then(|limit| limit.calls_per_second))
                .map(|status| (FaultKind::RateLimited, status));
        }
        if plan.header_faults {
            apply_header_faults(&mut drawn, headers);
        }
        drawn.rng = rng;
        drawn
    }

    /// `RESOURCE_EXHAUSTED` when the server's or the method's call rate is exceeded.
    fn rate_limited(
        &self,
        plan: &FaultPlan,
        method: &MethodEntry,
        method_rate: Option<u32>,
    ) -> Option<Status> {
        if let Some(rate) = plan.connections.calls_per_second {
            let limiter = {
                let mut server = self.server_limiter.lock().unwrap_or_else(|p| p.into_inner());
                match &*server {
                    Some((known, limiter)) if *known == rate => limiter.clone(),
                    _ => {
                        let limiter = Arc::new(limiter_for(rate));
                        *server = Some((rate, limiter.clone()));
                        limiter
                    }
                }
            };
            if limiter.check().is_err() {
                return Some(Status::resource_exhausted(format!(
                    "server rate limit of {rate} calls/s exceeded"
                )));
            }
        }
        let rate = method_rate?;
        let limiter = self
            .call_limiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(method.path.clone())
            .or_insert_with(|| Arc::new(limiter_for(rate)))
            .clone();
        limiter.check().is_err().then(|| {
            Status::resource_exhausted(format!("rate limit of {rate} calls/s for {} exceeded", method.path))
        })
    }
}

fn limiter_for(rate: u32) -> DefaultDirectRateLimiter {
    RateLimiter::direct(Quota::per_second(NonZeroU32::new(rate.max(1)).expect("at least one")))
}

/// The settings a stream draws from, borrowed from the plan: resolving a stream's faults
/// copies nothing.
#[derive(Default)]
struct Resolved<'a> {
    latency: Option<&'a Latency>,
    abort: Option<&'a Abort>,
    fail: Option<&'a Fail>,
    disconnect: Option<&'a Disconnect>,
    request_latency: Option<&'a Latency>,
    upstream: Option<&'a UpstreamFault>,
    message_cap: Option<MessageCap>,
    inbound_cap: Option<u64>,
    stream_timeout: Option<StreamTimeout>,
    rate_limit: Option<RateLimit>,
    cut_linger: Duration,
}

impl<'a> Resolved<'a> {
    /// Fills the kinds still unset from `set`.
    fn fill_from(&mut self, set: &'a Faults) {
        self.latency = self.latency.or(set.latency.as_ref());
        self.abort = self.abort.or(set.abort.as_ref());
        self.fail = self.fail.or(set.fail.as_ref());
        self.disconnect = self.disconnect.or(set.disconnect.as_ref());
        self.request_latency = self.request_latency.or(set.request_latency.as_ref());
        self.upstream = self.upstream.or(set.upstream.as_ref());
        self.message_cap = self.message_cap.or(set.message_cap);
        self.inbound_cap = self.inbound_cap.or(set.inbound_cap);
        self.stream_timeout = self.stream_timeout.or(set.stream_timeout);
        self.rate_limit = self.rate_limit.or(set.rate_limit);
    }
}

/// Which of the plan's layers a stream draws from.
#[derive(Clone, Copy)]
enum Layers<'a> {
    /// The phase in force (if any), the rules, then the base layer.
    All { phase: Option<&'a Phase> },
    /// Only the base layer: chaos is switched off, stream limits still hold.
    BaseOnly,
}

/// Precedence, in this one place. Per fault kind: the phase in force, else the first matching
/// rule that sets it, else the base layer. A layer that sets `latency` at all (say only
/// `first_message`) owns latency, so the base layer's per-message latency does not add to it.
/// The base layer's message cap and stream timeout are limits too: they bound whatever a phase
/// or rule set — the smaller cap and the shorter timeout win.
fn resolve<'a>(plan: &'a FaultPlan, layers: Layers<'a>, method: &MethodEntry) -> Resolved<'a> {
    let mut faults = Resolved { cut_linger: plan.linger, ..Resolved::default() };
    if let Layers::All { phase } = layers {
        if let Some(phase) = phase {
            faults.fill_from(&phase.faults);
        }
        for rule in plan.rules.iter().filter(|rule| rule.matcher.matches(&method.service, &method.method)) {
            faults.fill_from(&rule.faults);
        }
    }
    let (cap, timeout) = (faults.message_cap, faults.stream_timeout);
    faults.fill_from(&plan.base);
    faults.message_cap = smaller(cap, plan.base.message_cap, |cap| cap.max);
    faults.stream_timeout = smaller(timeout, plan.base.stream_timeout, |timeout| timeout.after);
    faults
}

/// The one of two optional settings with the smaller `key`; `a` on a tie.
fn smaller<T, K: Ord>(a: Option<T>, b: Option<T>, key: impl Fn(&T) -> K) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if key(&b) < key(&a) { b } else { a }),
        (a, b) => a.or(b),
    }
}

impl StreamFaults {
    /// No faults at all; `rng` draws any latency added later (by stream limits).
    pub fn none(rng: StdRng) -> Self {
        Self {
            abort: None,
            first_message_latency: None,
            per_message_latency: None,
            fail: None,
            disconnect: None,
            upstream: None,
            request_delays: None,
            message_cap: None,
            inbound_cap: None,
            stream_timeout: None,
            messages_per_second: None,
            cut_linger: Duration::ZERO,
            rng,
        }
    }

    /// Draws in a fixed order (abort, fail, disconnect, upstream), so draws line up across runs;
    /// the delays on the client's messages draw from `request_rng`.
    fn draw(faults: &Resolved<'_>, rng: &mut StdRng, request_rng: impl FnOnce() -> StdRng) -> Self {
        let mut drawn = Self::none(stream_rng(0, 0, 0));
        drawn.cut_linger = faults.cut_linger;
        drawn.abort = faults.abort.and_then(|abort| {
            rng.random_bool(abort.rate.clamp(0.0, 1.0)).then(|| {
                let code = pick_code(&abort.codes, rng);
                let status = match &abort.details {
                    Some(details) => Status::with_details(code, abort.message.clone(), details.clone()),
                    None => Status::new(code, abort.message.clone()),
                };
                (FaultKind::Abort, status)
            })
        });
        drawn.fail = faults.fail.and_then(|fail| {
            rng.random_bool(fail.rate.clamp(0.0, 1.0)).then(|| {
                (trigger(&fail.after, rng), Status::new(pick_code(&fail.codes, rng), fail.message.clone()))
            })
        });
        drawn.disconnect = faults.disconnect.and_then(|disconnect| {
            rng.random_bool(disconnect.rate.clamp(0.0, 1.0))
                .then(|| (trigger(&disconnect.after, rng), disconnect.mode))
        });
        drawn.upstream = faults.upstream.and_then(|upstream| {
            rng.random_bool(upstream.rate.clamp(0.0, 1.0))
                .then(|| (trigger(&upstream.after, rng), upstream.mode))
        });
        drawn.request_delays = faults.request_latency.and_then(|latency| {
            let first_message = latency.first_message.clone().filter(Distribution::delays);
            let per_message = latency.per_message.clone().filter(Distribution::delays);
            (first_message.is_some() || per_message.is_some()).then(|| RequestDelays {
                first_message,
                per_message,
                rng: request_rng(),
            })
        });
        if let Some(latency) = faults.latency {
            drawn.first_message_latency = latency.first_message.clone().filter(Distribution::delays);
            drawn.per_message_latency = latency.per_message.clone().filter(Distribution::delays);
        }
        drawn.message_cap = faults.message_cap;
        drawn.inbound_cap = faults.inbound_cap;
        drawn.stream_timeout = faults.stream_timeout;
        drawn.messages_per_second = faults.rate_limit.and_then(|limit| limit.messages_per_second);
        drawn
    }
}

fn trigger(after: &After, rng: &mut StdRng) -> Trigger {
    match after {
        After::Messages(range) => Trigger::AfterMessages(range.sample(rng)),
        After::Elapsed(distribution) => Trigger::AfterElapsed(distribution.sample(rng)),
    }
}

fn pick_code(codes: &Codes, rng: &mut StdRng) -> Code {
    let total: u32 = codes.0.iter().map(|(_, weight)| *weight).sum();
    if total == 0 {
        return codes.0.first().map_or(Code::Unavailable, |(code, _)| *code);
    }
    let mut ticket = rng.random_range(0..total);
    for (code, weight) in &codes.0 {
        if ticket < *weight {
            return *code;
        }
        ticket -= weight;
    }
    Code::Unavailable
}

/// `x-streamstorm-*` request headers, when the profile allows them, override drawn faults.
fn apply_header_faults(faults: &mut StreamFaults, metadata: &HeaderMap) {
    let number = |name: &str| {
        metadata.get(name).and_then(|value| value.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
    };
    if let Some(code) =
        number("x-streamstorm-abort").and_then(|n| crate::proto::status::code_from_number(n as i64))
    {
        faults.abort = Some((FaultKind::Abort, Status::new(code, "abort requested by x-streamstorm-abort")));
    }
    if let Some(millis) = number("x-streamstorm-delay-ms") {
        faults.per_message_latency = Some(Distribution::Fixed(Duration::from_millis(millis)));
    }
    if let Some(count) = number("x-streamstorm-disconnect-after") {
        let mode = match metadata.get("x-streamstorm-disconnect-mode").and_then(|v| v.to_str().ok()) {
            Some("goaway") => DisconnectMode::Goaway { grace: None },
            Some("tcp_reset") => DisconnectMode::TcpReset,
            Some("stall") => DisconnectMode::Stall,
            Some("blackhole") => DisconnectMode::Blackhole,
            _ => DisconnectMode::ResetStream { h2_code: 8 },
        };
        faults.disconnect = Some((Trigger::AfterMessages(count), mode));
    }
    if let Some(count) = number("x-streamstorm-fail-after") {
        let code =
            number("x-streamstorm-fail-code").and_then(|n| crate::proto::status::code_from_number(n as i64));
        faults.fail = Some((
            Trigger::AfterMessages(count),
            Status::new(code.unwrap_or(Code::Internal), "failure requested by x-streamstorm-fail-after"),
        ));
    }
}
