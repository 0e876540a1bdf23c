//! The judge's figures and verdicts: one section per client (and per method within it), the
//! phases as they ran and the herd after each outage — the JSON of `GET /clients` and of
//! `serve --report`, and the text `serve` prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::backoff::{self, FittedBackoff, Gap, REQUIRED_COMPLIANCE};
use super::client::{ClientRecord, MethodRecord};
use super::resume::ResumeClass;
use super::samples::{Samples, Summary, round_ms};
use super::timeline::TimelineEntry;
use super::verdict::{self, Verdict};
use super::{Judge, JudgeState};

/// Everything judged so far.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeReport {
    /// When the server started (RFC 3339).
    pub started_at: String,
    /// Seconds since the server started.
    pub duration_s: f64,
    /// The run was stopped by a signal before its duration.
    pub interrupted: bool,
    /// Clients tracked now, and dropped to stay within `clients.max_tracked`.
    pub tracked: usize,
    pub dropped: u64,
    pub phases: Vec<PhaseReport>,
    pub herd: Vec<HerdReport>,
    pub clients: Vec<ClientReport>,
    pub expectations: ExpectationsReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub started_s: f64,
    pub ended_s: Option<f64>,
    pub outage: bool,
}

/// The rush of attempts after one outage.
#[derive(Debug, Clone, Serialize)]
pub struct HerdReport {
    pub outage_ended_s: f64,
    /// The most attempts by all clients in one second of the `herd_window` after the end.
    pub peak_attempts_per_second: u32,
    /// Attempts per second over the same length of time before the outage began.
    pub steady_attempts_per_second: Option<f64>,
    /// Peak over steady.
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpectationsReport {
    pub passed: bool,
    /// One line per failed expectation, naming the client.
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DelayReport {
    #[serde(flatten)]
    pub summary: Summary,
    /// Attempts that came on a new connection.
    pub new_connection: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackoffReport {
    pub streaks: u64,
    #[serde(flatten)]
    pub fitted: Option<FittedBackoff>,
    /// Share of the gaps inside the range `clients.backoff` allows (gRPC's by default).
    pub compliance: Option<f64>,
    pub complies: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetryInfoReport {
    pub sent: u64,
    pub honoured: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadPeerReport {
    pub blackholes: usize,
    pub detected: usize,
    pub detection_ms: Vec<f64>,
}

/// One client's calls of one method.
#[derive(Debug, Clone, Serialize)]
pub struct MethodReport {
    pub reconnect_delay_ms: BTreeMap<String, DelayReport>,
    pub retry_gaps_ms: Option<Summary>,
    pub backoff: BackoffReport,
    pub retry_info: RetryInfoReport,
    pub resume: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientReport {
    pub client: String,
    pub user_agent: Option<String>,
    pub attempts: u64,
    pub connections: u64,
    pub deadline_share: Option<f64>,
    pub endings: BTreeMap<String, u64>,
    pub max_attempts_per_second: usize,
    pub hot_loops: u64,
    /// Across methods, as the expectations judge them.
    pub reconnect_delay_ms: BTreeMap<String, DelayReport>,
    pub retry_gaps_ms: Option<Summary>,
    pub backoff: BackoffReport,
    pub retry_info: RetryInfoReport,
    /// Per outage that ended while the client was around; null while it has not recovered.
    pub recovery_ms: Vec<Option<f64>>,
    pub resume: BTreeMap<&'static str, u64>,
    pub dead_peer: DeadPeerReport,
    pub methods: BTreeMap<String, MethodReport>,
    pub verdicts: Vec<Verdict>,
    pub passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEntry>>,
}

/// A client's figures across its methods, as the verdicts measure them.
#[derive(Debug, Default)]
pub struct ClientFigures {
    pub attempts: u64,
    pub with_deadline: u64,
    pub max_attempts_per_second: usize,
    pub reconnect_delays: BTreeMap<&'static str, Samples>,
    pub gaps: Vec<Gap>,
    pub recoveries: Vec<(Instant, Option<Duration>)>,
    pub resumes: u64,
    pub resumed: u64,
    pub retry_info_sent: u64,
    pub retry_info_honoured: u64,
    pub detections: Vec<Duration>,
    /// When each blackhole the client has not detected began.
    pub undetected: Vec<Instant>,
}

impl ClientFigures {
    fn of(record: &ClientRecord) -> Self {
        let mut figures = Self {
            attempts: record.attempts,
            with_deadline: record.with_deadline,
            max_attempts_per_second: record.max_per_second,
            recoveries: record.recoveries.clone(),
            ..Self::default()
        };
        for method in record.methods.values() {
            for (ending, series) in &method.reconnect_delays {
                figures.reconnect_delays.entry(*ending).or_default().extend(&series.delays);
            }
            figures.gaps.extend_from_slice(&method.gaps);
            figures.resumes += method.resumes.values().sum::<u64>();
            figures.resumed += method.resumes.get(ResumeClass::Resumed.name()).copied().unwrap_or(0);
            figures.retry_info_sent += method.retry_info_sent;
            figures.retry_info_honoured += method.retry_info_honoured;
        }
        for blackhole in &record.blackholes {
            match blackhole.detected {
                Some(took) => figures.detections.push(took),
                None => figures.undetected.push(blackhole.began),
            }
        }
        figures
    }
}

impl Judge {
    /// The figures and verdicts so far; `timeline` adds each client's recent history (for
    /// `/clients`).
    pub fn report(&self, interrupted: bool, timeline: bool) -> JudgeReport {
        let now = self.ended.get().copied().unwrap_or_else(Instant::now);
        let state = self.lock();
        let mut clients: Vec<ClientReport> = state
            .clients
            .iter()
            .map(|(client, record)| self.client_report(client, record, now, timeline))
            .collect();
        clients.sort_by(|a, b| a.client.cmp(&b.client));
        let failures: Vec<String> = clients
            .iter()
            .flat_map(|client| {
                client.verdicts.iter().filter(|verdict| !verdict.passed).map(move |verdict| {
                    format!(
                        "client {}: {}: expected {}, saw {}",
                        client.client, verdict.expectation, verdict.expected, verdict.seen
                    )
                })
            })
            .collect();
        JudgeReport {
            started_at: humantime::format_rfc3339_seconds(self.started_wall).to_string(),
            duration_s: round_ms(self.seconds(now)) / 1000.0,
            interrupted,
            tracked: state.clients.len(),
            dropped: state.dropped,
            phases: self.phase_reports(&state),
            herd: self.herd(&state, now),
            expectations: ExpectationsReport { passed: failures.is_empty(), failures },
            clients,
        }
    }

    fn client_report(
        &self,
        client: &str,
        record: &ClientRecord,
        now: Instant,
        timeline: bool,
    ) -> ClientReport {
        let figures = ClientFigures::of(record);
        let verdicts = verdict::judge(&self.settings.expect, &self.settings.clients, &figures, now);
        let mut all_delays: BTreeMap<String, DelayReport> = BTreeMap::new();
        for (ending, samples) in &figures.reconnect_delays {
            let new_connection = record
                .methods
                .values()
                .filter_map(|method| method.reconnect_delays.get(ending))
                .map(|series| series.new_connection)
                .sum();
            if let Some(summary) = samples.summary() {
                all_delays.insert((*ending).to_owned(), DelayReport { summary, new_connection });
            }
        }
        let mut gap_samples = Samples::default();
        record.methods.values().for_each(|method| gap_samples.extend(&method.gap_samples));
        let streaks = record.methods.values().map(|method| method.streaks).sum();
        let mut resume = empty_resume();
        for method in record.methods.values() {
            for (class, count) in &method.resumes {
                *resume.entry(class).or_default() += count;
            }
        }
        ClientReport {
            client: client.to_owned(),
            user_agent: record.user_agent.clone(),
            attempts: record.attempts,
            connections: record.connections,
            deadline_share: (record.attempts > 0)
                .then(|| record.with_deadline as f64 / record.attempts as f64),
            endings: record
                .endings
                .iter()
                .map(|(ending, count)| (ending.label_with_code(), *count))
                .collect(),
            max_attempts_per_second: record.max_per_second,
            hot_loops: record.hot_loops,
            reconnect_delay_ms: all_delays,
            retry_gaps_ms: gap_samples.summary(),
            backoff: self.backoff_report(streaks, &figures.gaps),
            retry_info: RetryInfoReport {
                sent: figures.retry_info_sent,
                honoured: figures.retry_info_honoured,
            },
            recovery_ms: figures
                .recoveries
                .iter()
                .map(|(_, took)| took.map(|took| round_ms(took.as_secs_f64())))
                .collect(),
            resume,
            dead_peer: DeadPeerReport {
                blackholes: figures.detections.len() + figures.undetected.len(),
                detected: figures.detections.len(),
                detection_ms: figures.detections.iter().map(|took| round_ms(took.as_secs_f64())).collect(),
            },
            methods: record
                .methods
                .iter()
                .map(|(method, record)| (method.to_string(), self.method_report(record)))
                .collect(),
            passed: verdicts.iter().all(|verdict| verdict.passed),
            verdicts,
            timeline: timeline.then(|| record.timeline.iter().cloned().collect()),
        }
    }

    fn method_report(&self, record: &MethodRecord) -> MethodReport {
        MethodReport {
            reconnect_delay_ms: record
                .reconnect_delays
                .iter()
                .filter_map(|(ending, series)| {
                    let summary = series.delays.summary()?;
                    Some((
                        (*ending).to_owned(),
                        DelayReport { summary, new_connection: series.new_connection },
                    ))
                })
                .collect(),
            retry_gaps_ms: record.gap_samples.summary(),
            backoff: self.backoff_report(record.streaks, &record.gaps),
            retry_info: RetryInfoReport {
                sent: record.retry_info_sent,
                honoured: record.retry_info_honoured,
            },
            resume: {
                let mut resume = empty_resume();
                resume.extend(record.resumes.iter().map(|(class, count)| (*class, *count)));
                resume
            },
        }
    }

    fn backoff_report(&self, streaks: u64, gaps: &[Gap]) -> BackoffReport {
        let compliance = backoff::compliance(&self.settings.clients.backoff, gaps);
        BackoffReport {
            streaks,
            fitted: backoff::fit(gaps),
            compliance: compliance.map(|share| (share * 1000.0).round() / 1000.0),
            complies: compliance.is_none_or(|share| share >= REQUIRED_COMPLIANCE),
        }
    }

    fn phase_reports(&self, state: &JudgeState) -> Vec<PhaseReport> {
        state
            .phases
            .iter()
            .map(|phase| PhaseReport {
                name: phase.name.clone(),
                started_s: round_ms(self.seconds(phase.began)) / 1000.0,
                ended_s: phase.ended.map(|ended| round_ms(self.seconds(ended)) / 1000.0),
                outage: phase.outage,
            })
            .collect()
    }

    /// For each outage that has ended: the peak attempt rate in the herd window after it,
    /// against the rate over as long before it began.
    fn herd(&self, state: &JudgeState, now: Instant) -> Vec<HerdReport> {
        let window = self.settings.clients.herd_window.as_secs_f64().ceil().max(1.0) as usize;
        let last = self.seconds(now) as usize;
        let count = |second: usize| state.attempts_per_second.get(second).copied().unwrap_or(0);
        state
            .phases
            .iter()
            .filter(|phase| phase.outage)
            .filter_map(|phase| {
                let ended = self.seconds(phase.ended?) as usize;
                let began = self.seconds(phase.began) as usize;
                let peak = (ended..(ended + window).min(last + 1)).map(count).max().unwrap_or(0);
                let before = began.saturating_sub(window)..began;
                let steady = (!before.is_empty())
                    .then(|| before.clone().map(count).sum::<u32>() as f64 / before.len() as f64);
                Some(HerdReport {
                    outage_ended_s: round_ms(self.seconds(phase.ended?)) / 1000.0,
                    peak_attempts_per_second: peak,
                    steady_attempts_per_second: steady.map(|rate| (rate * 1000.0).round() / 1000.0),
                    ratio: steady
                        .filter(|rate| *rate > 0.0)
                        .map(|rate| (peak as f64 / rate * 100.0).round() / 100.0),
                })
            })
            .collect()
    }
}

fn empty_resume() -> BTreeMap<&'static str, u64> {
    ResumeClass::ALL.iter().map(|class| (class.name(), 0)).collect()
}

impl JudgeReport {
    /// The verdict block `serve` prints: one line per client, then each failure.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "Clients under test: {} tracked{} over {:.1}s{}",
            self.tracked,
            if self.dropped > 0 { format!(" ({} dropped)", self.dropped) } else { String::new() },
            self.duration_s,
            if self.interrupted { " (interrupted)" } else { "" }
        );
        for client in &self.clients {
            let verdict = match (client.verdicts.is_empty(), client.passed) {
                (true, _) => "no expectations",
                (false, true) => "PASS",
                (false, false) => "FAIL",
            };
            let _ = writeln!(
                text,
                "  {verdict:<15} {}: {} attempts, {} connections, max {} attempts/s, {} hot loop(s)",
                client.client,
                client.attempts,
                client.connections,
                client.max_attempts_per_second,
                client.hot_loops
            );
            for verdict in &client.verdicts {
                let mark = if verdict.passed { "ok  " } else { "FAIL" };
                let _ = writeln!(
                    text,
                    "      {mark} {}: expected {}, saw {}",
                    verdict.expectation, verdict.expected, verdict.seen
                );
            }
        }
        for herd in &self.herd {
            let _ = writeln!(
                text,
                "  herd after the outage that ended at {:.1}s: peak {} attempts/s{}",
                herd.outage_ended_s,
                herd.peak_attempts_per_second,
                herd.ratio.map_or(String::new(), |ratio| format!(", {ratio}× the steady rate"))
            );
        }
        let _ = writeln!(
            text,
            "Expectations: {}",
            if self.expectations.passed {
                "passed".to_owned()
            } else {
                format!("{} failed", self.expectations.failures.len())
            }
        );
        text
    }
}
