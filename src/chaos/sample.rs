//! Drawing durations and counts from the plan's distributions with a stream's RNG, and the
//! per-stream RNG itself.

use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution as _, LogNormal, Normal};

use super::plan::{CountRange, Distribution};

/// The random source for one stream: derived from the run's seed and the stream id, so the
/// same seed and the same traffic give the same draws; `purpose` keeps independent uses (chaos,
/// scripts, connection jitter) from sharing one sequence.
pub fn stream_rng(seed: u64, stream_id: u64, purpose: u64) -> StdRng {
    use rand::SeedableRng;
    let mixed =
        seed ^ stream_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ purpose.wrapping_mul(0xD1B5_4A32_D192_ED03);
    StdRng::seed_from_u64(mixed)
}

/// z for the 99th percentile of the standard normal distribution.
const Z_99: f64 = 2.326_347_874;

impl Distribution {
    /// False for a distribution that never delays (`0ms`), which then compiles away.
    pub fn delays(&self) -> bool {
        *self != Self::Fixed(Duration::ZERO) && *self != Self::Uniform(Duration::ZERO, Duration::ZERO)
    }

    /// One draw; never negative.
    pub fn sample(&self, rng: &mut StdRng) -> Duration {
        let seconds = match *self {
            Self::Fixed(value) => return value,
            Self::Uniform(low, high) if low >= high => return low,
            Self::Uniform(low, high) => return rng.random_range(low..=high),
            Self::Normal { mean, stddev } => Normal::new(mean.as_secs_f64(), stddev.as_secs_f64())
                .map(|normal| normal.sample(rng))
                .unwrap_or(mean.as_secs_f64()),
            Self::LogNormal { median, sigma } => log_normal(median, sigma, rng),
            Self::Percentiles { p50, p99 } => {
                let sigma = (p99.as_secs_f64() / p50.as_secs_f64().max(1e-9)).ln().max(0.0) / Z_99;
                log_normal(p50, sigma, rng)
            }
        };
        Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::ZERO)
    }
}

fn log_normal(median: Duration, sigma: f64, rng: &mut StdRng) -> f64 {
    let mu = median.as_secs_f64().max(1e-9).ln();
    LogNormal::new(mu, sigma.max(0.0)).map(|d| d.sample(rng)).unwrap_or(median.as_secs_f64())
}

impl CountRange {
    pub fn sample(&self, rng: &mut StdRng) -> u64 {
        if self.min >= self.max { self.min } else { rng.random_range(self.min..=self.max) }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn draws(distribution: &Distribution, count: usize) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(7);
        let mut values: Vec<f64> =
            (0..count).map(|_| distribution.sample(&mut rng).as_secs_f64() * 1000.0).collect();
        values.sort_by(f64::total_cmp);
        values
    }

    #[test]
    fn uniform_stays_in_range_and_spreads() {
        let values =
            draws(&Distribution::Uniform(Duration::from_millis(20), Duration::from_millis(40)), 10_000);
        assert!(values[0] >= 20.0 && values[9_999] <= 40.0);
        let median = values[5_000];
        assert!((29.0..31.0).contains(&median), "median {median}");
    }

    #[test]
    fn percentiles_land_where_asked() {
        let values = draws(
            &Distribution::Percentiles { p50: Duration::from_millis(20), p99: Duration::from_millis(250) },
            20_000,
        );
        let (p50, p99) = (values[10_000], values[19_800]);
        assert!((18.0..22.0).contains(&p50), "p50 {p50}");
        assert!((200.0..310.0).contains(&p99), "p99 {p99}");
    }

    #[test]
    fn normal_is_clamped_at_zero() {
        let values = draws(
            &Distribution::Normal { mean: Duration::from_millis(5), stddev: Duration::from_millis(10) },
            1_000,
        );
        assert!(values[0] >= 0.0);
    }
}
