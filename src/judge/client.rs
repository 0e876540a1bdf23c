//! What the judge keeps of one client under test: its attempts and how they ended, the pairing
//! of each ending with the next attempt (reconnect delays, retry gaps, RetryInfo), its attempt
//! rate, resumes, recoveries and blackholes, and a short timeline. Bounded throughout.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use metrics::Counter;

use super::backoff::Gap;
use super::resume::{Position, ResumeClass};
use super::samples::Samples;
use super::timeline::TimelineEntry;
use super::{CallTicket, Ending};

/// Endings waiting for the next attempt, per method; past this the oldest is forgotten.
const MAX_PENDING_ENDS: usize = 1024;
/// Retry gaps kept per method.
const MAX_GAPS: usize = 2048;
/// Timeline entries kept per client.
const TIMELINE: usize = 64;
/// Attempts remembered for the one-second rate; a hotter client saturates it.
const MAX_WINDOW: usize = 100_000;
/// Blackholes remembered per client.
const MAX_BLACKHOLES: usize = 256;
/// How much earlier than a `RetryInfo` delay an attempt may come and still honour it: the
/// server measures from sending the status, the client from receiving it.
pub const RETRY_INFO_SLACK: Duration = Duration::from_millis(20);

/// Flags the server's hot path reads without the judge's lock.
#[derive(Debug, Default)]
pub struct ClientSignals {
    /// An outage ended and the client has not had a message since.
    pub recovery_pending: AtomicBool,
}

/// A call's end, waiting to be paired with the next attempt on its method.
#[derive(Debug, Clone)]
struct PendingEnd {
    at: Instant,
    ending: Ending,
    connection: u64,
    /// The failure streak position the next attempt takes (0 when this call did not fail).
    next_retry: u32,
    /// The delay a `RetryInfo` sent with the ending asked for.
    retry_delay: Option<Duration>,
}

/// Reconnect delays after one kind of ending.
#[derive(Debug, Default, Clone)]
pub struct DelaySeries {
    pub delays: Samples,
    /// How many of them came on a new connection.
    pub new_connection: u64,
}

/// One client's calls of one method.
#[derive(Debug, Default)]
pub struct MethodRecord {
    pending_ends: VecDeque<PendingEnd>,
    /// By ending label.
    pub reconnect_delays: BTreeMap<&'static str, DelaySeries>,
    pub gaps: Vec<Gap>,
    pub gap_samples: Samples,
    pub streaks: u64,
    pub retry_info_sent: u64,
    pub retry_info_honoured: u64,
    /// The last resume position delivered on this method, across calls.
    last_delivered: Option<Position>,
    /// A cut ended the last call that delivered a position: the next request is a resume.
    resume_due: bool,
    pub resumes: BTreeMap<&'static str, u64>,
}

/// One blackhole of a client's connection.
#[derive(Debug, Clone, Copy)]
pub struct Blackhole {
    pub connection: u64,
    pub began: Instant,
    pub detected: Option<Duration>,
}

/// Everything kept of one client.
#[derive(Debug)]
pub struct ClientRecord {
    pub user_agent: Option<String>,
    pub last_seen: Instant,
    pub attempts: u64,
    pub with_deadline: u64,
    pub connections: u64,
    /// By ending; the report labels them with their codes (`abort UNAVAILABLE`).
    pub endings: HashMap<Ending, u64>,
    window: VecDeque<Instant>,
    pub max_per_second: usize,
    hot: bool,
    pub hot_loops: u64,
    pub methods: HashMap<Arc<str>, MethodRecord>,
    /// One entry per outage that ended while the client was around: the time to its first
    /// message after it, `None` while it has had none.
    pub recoveries: Vec<(Instant, Option<Duration>)>,
    pub blackholes: VecDeque<Blackhole>,
    pub timeline: VecDeque<TimelineEntry>,
    pub signals: Arc<ClientSignals>,
    /// This client's own attempt series, for the first few clients.
    pub series: Option<Counter>,
}

