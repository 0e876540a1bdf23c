//! Judging one client against the profile's `expect` section. Each expectation is measured
//! from the same figures the report shows, so the printed verdict, the report and the
//! metrics agree. An expectation with nothing to measure (no reconnect after that ending, no
//! resume, no blackhole) passes and says so.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::backoff::{self, REQUIRED_COMPLIANCE};
use super::report::ClientFigures;
use crate::config::clients::{BackoffPolicy, ClientsSection, Expectation, Expected, PolicyChoice};

/// One expectation's outcome for one client.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    /// The key as written (`max_attempts_per_second`).
    pub expectation: String,
    /// The condition, in words (`<= 5`).
    pub expected: String,
    /// What was measured, in words.
    pub seen: String,
    pub passed: bool,
}

/// Every expectation judged for one client, at `now`.
pub fn judge(
    expectations: &[Expectation],
    clients: &ClientsSection,
    figures: &ClientFigures,
    now: Instant,
) -> Vec<Verdict> {
    expectations
        .iter()
        .map(|expectation| {
            let (expected, seen, passed) = measure(&expectation.expected, clients, figures, now);
            Verdict { expectation: expectation.name.clone(), expected, seen, passed }
        })
        .collect()
}

fn measure(
    expected: &Expected,
    clients: &ClientsSection,
    figures: &ClientFigures,
    now: Instant,
) -> (String, String, bool) {
    match expected {
        Expected::ReconnectDelay { ending, percentile, comparison, limit } => {
            let quantile = figures
                .reconnect_delays
                .get(ending.as_str())
                .and_then(|series| series.quantile(percentile.quantile()));
            let expected =
                format!("{} {comparison} {}", percentile_name(percentile.quantile()), seconds(*limit));
            match quantile {
                Some(value) => (expected, seconds(value), comparison.holds(value, *limit)),
                None => (expected, format!("no reconnect after {ending}"), true),
            }
        }
        Expected::Backoff(choice) => {
            let (name, policy) = match choice {
                PolicyChoice::Grpc => ("grpc", BackoffPolicy::GRPC),
                PolicyChoice::Declared => ("declared", clients.backoff),
            };
            let expected = format!(
                "{name} backoff ({} ×{} ±{:.0}% up to {}) in ≥{:.0}% of retry gaps",
                seconds(policy.initial.as_secs_f64()),
                policy.multiplier,
                policy.jitter * 100.0,
                seconds(policy.max.as_secs_f64()),
                REQUIRED_COMPLIANCE * 100.0
            );
            match backoff::compliance(&policy, &figures.gaps) {
                Some(share) => {
                    let fitted = backoff::fit(&figures.gaps).map_or(String::new(), |fit| {
                        format!(" (fitted: {} ×{})", seconds(fit.initial_ms / 1000.0), fit.multiplier)
                    });
                    (
                        expected,
                        format!("{:.0}% of {} gaps{fitted}", share * 100.0, figures.gaps.len()),
                        share >= REQUIRED_COMPLIANCE,
                    )
                }
                None => (expected, "no retry streak".to_owned(), true),
            }
        }
        Expected::MaxAttemptsPerSecond(limit) => {
            let seen = figures.max_attempts_per_second as f64;
            (format!("<= {limit}"), format!("{seen} in one second"), seen <= *limit)
        }
        Expected::RecoversWithin(within) => {
            let mut worst: Option<Duration> = None;
            let mut missing = 0;
            for (ended, took) in &figures.recoveries {
                match took {
                    Some(took) => worst = worst.max(Some(*took)),
                    // Still waiting: a failure only once the time allowed has run out.
                    None if now.saturating_duration_since(*ended) >= *within => missing += 1,
                    None => {}
                }
            }
            let late = worst.is_some_and(|worst| worst > *within);
            let seen = match (worst, missing) {
                (_, missing) if missing > 0 => format!("{missing} outage(s) without recovery"),
                (Some(worst), _) => format!("slowest recovery {}", seconds(worst.as_secs_f64())),
                (None, _) => "no outage ended while the client was around".to_owned(),
            };
            (format!("within {}", seconds(within.as_secs_f64())), seen, !late && missing == 0)
        }
        Expected::Resume(share) => {
            share_verdict(*share, figures.resumed, figures.resumes, "resumes classed resumed")
        }
        Expected::RetryInfo(share) => share_verdict(
            *share,
            figures.retry_info_honoured,
            figures.retry_info_sent,
            "RetryInfo delays honoured",
        ),
        Expected::DetectsDeadPeerWithin(within) => {
            let slow = figures.detections.iter().filter(|took| *took > within).count();
            let never = figures
                .undetected
                .iter()
                .filter(|began| now.saturating_duration_since(**began) >= *within)
                .count();
            let seen = if figures.detections.is_empty() && figures.undetected.is_empty() {
                "no blackhole".to_owned()
            } else {
                let slowest = figures.detections.iter().max().map_or("none detected".to_owned(), |took| {
                    format!("slowest detection {}", seconds(took.as_secs_f64()))
                });
                format!("{slowest}; {never} never detected")
            };
            (format!("within {}", seconds(within.as_secs_f64())), seen, slow == 0 && never == 0)
        }
        Expected::Deadlines(share) => {
            share_verdict(*share, figures.with_deadline, figures.attempts, "calls with a deadline")
        }
    }
}

fn share_verdict(wanted: f64, part: u64, whole: u64, what: &str) -> (String, String, bool) {
    let expected = format!(">= {:.0}% of {what}", wanted * 100.0);
    if whole == 0 {
        return (expected, "none to judge".to_owned(), true);
    }
    let share = part as f64 / whole as f64;
    (expected, format!("{:.0}% ({part} of {whole})", share * 100.0), share + 1e-9 >= wanted)
}

fn percentile_name(quantile: f64) -> String {
    match quantile {
        1.0 => "max".to_owned(),
        0.999 => "p999".to_owned(),
        other => format!("p{:.0}", other * 100.0),
    }
}

/// Seconds in the unit a reader expects (`850ms`, `2.5s`).
fn seconds(value: f64) -> String {
    if value < 1.0 { format!("{:.0}ms", value * 1000.0) } else { format!("{value:.2}s") }
}
