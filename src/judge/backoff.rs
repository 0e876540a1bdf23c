//! A client's retry gaps, read as a backoff: the policy fitted to them (initial delay,
//! multiplier, jitter spread, cap) and how well they follow a declared one.
//!
//! A gap is the time from a failed attempt's end to the next attempt, numbered by its place
//! in the failure streak (the first retry is 1). The server measures it, so it includes the
//! client's round trip and scheduling: compliance allows [`SLACK_FRACTION`] and [`SLACK`]
//! beyond the policy's jitter.

use std::time::Duration;

use serde::Serialize;

use crate::config::clients::BackoffPolicy;

/// Extra room around the policy's range, as a fraction of the nominal delay.
pub const SLACK_FRACTION: f64 = 0.1;
/// Extra room around the policy's range, absolute: network and scheduling.
pub const SLACK: Duration = Duration::from_millis(25);
/// The share of gaps that must fall in the policy's range for a client to comply.
pub const REQUIRED_COMPLIANCE: f64 = 0.9;

/// One retry gap: its place in the streak (1 = first retry) and its length in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    pub retry: u32,
    pub seconds: f64,
}

/// The backoff fitted to a client's gaps.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct FittedBackoff {
    /// The typical first retry delay.
    pub initial_ms: f64,
    /// The typical growth from one retry to the next.
    pub multiplier: f64,
    /// How far gaps stray from the fitted curve (0.2 = ±20%, 90th percentile).
    pub jitter: f64,
    /// The delay the gaps level off at, when they do.
    pub max_ms: Option<f64>,
}