/// What pairing an attempt with the last ending on its method found.
pub struct Pairing {
    /// The ending's label and the delay since it.
    pub delay: Option<(&'static str, Duration)>,
    /// The retry gap, when the ending was a failure.
    pub gap: Option<Duration>,
    /// Whether a `RetryInfo` delay was honoured, when one was sent.
    pub retry_info: Option<bool>,
    /// The attempt's place in its failure streak.
    pub retry: u32,
}

impl ClientRecord {
    pub fn new(now: Instant, user_agent: Option<String>, series: Option<Counter>) -> Self {
        Self {
            user_agent,
            last_seen: now,
            attempts: 0,
            with_deadline: 0,
            connections: 0,
            endings: HashMap::new(),
            window: VecDeque::new(),
            max_per_second: 0,
            hot: false,
            hot_loops: 0,
            methods: HashMap::new(),
            recoveries: Vec::new(),
            blackholes: VecDeque::new(),
            timeline: VecDeque::new(),
            signals: Arc::default(),
            series,
        }
    }

    /// Counts an attempt in the one-second window; true when it starts a hot loop (the rate
    /// rose above `hot_loop`).
    pub fn count_attempt(&mut self, now: Instant, deadline: bool, hot_loop: f64) -> bool {
        self.attempts += 1;
        self.with_deadline += u64::from(deadline);
        self.last_seen = now;
        if let Some(series) = &self.series {
            series.increment(1);
        }
        self.window.push_back(now);
        while self.window.front().is_some_and(|first| now.duration_since(*first) >= Duration::from_secs(1))
            || self.window.len() > MAX_WINDOW
        {
            self.window.pop_front();
        }
        self.max_per_second = self.max_per_second.max(self.window.len());
        let above = self.window.len() as f64 > hot_loop;
        let started = above && !self.hot;
        self.hot = above;
        self.hot_loops += u64::from(started);
        started
    }

    /// Pairs a new attempt with the oldest ending waiting on its method.
    pub fn pair(&mut self, method: &Arc<str>, connection: u64, now: Instant) -> Pairing {
        let record = self.methods.entry(method.clone()).or_default();
        let Some(end) = record.pending_ends.pop_front() else {
            return Pairing { delay: None, gap: None, retry_info: None, retry: 0 };
        };
        let delay = now.saturating_duration_since(end.at);
        let label = end.ending.label();
        let series = record.reconnect_delays.entry(label).or_default();
        series.delays.add(delay.as_secs_f64());
        series.new_connection += u64::from(end.connection != connection);
        let gap = (end.next_retry > 0).then(|| {
            if record.gaps.len() < MAX_GAPS {
                record.gaps.push(Gap { retry: end.next_retry, seconds: delay.as_secs_f64() });
            }
            record.gap_samples.add(delay.as_secs_f64());
            delay
        });
        let retry_info = end.retry_delay.map(|wanted| {
            let honoured = delay + RETRY_INFO_SLACK >= wanted;
            record.retry_info_sent += 1;
            record.retry_info_honoured += u64::from(honoured);
            honoured
        });
        Pairing { delay: Some((label, delay)), gap, retry_info, retry: end.next_retry }
    }

    /// Records how a call ended; it waits for the next attempt on its method.
    pub fn end(&mut self, ticket: &CallTicket, ending: Ending, end: CallOutcome, now: Instant) {
        self.last_seen = now;
        *self.endings.entry(ending).or_default() += 1;
        // A failure continues the streak when the call delivered nothing; one after messages (a
        // healthy stream cut) starts a new streak, as a client resets its backoff on success.
        let next_retry = match (ending.is_failure(), end.messages_sent) {
            (false, _) => 0,
            (true, 0) => ticket.retry + 1,
            (true, _) => 1,
        };
        let record = self.methods.entry(ticket.method.clone()).or_default();
        record.streaks += u64::from(next_retry == 1);
        if record.pending_ends.len() >= MAX_PENDING_ENDS {
            record.pending_ends.pop_front();
        }
        record.pending_ends.push_back(PendingEnd {
            at: now,
            ending,
            connection: ticket.connection,
            next_retry,
            retry_delay: end.retry_delay,
        });
        if let Some(position) = end.last_position {
            record.last_delivered = Some(position);
        }
        if ending.is_failure() || matches!(ending, Ending::Ok) {
            // After an OK end the stream is complete: a new call is not a resume.
            record.resume_due = ending.is_failure() && record.last_delivered.is_some();
        }
    }

