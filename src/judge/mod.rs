//! The judge: how each client under test copes with the faults it meets. The server reports
//! what it sees — calls arriving and ending (with the fault that ended them), messages
//! delivered, connections opening, blackholed and abandoned, phases changing — and the judge
//! keeps, per client and method, reconnect delays by ending, retry gaps with the backoff fitted
//! to them, attempt rates and hot loops, `RetryInfo` honoured, recovery after outages, the herd
//! after them, resume positions and dead-peer detection. [`Judge::report`] turns that into
//! figures and verdicts against the profile's `expect` section.
//!
//! Clients are told apart by `clients.identify_by`; at most `clients.max_tracked` are kept, the
//! least recently seen dropped first. The judge imports nothing from the server.

pub mod backoff;
mod call;
mod client;
mod metrics;
pub mod report;
pub mod resume;
pub mod samples;
mod timeline;
mod verdict;

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use lru::LruCache;
use tracing::info;

use crate::config::clients::{ClientIdentity, ClientsSection, Expectation};
use crate::proto::MethodCatalog;
use call::CallTicket;
pub use call::{CallArrival, Ending, JudgedCall, RequestProbe};
use client::{CallOutcome, ClientRecord};
use metrics::PeerMetrics;
pub use report::JudgeReport;
use resume::ResumeProbe;
use timeline::{Event, TimelineEntry};

/// The longest identity kept; longer header values are cut.
const MAX_IDENTITY: usize = 128;
/// Attempt counts per second kept for the herd (a day).
const MAX_SECONDS: usize = 86_400;
/// Attempts per second counted as a hot loop when neither `clients.hot_loop` nor
/// `expect.max_attempts_per_second` says.
const DEFAULT_HOT_LOOP: f64 = 10.0;
/// Clients seen this long before an outage began are expected to recover after it.
const RECOVERY_LOOKBACK: Duration = Duration::from_secs(60);

/// What the judge is told to measure and expect.
#[derive(Debug, Clone, Default)]
pub struct JudgeSettings {
    pub clients: ClientsSection,
    pub expect: Vec<Expectation>,
    /// Clients with attempt series of their own (`metrics.per_client.max_clients`).
    pub max_client_series: usize,
}

struct ConnectionRecord {
    client: Option<Arc<str>>,
}

/// A phase as it ran.
#[derive(Debug, Clone)]
struct PhaseSpan {
    name: String,
    outage: bool,
    began: Instant,
    ended: Option<Instant>,
}

struct JudgeState {
    clients: LruCache<Arc<str>, ClientRecord>,
    dropped: u64,
    connections: HashMap<u64, ConnectionRecord>,
    /// Attempts by every client in each second since the server started.
    attempts_per_second: VecDeque<u32>,
    phases: Vec<PhaseSpan>,
    /// Clients given attempt series of their own so far.
    client_series: usize,
}

/// Follows every client under test; see the module documentation.
pub struct Judge {
    settings: JudgeSettings,
    hot_loop: f64,
    started: Instant,
    started_wall: SystemTime,
    /// When the run ended ([`Judge::end_run`]): the report judges as of then, not as of the
    /// end of the drain that follows.
    ended: std::sync::OnceLock<Instant>,
    /// By method name (`package.Service/Method`).
    probes: HashMap<String, Arc<ResumeProbe>>,
    /// Every method name of the catalog, shared by the calls that name it.
    methods: HashMap<String, Arc<str>>,
    state: Mutex<JudgeState>,
    metrics: PeerMetrics,
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("identify_by", &self.settings.clients.identify_by)
            .finish_non_exhaustive()
    }
}

