//! Shares: for every shard count from 1 to 7, the shards' slots of every scenario (with
//! awkward counts, weights shared by `load.streams` included) and their call budgets add up
//! to the whole profile's, and the shards' slot numbers tile the run's without overlap.

use std::path::Path;

use streamstorm::client::{ShardSpec, shard_plan};
use streamstorm::config::load::compile_load;
use streamstorm::config::parse_profile;

const PROFILES: [&str; 2] = [
    "load:
  calls: 1009
  scenarios:
    - { method: a.S/A, streams: 1 }
    - { method: a.S/B, streams: 13, ramp: { from: 5, over: 10s } }
    - { method: a.S/C, streams: 997 }
",
    "load:
  streams: 101
  scenarios:
    - { method: a.S/A, weight: 3 }
    - { method: a.S/B, weight: 5 }
    - { method: a.S/C, weight: 11 }
",
];

#[test]
fn every_shard_count_shares_exactly() {
    for text in PROFILES {
        let profile = parse_profile(Path::new("shares.yaml"), text).unwrap();
        let whole = compile_load(&profile).unwrap();
        for count in 1..=7 {
            let plans: Vec<_> =
                (0..count).map(|index| shard_plan(&whole, ShardSpec::new(index, count).unwrap())).collect();
            for (scenario, spec) in whole.scenarios.iter().enumerate() {
                let shares: Vec<u32> =
                    plans.iter().map(|plan| plan.plan.scenarios[scenario].streams).collect();
                assert_eq!(
                    shares.iter().sum::<u32>(),
                    spec.streams,
                    "{count} shards of {}: {shares:?}",
                    spec.method
                );
                let mut ids: Vec<u64> = plans
                    .iter()
                    .zip(&shares)
                    .flat_map(|(plan, share)| {
                        let first = plan.first_stream_ids[scenario];
                        first..first + u64::from(*share)
                    })
                    .collect();
                ids.sort_unstable();
                let offset: u64 =
                    whole.scenarios[..scenario].iter().map(|spec| u64::from(spec.streams)).sum();
                assert_eq!(ids, (offset..offset + u64::from(spec.streams)).collect::<Vec<_>>());
                if let Some(ramp) = spec.ramp {
                    let from: f64 =
                        plans.iter().map(|plan| plan.plan.scenarios[scenario].ramp.unwrap().from).sum();
                    assert!((from - ramp.from).abs() < 1e-9, "ramp starts add up");
                }
            }
            let calls: Option<u64> = plans.iter().map(|plan| plan.plan.calls).sum::<Option<u64>>();
            assert_eq!(calls, whole.calls, "{count} shards' call budgets");
        }
    }
}
