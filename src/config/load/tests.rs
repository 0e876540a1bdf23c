use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::parse_profile;

fn plan(yaml: &str) -> Result<LoadPlan, String> {
    let profile = parse_profile(Path::new("p.yaml"), yaml).map_err(|problems| problems.to_string())?;
    compile_load(&profile).map_err(|problems| problems.to_string())
}

#[test]
fn a_full_load_section_compiles() {
    let plan = plan(
        "load:
  target: localhost:50051
  duration: 20s
  connections: 2
  scenarios:
    - method: myapp.ChatService/Chat
      streams: 10
      ramp: { from: 2, over: 10s, steps: 4 }
      request: { user_id: 'u{{stream.id}}', content: '{{randSentence}}' }
      send_rate: { per_second: 20, ramp: { over: 5s } }
      messages_per_stream: 100
      think_time: 100ms..1s
      reconnect: { initial_backoff: 100ms, max_backoff: 5s, multiplier: 1.6, jitter: 0.2, max_attempts: 5 }
      sequence_field: sequence
  thresholds: { error_rate: '< 10%', p99_latency: '<= 500ms', messages_per_second: '> 100' }
",
    )
    .unwrap();
    assert_eq!(plan.target, LoadTarget::Address("localhost:50051".into()));
    assert_eq!(plan.duration, Some(Duration::from_secs(20)));
    let scenario = &plan.scenarios[0];
    assert_eq!(scenario.method, "myapp.ChatService/Chat");
    assert_eq!(scenario.streams, 10);
    assert_eq!(scenario.ramp, Some(Ramp { from: 2.0, over: Duration::from_secs(10), steps: Some(4) }));
    assert_eq!(scenario.send_rate.unwrap().per_second, 20.0);
    assert_eq!(scenario.think_time, Some((Duration::from_millis(100), Duration::from_secs(1))));
    assert_eq!(scenario.reconnect.max_attempts, Some(5));
    assert_eq!(scenario.sequence_field.as_deref(), Some("sequence"));
    let thresholds: Vec<_> =
        plan.thresholds.iter().map(|t| (t.name.as_str(), t.comparison, t.limit)).collect();
    assert_eq!(
        thresholds,
        [
            ("error_rate", Comparison::Less, 0.1),
            ("p99_latency", Comparison::LessOrEqual, 0.5),
            ("messages_per_second", Comparison::Greater, 100.0)
        ]
    );
}

#[test]
fn every_problem_is_located_at_once() {
    let error = plan(
        "load:
  duration: soon
  scenarios:
    - method: NoSlash
      streams: 0
      reconect: {}
  thresholds: { p99_latncy: '< 1s', error_rate: '10%' }
",
    )
    .unwrap_err();
    let expected = [
        "p.yaml:2:13: load.duration: not a duration: \"soon\"",
        "p.yaml:4:15: load.scenarios[0].method: not a method: \"NoSlash\" (write package.Service/Method)",
        "p.yaml:5:16: load.scenarios[0].streams: expected a whole number from 1",
        "p.yaml:6:7: load.scenarios[0].reconect: unknown field 'reconect', did you mean 'reconnect'?",
        "p.yaml:7:17: load.thresholds.p99_latncy: unknown field 'p99_latncy', did you mean 'p99_latency'?",
        "p.yaml:7:49: load.thresholds.error_rate: a condition starts with <, <=, > or >=",
    ];
    for line in expected {
        assert!(error.contains(line), "missing {line:?} in:\n{error}");
    }
}

#[test]
fn weights_share_load_streams() {
    let plan = plan(
        "load:
  streams: 10
  scenarios:
    - { method: a.S/A, weight: 3 }
    - { method: a.S/B, weight: 1 }
    - { method: a.S/C }
",
    )
    .unwrap();
    let streams: Vec<u32> = plan.scenarios.iter().map(|s| s.streams).collect();
    assert_eq!(streams.iter().sum::<u32>(), 10);
    assert_eq!(streams, [6, 2, 2]);
    let error = plan_error("load:\n  scenarios:\n    - { method: a.S/A, weight: 3 }\n");
    assert!(error.contains("a weight shares load.streams"), "{error}");
}

fn plan_error(yaml: &str) -> String {
    plan(yaml).unwrap_err()
}

#[test]
fn ramps_are_linear_or_stepped() {
    let linear = Ramp { from: 0.0, over: Duration::from_secs(10), steps: None };
    assert_eq!(linear.value_at(100.0, Duration::from_secs(5)), 50.0);
    assert_eq!(linear.value_at(100.0, Duration::from_secs(20)), 100.0);
    let stepped = Ramp { steps: Some(4), ..linear };
    assert_eq!(stepped.value_at(100.0, Duration::ZERO), 25.0);
    assert_eq!(stepped.value_at(100.0, Duration::from_millis(2600)), 50.0);
    assert_eq!(stepped.value_at(100.0, Duration::from_millis(9999)), 100.0);
}

#[test]
fn backoff_grows_by_the_multiplier_up_to_the_maximum_within_the_jitter() {
    let policy = ReconnectPolicy {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        multiplier: 2.0,
        jitter: 0.2,
        ..ReconnectPolicy::default()
    };
    let ms = |attempt, spread| policy.backoff(attempt, spread).as_millis();
    assert_eq!([ms(1, 0.0), ms(2, 0.0), ms(3, 0.0), ms(4, 0.0), ms(5, 0.0)], [100, 200, 400, 800, 1000]);
    assert_eq!((ms(1, -1.0), ms(1, 1.0)), (80, 120));
    assert_eq!(ms(10, 1.0), 1200);
}
