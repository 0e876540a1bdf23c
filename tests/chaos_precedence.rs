//! The precedence of the plan's layers, decided in one place: per fault kind the phase in
//! force, else the first matching rule that sets it, else the base layer (the stream limits);
//! the base layer's message cap and stream timeout bound whatever the rules set.

mod common;

use std::sync::Arc;
use std::time::Duration;

use streamstorm::chaos::plan::{Distribution, FaultPlan};
use streamstorm::chaos::{ChaosEngine, StreamFaults};
use streamstorm::config::parse_profile;
use streamstorm::proto::{MethodCatalog, MethodEntry};
use streamstorm::server::StreamLimits;

fn subscribe() -> Arc<MethodEntry> {
    let catalog = MethodCatalog::new(&common::example_pool(), &[]);
    catalog.by_path("/myapp.NotificationService/Subscribe").expect("Subscribe exists").clone()
}

/// The faults a Subscribe stream draws under `chaos` (YAML) over the base layer `limits`.
fn drawn(chaos: &str, limits: StreamLimits) -> StreamFaults {
    let plan = if chaos.is_empty() {
        FaultPlan::default()
    } else {
        parse_profile(std::path::Path::new("precedence.yaml"), chaos).expect("the profile compiles").chaos
    };
    let engine = ChaosEngine::new(plan);
    engine.set_base(limits.base_layer());
    engine.draw(&subscribe(), 1, &http::HeaderMap::new())
}

fn limits() -> StreamLimits {
    StreamLimits {
        stream_timeout: Some(Duration::from_secs(30)),
        max_stream_messages: Some(100),
        latency: Some((Duration::from_millis(10), Duration::from_millis(20))),
        stream_buffer_bytes: None,
    }
}

const ENV_LATENCY: Distribution = Distribution::Uniform(Duration::from_millis(10), Duration::from_millis(20));

#[test]
fn without_rules_the_base_layer_applies() {
    let faults = drawn("", limits());
    assert_eq!(faults.per_message_latency, Some(ENV_LATENCY));
    assert_eq!(faults.message_cap.map(|cap| cap.max), Some(100));
    assert_eq!(faults.stream_timeout.map(|timeout| timeout.after), Some(Duration::from_secs(30)));
}

#[test]
fn a_rule_setting_only_first_message_owns_latency() {
    let faults = drawn("chaos:\n  rules:\n    - latency: { first_message: 5ms }\n", limits());
    assert_eq!(faults.first_message_latency, Some(Distribution::Fixed(Duration::from_millis(5))));
    assert_eq!(faults.per_message_latency, None, "the environment's latency must not add to the rule's");
}

#[test]
fn the_base_layer_bounds_caps_and_timeouts() {
    let faults = drawn("chaos:\n  rules:\n    - { message_cap: 500, stream_timeout: 10s }\n", limits());
    assert_eq!(faults.message_cap.map(|cap| cap.max), Some(100), "the smaller cap wins");
    assert_eq!(faults.stream_timeout.map(|timeout| timeout.after), Some(Duration::from_secs(10)));
    let faults =
        drawn("chaos:\n  rules:\n    - { message_cap: { max: 5, code: RESOURCE_EXHAUSTED } }\n", limits());
    let cap = faults.message_cap.expect("a cap");
    assert_eq!((cap.max, cap.code), (5, tonic::Code::ResourceExhausted));
}

#[test]
fn a_phase_outranks_rules_and_chaos_off_keeps_the_limits() {
    let profile = "chaos:\n  rules:\n    - latency: { per_message: 1ms }\n  phases:\n    - { name: slow, duration: 1h, latency: { per_message: 2ms } }\n";
    let faults = drawn(profile, limits());
    assert_eq!(faults.per_message_latency, Some(Distribution::Fixed(Duration::from_millis(2))));
    let plan = parse_profile(std::path::Path::new("precedence.yaml"), profile).expect("compiles").chaos;
    let engine = ChaosEngine::new(plan);
    engine.set_base(limits().base_layer());
    engine.set_enabled(false);
    let faults = engine.draw(&subscribe(), 1, &http::HeaderMap::new());
    assert_eq!(faults.per_message_latency, Some(ENV_LATENCY));
    assert_eq!(faults.message_cap.map(|cap| cap.max), Some(100));
}

#[test]
fn a_zero_latency_rule_compiles_away_and_the_base_survives_a_reload() {
    let faults = drawn("chaos:\n  rules:\n    - latency: { per_message: 0ms }\n", StreamLimits::default());
    assert!(faults.is_quiet(), "{faults:?}");
    let engine = ChaosEngine::new(FaultPlan::default());
    engine.set_base(limits().base_layer());
    engine.replace(FaultPlan::default());
    let faults = engine.draw(&subscribe(), 1, &http::HeaderMap::new());
    assert_eq!(faults.message_cap.map(|cap| cap.max), Some(100));
}
