//! Shards: shard I of N runs a deterministic share of every scenario — its slots, its ramp's
//! starting streams, and the run's call budget (in proportion to the slots it got) — so that
//! N processes together run the whole profile. Shares are cut like k6's execution segments: shard I owns the interval
//! `[I/N, (I+1)/N)` of every count, and its share of a count `n` is
//! `⌊n·(I+1)/N⌋ − ⌊n·I/N⌋`, so the shares of every count add up to exactly `n` whatever N is.
//! Per-stream rates need no share: each slot keeps its rate, and the slots are shared.
//! Each shard draws from a seed of its own, so shards do not repeat one another's draws.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::load::LoadPlan;

/// Which shard this process runs: `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl ShardSpec {
    /// The whole run, unsharded.
    pub const WHOLE: ShardSpec = ShardSpec { index: 0, count: 1 };

    /// `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (index, count) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("not a shard: {text:?} (write I/N, e.g. 0/4)"))?;
        let index: u32 =
            index.trim().parse().map_err(|_| format!("not a shard index: {index:?} in {text:?}"))?;
        let count: u32 =
            count.trim().parse().map_err(|_| format!("not a shard count: {count:?} in {text:?}"))?;
        Self::new(index, count)
    }

    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 {
            return Err("the shard count must be at least 1".to_owned());
        }
        if index >= count {
            return Err(format!("shard index {index} is not below the shard count {count}"));
        }
        Ok(Self { index, count })
    }

    /// Where this shard's share of `[0, total)` starts.
    pub fn first_of(&self, total: u64) -> u64 {
        cut(total, self.index, self.count)
    }

    /// This shard's share of `total`.
    pub fn share_of(&self, total: u64) -> u64 {
        cut(total, self.index + 1, self.count) - cut(total, self.index, self.count)
    }

    /// This shard's share of a fractional amount (a ramp's starting streams).
    pub fn share_of_fraction(&self, total: f64) -> f64 {
        total / f64::from(self.count)
    }

    /// The seed this shard draws from: the run's seed for shard 0 (so one shard of one is
    /// the unsharded run), a well-mixed different one for every other shard.
    pub fn seed(&self, seed: u64) -> u64 {
        if self.index == 0 {
            return seed;
        }
        // SplitMix64's finalizer over the seed and the index.
        let mut mixed = seed.wrapping_add(u64::from(self.index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }
}

/// `⌊total·at/count⌋` without overflow.
fn cut(total: u64, at: u32, count: u32) -> u64 {
    u64::try_from(u128::from(total) * u128::from(at) / u128::from(count)).unwrap_or(u64::MAX)
}

/// A shard's part of a plan: its share of every count, and where its slots fall among the
/// whole run's (so `{{stream.id}}` stays unique across shards).
#[derive(Debug, Clone)]
pub struct ShardPlan {
    pub plan: LoadPlan,
    /// Per scenario, the run-wide number of this shard's first slot.
    pub first_stream_ids: Vec<u64>,
}

/// Cuts `plan` down to `shard`'s share. A scenario may get no slots in a shard; it stays in
/// the plan so every shard's report lists the same scenarios in the same order.
pub fn shard_plan(plan: &LoadPlan, shard: ShardSpec) -> ShardPlan {
    let mut sharded = plan.clone();
    let mut first_stream_ids = Vec::with_capacity(plan.scenarios.len());
    let mut run_wide = 0u64;
    for scenario in &mut sharded.scenarios {
        let whole = u64::from(scenario.streams);
        first_stream_ids.push(run_wide + shard.first_of(whole));
        run_wide += whole;
        scenario.streams = u32::try_from(shard.share_of(whole)).unwrap_or(u32::MAX);
        if let Some(ramp) = &mut scenario.ramp {
            ramp.from = shard.share_of_fraction(ramp.from);
        }
    }
    // The call budget follows the slots, so a shard without slots gets no calls it could not
    // spend: shard I gets the calls of its interval of the run's slots.
    let slots_before = |at: u32| -> u64 {
        plan.scenarios.iter().map(|scenario| cut(u64::from(scenario.streams), at, shard.count)).sum()
    };
    let all_slots = slots_before(shard.count);
    sharded.calls = plan.calls.map(|calls| {
        if all_slots == 0 {
            return shard.share_of(calls);
        }
        let upto = |slots: u64| u64::try_from(u128::from(calls) * u128::from(slots) / u128::from(all_slots));
        let (from, to) = (upto(slots_before(shard.index)), upto(slots_before(shard.index + 1)));
        to.unwrap_or(calls) - from.unwrap_or(calls)
    });
    ShardPlan { plan: sharded, first_stream_ids }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_whole_for_every_count() {
        for count in 1..=7u32 {
            for total in [0u64, 1, 2, 3, 5, 7, 10, 11, 13, 97, 100, 1001, 65_537, u64::from(u32::MAX)] {
                let shards: Vec<ShardSpec> =
                    (0..count).map(|index| ShardSpec::new(index, count).unwrap()).collect();
                let sum: u64 = shards.iter().map(|shard| shard.share_of(total)).sum();
                assert_eq!(sum, total, "{count} shards of {total}");
                for pair in shards.windows(2) {
                    let (a, b) = (pair[0], pair[1]);
                    assert_eq!(a.first_of(total) + a.share_of(total), b.first_of(total), "contiguous");
                    assert!(a.share_of(total).abs_diff(b.share_of(total)) <= 1, "even: {count} of {total}");
                }
            }
        }
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(ShardSpec::parse("2/4"), Ok(ShardSpec { index: 2, count: 4 }));
        assert!(ShardSpec::parse("4/4").unwrap_err().contains("not below"));
        assert!(ShardSpec::parse("0/0").unwrap_err().contains("at least 1"));
        assert!(ShardSpec::parse("x").unwrap_err().contains("I/N"));
    }

    #[test]
    fn seeds_differ_by_shard_and_shard_zero_keeps_the_run_seed() {
        let seeds: Vec<u64> = (0..8).map(|index| ShardSpec::new(index, 8).unwrap().seed(42)).collect();
        assert_eq!(seeds[0], 42);
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
    }
}