/// Fits a backoff to `gaps`; `None` without a first retry to anchor it.
pub fn fit(gaps: &[Gap]) -> Option<FittedBackoff> {
    let at = |retry: u32| -> Vec<f64> {
        gaps.iter().filter(|gap| gap.retry == retry).map(|gap| gap.seconds).collect()
    };
    let initial = median(at(1))?;
    let deepest = gaps.iter().map(|gap| gap.retry).max().unwrap_or(1);
    let medians: Vec<f64> = (1..=deepest).map_while(|retry| median(at(retry))).collect();
    let (cap, growing) = match plateau_start(&medians) {
        // The gaps from the plateau's first retry on give the cap; the ones before it, the
        // growth.
        Some(start) => {
            let capped = gaps.iter().filter(|gap| gap.retry as usize > start).map(|gap| gap.seconds);
            (median(capped.collect()), &medians[..start])
        }
        None => {
            // Too few retries along the cap to see it level off: at least two gaps near the
            // longest, after the first retry, with their median as the cap (so one generous
            // jitter does not set it). The growth is fitted over the retries whose medians stay
            // well under it: a jittered step into the cap is no growth, and "well under" leaves
            // room for a ±20% jitter and a loaded machine's round trip on the step before.
            let longest = gaps.iter().map(|gap| gap.seconds).fold(0.0, f64::max);
            let near_longest: Vec<f64> = gaps
                .iter()
                .filter(|gap| gap.retry > 1 && gap.seconds >= longest * 0.85)
                .map(|gap| gap.seconds)
                .collect();
            let cap = (near_longest.len() >= 2 && longest > initial * GROWN)
                .then(|| median(near_longest))
                .flatten();
            let under =
                medians.iter().take_while(|seconds| cap.is_none_or(|cap| **seconds < cap * 0.6)).count();
            (cap, &medians[..under])
        }
    };
    let multiplier = log_linear_growth(growing).unwrap_or(1.0).max(1.0);
    let fitted = BackoffPolicy {
        initial: Duration::from_secs_f64(initial),
        multiplier,
        jitter: 0.0,
        max: Duration::from_secs_f64(cap.unwrap_or(f64::MAX / 4.0).min(1e9)),
    };
    let mut spread: Vec<f64> = gaps
        .iter()
        .map(|gap| {
            let expected = fitted.nominal(gap.retry).as_secs_f64();
            if expected > 0.0 { (gap.seconds / expected - 1.0).abs() } else { 0.0 }
        })
        .collect();
    spread.sort_by(f64::total_cmp);
    let jitter =
        spread.get(((spread.len() as f64 * 0.9).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    Some(FittedBackoff {
        initial_ms: super::samples::round_ms(initial),
        multiplier: (multiplier * 1000.0).round() / 1000.0,
        jitter: (jitter * 1000.0).round() / 1000.0,
        max_ms: cap.map(super::samples::round_ms),
    })
}

/// How far above the first retry a plateau must sit to be a cap rather than a fixed delay.
const GROWN: f64 = 1.5;
/// The widest spread (longest over shortest) of per-retry medians along a cap: a ±20% jitter
/// spans 1.5.
const PLATEAU_SPREAD: f64 = 1.6;
/// Retries along the cap needed to see the gaps level off.
const PLATEAU_RETRIES: usize = 3;

/// Where the per-retry medians (`medians[0]` is the first retry's) level off: the index of the
/// first retry of the longest run to the end that stays within [`PLATEAU_SPREAD`], holds at
/// least [`PLATEAU_RETRIES`] retries and sits well above the first retry. Fitting the cap to a
/// run rather than to the few gaps near the longest one keeps a single streak's jitter from
/// hiding it.
fn plateau_start(medians: &[f64]) -> Option<usize> {
    let first = *medians.first()?;
    (1..medians.len().saturating_sub(PLATEAU_RETRIES - 1)).find(|&start| {
        let run = &medians[start..];
        let low = run.iter().copied().fold(f64::INFINITY, f64::min);
        let high = run.iter().copied().fold(0.0, f64::max);
        high <= low * PLATEAU_SPREAD && median(run.to_vec()).is_some_and(|level| level > first * GROWN)
    })
}

/// The range a gap at `retry` may fall in under `policy`, with the measurement slack.
pub fn allowed(policy: &BackoffPolicy, retry: u32) -> (f64, f64) {
    let nominal = policy.nominal(retry).as_secs_f64();
    let low = nominal * (1.0 - policy.jitter - SLACK_FRACTION) - SLACK.as_secs_f64();
    let high = nominal * (1.0 + policy.jitter + SLACK_FRACTION) + SLACK.as_secs_f64();
    (low.max(0.0), high)
}

/// The share of `gaps` inside the range `policy` allows at their place; `None` without gaps.
pub fn compliance(policy: &BackoffPolicy, gaps: &[Gap]) -> Option<f64> {
    if gaps.is_empty() {
        return None;
    }
    let inside = gaps
        .iter()
        .filter(|gap| {
            let (low, high) = allowed(policy, gap.retry);
            (low..=high).contains(&gap.seconds)
        })
        .count();
    Some(inside as f64 / gaps.len() as f64)
}

/// The factor per step of the least-squares line through the logarithms of `values`, taken one
/// step apart; `None` with fewer than two values, or one that is not positive.
fn log_linear_growth(values: &[f64]) -> Option<f64> {
    if values.len() < 2 || values.iter().any(|value| *value <= 0.0) {
        return None;
    }
    let count = values.len() as f64;
    let mean_step = (count - 1.0) / 2.0;
    let mean_log = values.iter().map(|value| value.ln()).sum::<f64>() / count;
    let (covariance, variance) = values.iter().enumerate().fold((0.0, 0.0), |(cov, var), (step, value)| {
        let dx = step as f64 - mean_step;
        (cov + dx * (value.ln() - mean_log), var + dx * dx)
    });
    Some((covariance / variance).exp())
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[(values.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BackoffPolicy = BackoffPolicy {
        initial: Duration::from_millis(100),
        multiplier: 2.0,
        jitter: 0.2,
        max: Duration::from_millis(1600),
    };

    /// Streaks of `length` retries following `policy`, with jitter from a fixed pattern.
    fn streaks(policy: &BackoffPolicy, count: usize, length: u32) -> Vec<Gap> {
        let pattern = [-0.15, 0.1, 0.0, 0.18, -0.05, 0.12, -0.19];
        (0..count)
            .flat_map(|streak| {
                (1..=length).map(move |retry| {
                    let jitter = pattern[(streak * 3 + retry as usize) % pattern.len()];
                    Gap { retry, seconds: policy.nominal(retry).as_secs_f64() * (1.0 + jitter) }
                })
            })
            .collect()
    }

    #[test]
    fn a_policy_is_recovered_from_its_own_gaps() {
        let gaps = streaks(&POLICY, 6, 8);
        let fitted = fit(&gaps).unwrap();
        assert!((85.0..=115.0).contains(&fitted.initial_ms), "{fitted:?}");
        assert!((1.7..=2.3).contains(&fitted.multiplier), "{fitted:?}");
        assert!((0.1..=0.3).contains(&fitted.jitter), "{fitted:?}");
        let cap = fitted.max_ms.unwrap();
        assert!((1500.0..=1950.0).contains(&cap), "{fitted:?}");
        assert_eq!(compliance(&POLICY, &gaps), Some(1.0));
    }

    /// One streak of retries with these gaps, the first retry first.
    fn one_streak(seconds: &[f64]) -> Vec<Gap> {
        seconds
            .iter()
            .enumerate()
            .map(|(at, seconds)| Gap { retry: at as u32 + 1, seconds: *seconds })
            .collect()
    }

    #[test]
    fn one_jittered_streak_into_the_cap_still_shows_the_growth() {
        // 100 ms ×2 ±20% up to 1 s, one streak: the steps near the cap are no growth.
        let gaps = one_streak(&[0.117, 0.164, 0.48, 0.88, 1.15, 0.85, 0.99, 1.02]);
        let fitted = fit(&gaps).unwrap();
        assert!((1.6..=2.4).contains(&fitted.multiplier), "{fitted:?}");
        assert!((900.0..=1100.0).contains(&fitted.max_ms.unwrap()), "{fitted:?}");
        assert_eq!(compliance(&POLICY_TO_ONE_SECOND, &gaps), Some(1.0));
    }

    #[test]
    fn a_slow_round_trip_before_the_cap_still_shows_the_growth() {
        // The same policy on a loaded machine: the third retry's gap passes half the cap.
        let gaps = one_streak(&[0.12, 0.166, 0.53, 0.86, 1.1, 0.93, 1.04]);
        let fitted = fit(&gaps).unwrap();
        assert!((1.6..=2.4).contains(&fitted.multiplier), "{fitted:?}");
    }

    #[test]
    fn a_cap_is_seen_where_one_streak_levels_off_even_with_one_gap_far_above_it() {
        // 100 ms ×2 ±20% up to 1 s: one generous jitter (1.19 s) leaves no second gap within
        // 15% of the longest, yet the last four retries clearly level off.
        let gaps = one_streak(&[0.104, 0.182, 0.35, 0.7, 1.19, 0.83, 0.9, 0.86]);
        let fitted = fit(&gaps).unwrap();
        assert!((800.0..=1000.0).contains(&fitted.max_ms.unwrap()), "{fitted:?}");
        assert!((1.7..=2.3).contains(&fitted.multiplier), "{fitted:?}");
        assert_eq!(compliance(&POLICY_TO_ONE_SECOND, &gaps), Some(1.0));
    }

    #[test]
    fn a_slow_steady_growth_is_no_plateau() {
        // ×1.5 with no cap: three retries in a row already span 2.25.
        let gaps = one_streak(&[0.1, 0.15, 0.225, 0.338, 0.506, 0.759, 1.139]);
        let fitted = fit(&gaps).unwrap();
        assert!(fitted.max_ms.is_none(), "{fitted:?}");
        assert!((1.45..=1.55).contains(&fitted.multiplier), "{fitted:?}");
    }

    #[test]
    fn growth_is_fitted_through_every_step() {
        assert_eq!(log_linear_growth(&[0.1]), None);
        assert_eq!(log_linear_growth(&[0.1, 0.0]), None);
        let doubling = log_linear_growth(&[0.1, 0.2, 0.4, 0.8]).unwrap();
        assert!((doubling - 2.0).abs() < 1e-9, "{doubling}");
        // One jittered middle step moves the fit less than it moves its neighbours' ratios.
        let jittered = log_linear_growth(&[0.1, 0.26, 0.4, 0.8]).unwrap();
        assert!((1.8..=2.1).contains(&jittered), "{jittered}");
    }

    const POLICY_TO_ONE_SECOND: BackoffPolicy = BackoffPolicy { max: Duration::from_secs(1), ..POLICY };

    #[test]
    fn a_fixed_fast_retry_fails_a_growing_policy() {
        let gaps: Vec<Gap> = (1..=30).map(|retry| Gap { retry, seconds: 0.02 }).collect();
        let fitted = fit(&gaps).unwrap();
        assert_eq!(fitted.multiplier, 1.0);
        assert!(fitted.max_ms.is_none());
        assert!(compliance(&POLICY, &gaps).unwrap() < 0.1);
        assert!(compliance(&BackoffPolicy::GRPC, &gaps).unwrap() < 0.1);
    }

    #[test]
    fn waiting_far_longer_than_the_policy_does_not_comply_either() {
        let slow = BackoffPolicy { initial: Duration::from_secs(1), ..POLICY };
        assert!(compliance(&POLICY, &streaks(&slow, 2, 3)).unwrap() < 0.5);
        assert_eq!(compliance(&POLICY, &[]), None);
    }
}
