//! Profiles: parsed and compiled (server, chaos, metrics and load sections), the methods
//! checked against the example protos, the load section compiled into scenarios and used, and
//! the chaos plan used as the server does: faults drawn for a few streams of every method and
//! their latencies sampled.
#![no_main]

use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use rand::rngs::StdRng;
use streamstorm::chaos::decide::ChaosEngine;
use streamstorm::client::scenario::compile_scenarios;
use streamstorm::config::load::compile_load;
use streamstorm::config::{check_methods, parse_profile};
use streamstorm_fuzz::DESCRIPTORS;
use tonic::metadata::MetadataMap;

fuzz_target!(|text: &str| {
    let examples = &DESCRIPTORS.sets[0];
    let profile = match parse_profile(Path::new("fuzz-profile.yaml"), text) {
        Ok(profile) => profile,
        Err(problems) => {
            assert!(!problems.is_empty(), "a failed parse must report a problem");
            return;
        }
    };
    let _ = check_methods(&profile, &examples.catalog).to_string();
    if let Ok(plan) = compile_load(&profile) {
        for spec in &plan.scenarios {
            for attempt in [1, 2, 40, u32::MAX] {
                for spread in [-1.0, 0.0, 1.0] {
                    let _ = spec.reconnect.backoff(attempt, spread);
                }
            }
            for elapsed in [Duration::ZERO, Duration::from_millis(1500), Duration::MAX] {
                if let Some(ramp) = &spec.ramp {
                    let _ = ramp.value_at(f64::from(spec.streams), elapsed);
                }
                if let Some(ramp) = spec.send_rate.as_ref().and_then(|rate| rate.ramp.as_ref()) {
                    let _ = ramp.value_at(10.0, elapsed);
                }
            }
        }
        if let Ok(scenarios) = compile_scenarios(&plan, &profile.file, &examples.catalog) {
            let mut rng = StdRng::seed_from_u64(1);
            for scenario in &scenarios {
                let _ = scenario.request(7, &mut rng);
            }
        }
    }
    let engine = ChaosEngine::new(profile.chaos.clone());
    let metadata = MetadataMap::new();
    for method in &examples.methods {
        for stream_id in 0..3 {
            let mut faults = engine.draw(method, stream_id, metadata.as_ref());
            let _ = faults.summary().describe();
            for latency in [&faults.first_message_latency, &faults.per_message_latency].into_iter().flatten()
            {
                let _ = latency.sample(&mut faults.rng);
            }
        }
    }
});