    /// Classes the position a call asks for, when it follows a cut; `None` otherwise.
    pub fn resume(&mut self, method: &Arc<str>, asked: &Position) -> Option<(ResumeClass, Position)> {
        let record = self.methods.get_mut(method)?;
        if !std::mem::take(&mut record.resume_due) {
            return None;
        }
        let delivered = record.last_delivered.clone()?;
        let class = ResumeClass::of(asked, &delivered);
        *record.resumes.entry(class.name()).or_default() += 1;
        Some((class, delivered))
    }

    pub fn blackholed(&mut self, connection: u64, now: Instant) {
        if self.blackholes.len() >= MAX_BLACKHOLES {
            self.blackholes.pop_front();
        }
        self.blackholes.push_back(Blackhole { connection, began: now, detected: None });
    }

    /// The detection time, when `connection` was blackholed and not yet abandoned.
    pub fn abandoned(&mut self, connection: u64, now: Instant) -> Option<Duration> {
        let blackhole = self
            .blackholes
            .iter_mut()
            .rev()
            .find(|blackhole| blackhole.connection == connection && blackhole.detected.is_none())?;
        let detected = now.saturating_duration_since(blackhole.began);
        blackhole.detected = Some(detected);
        Some(detected)
    }

    /// Resolves the recoveries waiting for a message; the times it took.
    pub fn recovered(&mut self, now: Instant) -> Vec<Duration> {
        let mut times = Vec::new();
        for (ended, recovery) in &mut self.recoveries {
            if recovery.is_none() {
                let took = now.saturating_duration_since(*ended);
                *recovery = Some(took);
                times.push(took);
            }
        }
        times
    }

    pub fn note(&mut self, entry: TimelineEntry) {
        if self.timeline.len() >= TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back(entry);
    }
}

/// What the server reports of a call as it ends.
#[derive(Debug, Clone, Default)]
pub struct CallOutcome {
    pub messages_sent: u64,
    /// The delay a `google.rpc.RetryInfo` in the ending status asked for.
    pub retry_delay: Option<Duration>,
    /// The resume position of the last message delivered.
    pub last_position: Option<Position>,
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::chaos::FaultKind;

    const UNAVAILABLE: Ending = Ending::Fault(FaultKind::Abort, Some(Code::Unavailable));

    struct Clock(Instant);

    impl Clock {
        fn after(&mut self, millis: u64) -> Instant {
            self.0 += Duration::from_millis(millis);
            self.0
        }
    }

    fn method() -> Arc<str> {
        Arc::from("myapp.NotificationService/Subscribe")
    }

    /// Starts a call on `connection` at `at`, as the judge does.
    fn attempt(record: &mut ClientRecord, connection: u64, at: Instant) -> (CallTicket, Pairing) {
        record.count_attempt(at, false, 5.0);
        let pairing = record.pair(&method(), connection, at);
        let ticket = CallTicket {
            client: Arc::from("client"),
            method: method(),
            connection,
            retry: pairing.retry,
            signals: record.signals.clone(),
        };
        (ticket, pairing)
    }

    fn outcome(messages_sent: u64) -> CallOutcome {
        CallOutcome { messages_sent, ..CallOutcome::default() }
    }

