//! Durations kept for percentiles, bounded: past [`MAX_SAMPLES`] a reservoir keeps an even
//! sample of everything seen, so a client that reconnects all day costs no more than one
//! that reconnects a thousand times.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Samples kept per series.
pub const MAX_SAMPLES: usize = 2048;

/// Seconds, as measured.
#[derive(Debug, Clone)]
pub struct Samples {
    kept: Vec<f64>,
    seen: u64,
    rng: SmallRng,
}

impl Default for Samples {
    fn default() -> Self {
        Self { kept: Vec::new(), seen: 0, rng: SmallRng::seed_from_u64(0x5eed) }
    }
}

/// Percentiles of a series, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Samples {
    pub fn add(&mut self, seconds: f64) {
        self.seen += 1;
        if self.kept.len() < MAX_SAMPLES {
            self.kept.push(seconds);
        } else {
            let slot = self.rng.random_range(0..self.seen);
            if let Some(kept) = self.kept.get_mut(slot as usize) {
                *kept = seconds;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn values(&self) -> &[f64] {
        &self.kept
    }

    /// The `quantile` (0..=1) in seconds, nearest rank; `None` without samples.
    pub fn quantile(&self, quantile: f64) -> Option<f64> {
        let mut sorted = self.kept.clone();
        sorted.sort_by(f64::total_cmp);
        nearest_rank(&sorted, quantile)
    }

    pub fn summary(&self) -> Option<Summary> {
        let mut sorted = self.kept.clone();
        sorted.sort_by(f64::total_cmp);
        let ms = |quantile| nearest_rank(&sorted, quantile).map_or(0.0, round_ms);
        (!sorted.is_empty()).then(|| Summary {
            count: self.seen,
            p50: ms(0.5),
            p90: ms(0.9),
            p99: ms(0.99),
            max: ms(1.0),
        })
    }

    /// Merges `other` into this series (for a client's figure across methods).
    pub fn extend(&mut self, other: &Samples) {
        for value in &other.kept {
            self.add(*value);
        }
        self.seen += other.seen - other.kept.len() as u64;
    }
}

fn nearest_rank(sorted: &[f64], quantile: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = ((quantile * sorted.len() as f64).ceil() as usize).saturating_sub(1).min(last);
    sorted.get(rank).copied()
}

/// Seconds as milliseconds, to the microsecond.
pub fn round_ms(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples = Samples::default();
        for value in 1..=100 {
            samples.add(value as f64 / 1000.0);
        }
        let summary = samples.summary().unwrap();
        assert_eq!(
            (summary.count, summary.p50, summary.p90, summary.p99, summary.max),
            (100, 50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(samples.quantile(0.5), Some(0.05));
        assert!(Samples::default().summary().is_none());
    }

    #[test]
    fn the_reservoir_stays_bounded_and_counts_everything() {
        let mut samples = Samples::default();
        for value in 0..(MAX_SAMPLES * 3) {
            samples.add(value as f64);
        }
        assert_eq!(samples.values().len(), MAX_SAMPLES);
        assert_eq!(samples.seen(), (MAX_SAMPLES * 3) as u64);
        // An even sample of 0..6144 has its median near the middle.
        let median = samples.quantile(0.5).unwrap();
        assert!((2400.0..3700.0).contains(&median), "{median}");
    }
}