impl Judge {
    /// A judge for the methods of `catalog`.
    pub fn new(settings: JudgeSettings, catalog: &MethodCatalog) -> Self {
        let probes = settings
            .clients
            .resume
            .as_ref()
            .map(|fields| {
                catalog
                    .methods()
                    .filter_map(|entry| {
                        let probe = ResumeProbe::for_method(fields, entry)?;
                        Some((method_name(&entry.path).to_owned(), Arc::new(probe)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let hot_loop = settings.clients.hot_loop.unwrap_or_else(|| {
            settings
                .expect
                .iter()
                .find_map(|expectation| match expectation.expected {
                    crate::config::clients::Expected::MaxAttemptsPerSecond(limit) => Some(limit),
                    _ => None,
                })
                .unwrap_or(DEFAULT_HOT_LOOP)
        });
        let capacity = NonZeroUsize::new(settings.clients.max_tracked).unwrap_or(NonZeroUsize::MIN);
        Self {
            hot_loop,
            started: Instant::now(),
            started_wall: SystemTime::now(),
            ended: std::sync::OnceLock::new(),
            probes,
            methods: catalog
                .methods()
                .map(|entry| {
                    let name = method_name(&entry.path);
                    (name.to_owned(), Arc::from(name))
                })
                .collect(),
            state: Mutex::new(JudgeState {
                clients: LruCache::new(capacity),
                dropped: 0,
                connections: HashMap::new(),
                attempts_per_second: VecDeque::new(),
                phases: Vec::new(),
                client_series: 0,
            }),
            metrics: PeerMetrics::register(),
            settings,
        }
    }

    pub fn settings(&self) -> &JudgeSettings {
        &self.settings
    }

    /// Marks the end of the run (its duration reached, or a signal): what is still pending then
    /// — a blackhole not yet detected, an outage not yet recovered from — is judged as of this
    /// moment, however long the shutdown takes.
    pub fn end_run(&self) {
        let _ = self.ended.set(Instant::now());
    }

    fn lock(&self) -> MutexGuard<'_, JudgeState> {
        // Every update leaves the state whole; a panic elsewhere cannot tear it.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn seconds(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64()
    }

    /// The client a call comes from, as `clients.identify_by` tells them apart.
    fn identify(&self, arrival: &CallArrival<'_>) -> Arc<str> {
        let header = |name: &str| arrival.headers.get(name).and_then(|value| value.to_str().ok());
        let identity = match &self.settings.clients.identify_by {
            ClientIdentity::PeerIp => arrival.peer.ip().to_string(),
            ClientIdentity::Peer => arrival.peer.to_string(),
            ClientIdentity::Header(name) => match header(name) {
                Some(value) => format!("{name}={value}"),
                None => format!("{} (no {name})", arrival.peer.ip()),
            },
            ClientIdentity::UserAgent => header("user-agent").unwrap_or("(no user-agent)").to_owned(),
        };
        let mut end = identity.len().min(MAX_IDENTITY);
        while !identity.is_char_boundary(end) {
            end -= 1;
        }
        Arc::from(&identity[..end])
    }

    /// A connection was accepted.
    pub fn connection_opened(&self, connection: u64) {
        self.lock().connections.insert(connection, ConnectionRecord { client: None });
    }

    /// A connection closed, for whatever reason.
    pub fn connection_closed(&self, connection: u64) {
        self.lock().connections.remove(&connection);
    }

    /// A connection stopped answering (a blackhole began).
    pub fn blackhole_began(&self, connection: u64) {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(client) = state.connections.get(&connection).and_then(|record| record.client.clone()) else {
            return;
        };
        if let Some(record) = state.clients.get_mut(&client) {
            record.blackholed(connection, now);
            record.note(self.entry(now, None, Event::Blackhole { connection }));
        }
    }

    /// The client closed a blackholed connection: it detected the dead peer.
    pub fn peer_abandoned(&self, connection: u64) {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(client) = state.connections.get(&connection).and_then(|record| record.client.clone()) else {
            return;
        };
        let Some(record) = state.clients.get_mut(&client) else { return };
        if let Some(detected) = record.abandoned(connection, now) {
            self.metrics.detection.record(detected.as_secs_f64());
            record.note(self.entry(now, None, Event::Abandoned { connection, after: detected }));
        }
    }

    /// A call arrived.
    pub fn call_started(self: &Arc<Self>, arrival: CallArrival<'_>) -> JudgedCall {
        let now = Instant::now();
        let method = self.methods.get(arrival.method).cloned().unwrap_or_else(|| Arc::from(arrival.method));
        let deadline = arrival.headers.contains_key("grpc-timeout");
        let user_agent =
            || arrival.headers.get("user-agent").and_then(|value| value.to_str().ok()).map(str::to_owned);
        self.metrics.attempts.increment(1);
        let mut state = self.lock();
        // An identity by peer is the connection's for its life: worked out at its first call.
        let known =
            matches!(self.settings.clients.identify_by, ClientIdentity::PeerIp | ClientIdentity::Peer)
                .then(|| state.connections.get(&arrival.connection).and_then(|record| record.client.clone()))
                .flatten();
        let client = known.unwrap_or_else(|| self.identify(&arrival));
        state.count_second(self.seconds(now));
        if !state.clients.contains(&client) {
            let series = (state.client_series < self.settings.max_client_series).then(|| {
                state.client_series += 1;
                ::metrics::counter!(crate::telemetry::names::PEER_CLIENT_ATTEMPTS, "client" => client.to_string())
            });
            let fresh = ClientRecord::new(now, user_agent(), series);
            if state.clients.push(client.clone(), fresh).is_some_and(|(evicted, _)| evicted != client) {
                state.dropped += 1;
                self.metrics.dropped.increment(1);
            }
            self.metrics.tracked.set(state.clients.len() as f64);
        }
        let new_connection = match state.connections.get_mut(&arrival.connection) {
            Some(record) if record.client.is_none() => {
                record.client = Some(client.clone());
                true
            }
            _ => false,
        };
        let record = state.clients.get_mut(&client).expect("inserted above");
        if new_connection {
            record.connections += 1;
            self.metrics.connections.increment(1);
        }
        if record.count_attempt(now, deadline, self.hot_loop) {
            self.metrics.hot_loops.increment(1);
            info!(client = %client, limit = self.hot_loop, "Client retrying in a hot loop.");
        }
        let pairing = record.pair(&method, arrival.connection, now);
        if let Some((label, delay)) = &pairing.delay {
            if let Some(histogram) = self.metrics.reconnect_delay(label) {
                histogram.record(delay.as_secs_f64());
            }
        }
        if let Some(gap) = pairing.gap {
            self.metrics.retry_gap.record(gap.as_secs_f64());
        }
        if let Some(honoured) = pairing.retry_info {
            self.metrics.retry_info(honoured).increment(1);
        }
        record.note(self.entry(now, Some(method.clone()), Event::Attempt { after: pairing.delay }));
        let ticket = CallTicket {
            client,
            connection: arrival.connection,
            retry: pairing.retry,
            signals: record.signals.clone(),
            method: method.clone(),
        };
        drop(state);
        JudgedCall {
            judge: self.clone(),
            probe: self.probes.get(&*method).cloned(),
            ticket,
            outcome: CallOutcome::default(),
        }
    }

    fn call_ended(&self, ticket: &CallTicket, ending: Ending, outcome: CallOutcome, now: Instant) {
        let mut state = self.lock();
        let Some(record) = state.clients.peek_mut(&ticket.client) else { return };
        let event = Event::End { ending, messages: outcome.messages_sent };
        record.end(ticket, ending, outcome, now);
        record.note(self.entry(now, Some(ticket.method.clone()), event));
    }

    fn resume_asked(&self, client: &Arc<str>, method: &Arc<str>, asked: resume::Position) {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(record) = state.clients.peek_mut(client) else { return };
        if let Some((class, delivered)) = record.resume(method, &asked) {
            self.metrics.resume(class).increment(1);
            record.note(self.entry(now, Some(method.clone()), Event::Resume { class, asked, delivered }));
        }
    }

    /// A message reached a client an outage left waiting.
    fn recovered(&self, ticket: &CallTicket) {
        let now = Instant::now();
        let mut state = self.lock();
        ticket.signals.recovery_pending.store(false, Ordering::Relaxed);
        let Some(record) = state.clients.peek_mut(&ticket.client) else { return };
        for took in record.recovered(now) {
            self.metrics.recovery.record(took.as_secs_f64());
            record.note(self.entry(now, Some(ticket.method.clone()), Event::Recovered { after: took }));
        }
    }

    /// The phase in force changed: an outage that ends leaves every client that was around
    /// waiting to recover.
    pub fn phase_changed(&self, name: Option<&str>, outage: bool, since: Instant) {
        let mut state = self.lock();
        if state.phases.last().is_some_and(|phase| phase.began == since) {
            return;
        }
        let ending_outage = state.phases.last_mut().filter(|phase| phase.ended.is_none()).map(|phase| {
            phase.ended = Some(since);
            (phase.outage, phase.began)
        });
        if let Some(name) = name {
            state.phases.push(PhaseSpan { name: name.to_owned(), outage, began: since, ended: None });
        }
        let Some((true, began)) = ending_outage else { return };
        let around_since = began.checked_sub(RECOVERY_LOOKBACK).unwrap_or(self.started);
        for (_, record) in state.clients.iter_mut() {
            if record.last_seen >= around_since {
                record.recoveries.push((since, None));
                record.signals.recovery_pending.store(true, Ordering::Relaxed);
            }
        }
    }

    fn entry(&self, at: Instant, method: Option<Arc<str>>, event: Event) -> TimelineEntry {
        TimelineEntry { at_s: samples::round_ms(self.seconds(at)) / 1000.0, method, event }
    }
}

impl JudgeState {
    fn count_second(&mut self, seconds: f64) {
        let second = seconds as usize;
        if second >= MAX_SECONDS {
            return;
        }
        if self.attempts_per_second.len() <= second {
            self.attempts_per_second.resize(second + 1, 0);
        }
        self.attempts_per_second[second] += 1;
    }
}

/// `package.Service/Method` from a path `/package.Service/Method`.
pub fn method_name(path: &str) -> &str {
    path.trim_start_matches('/')
}