    #[test]
    fn failed_attempts_in_a_row_number_their_retry_gaps_and_a_healthy_stream_starts_a_new_streak() {
        let mut clock = Clock(Instant::now());
        let mut record = ClientRecord::new(clock.0, None, None);
        let (ticket, first) = attempt(&mut record, 1, clock.0);
        assert!(first.delay.is_none());
        record.end(&ticket, UNAVAILABLE, outcome(0), clock.after(1));
        for (retry, wait) in [(1, 100), (2, 200), (3, 400)] {
            let (ticket, pairing) = attempt(&mut record, 1, clock.after(wait));
            assert_eq!(pairing.retry, retry);
            assert_eq!(pairing.gap, Some(Duration::from_millis(wait)));
            let fails = retry < 3;
            let ending = if fails { UNAVAILABLE } else { Ending::Fault(FaultKind::ResetStream, None) };
            record.end(&ticket, ending, outcome(if fails { 0 } else { 7 }), clock.after(1));
        }
        // The last call delivered messages before its reset: the next attempt is the first
        // retry of a new streak.
        let (ticket, after_reset) = attempt(&mut record, 2, clock.after(50));
        assert_eq!(after_reset.retry, 1);
        assert_eq!(after_reset.gap, Some(Duration::from_millis(50)));
        // A natural end is no failure: the next attempt is no retry.
        record.end(&ticket, Ending::Ok, outcome(2), clock.after(1));
        let (_, after_ok) = attempt(&mut record, 2, clock.after(10));
        assert_eq!((after_ok.retry, after_ok.gap), (0, None));
        let method = &record.methods[&method()];
        assert_eq!(method.streaks, 2);
        assert_eq!(method.gaps.iter().map(|gap| gap.retry).collect::<Vec<_>>(), [1, 2, 3, 1]);
        let reset = &method.reconnect_delays["reset_stream"];
        assert_eq!((reset.delays.seen(), reset.new_connection), (1, 1));
        assert_eq!(record.endings[&UNAVAILABLE], 3);
    }

    #[test]
    fn an_attempt_sooner_than_retry_info_asked_is_not_honoured() {
        let mut clock = Clock(Instant::now());
        let mut record = ClientRecord::new(clock.0, None, None);
        let asked = CallOutcome { retry_delay: Some(Duration::from_secs(1)), ..CallOutcome::default() };
        let (ticket, _) = attempt(&mut record, 1, clock.0);
        record.end(&ticket, UNAVAILABLE, asked.clone(), clock.0);
        let (ticket, early) = attempt(&mut record, 1, clock.after(300));
        assert_eq!(early.retry_info, Some(false));
        record.end(&ticket, UNAVAILABLE, asked, clock.0);
        let (_, patient) = attempt(&mut record, 1, clock.after(1000));
        assert_eq!(patient.retry_info, Some(true));
        let method = &record.methods[&method()];
        assert_eq!((method.retry_info_sent, method.retry_info_honoured), (2, 1));
    }

    #[test]
    fn the_call_after_a_cut_is_classed_by_the_position_it_asks_for() {
        let mut clock = Clock(Instant::now());
        let mut record = ClientRecord::new(clock.0, None, None);
        let delivered = CallOutcome {
            messages_sent: 5,
            last_position: Some(Position::Number(5)),
            ..CallOutcome::default()
        };
        let (ticket, _) = attempt(&mut record, 1, clock.0);
        record.end(&ticket, Ending::Fault(FaultKind::TcpReset, None), delivered, clock.after(10));
        attempt(&mut record, 2, clock.after(10));
        assert_eq!(
            record.resume(&method(), &Position::Number(5)).map(|(class, _)| class),
            Some(ResumeClass::Resumed)
        );
        // Only the first request after the cut is a resume.
        assert_eq!(record.resume(&method(), &Position::Number(0)), None);
        // A natural end is no cut: the next call is not judged.
        let (ticket, _) = attempt(&mut record, 2, clock.after(10));
        record.end(&ticket, Ending::Ok, outcome(3), clock.after(10));
        assert_eq!(record.resume(&method(), &Position::Number(0)), None);
    }

    #[test]
    fn a_burst_above_the_limit_counts_one_hot_loop() {
        let mut clock = Clock(Instant::now());
        let mut record = ClientRecord::new(clock.0, None, None);
        let started: Vec<bool> = (0..20).map(|_| record.count_attempt(clock.after(20), false, 5.0)).collect();
        assert_eq!(started.iter().filter(|started| **started).count(), 1);
        assert_eq!(record.max_per_second, 20);
        // Calm again, then a second burst.
        record.count_attempt(clock.after(2000), false, 5.0);
        (0..10).for_each(|_| {
            record.count_attempt(clock.after(10), false, 5.0);
        });
        assert_eq!(record.hot_loops, 2);
    }
}
