//! Profiles compiled from text: every section and value form, and every problem located.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::Code;

use super::*;
use crate::chaos::plan::{
    After, Codes, CountRange, DisconnectMode, Distribution, MessageCap, RateLimit, StreamTimeout,
};

fn parse(text: &str) -> Profile {
    parse_profile(Path::new("profiles/p.yaml"), text).unwrap_or_else(|problems| panic!("{problems}"))
}

/// Every problem, printed as `validate` prints it.
fn problems(text: &str) -> Vec<String> {
    let problems = parse_profile(Path::new("p.yaml"), text).expect_err("the profile should be rejected");
    problems.iter().map(ToString::to_string).collect()
}

const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn server_and_metrics_sections() {
    let profile = parse(
        "server:\n  listen: 127.0.0.1:50051\n  protos: [../protos/myapp, extra.proto]\n  import_paths: include\n  stubs: [stubs]\n  limits: { stream_timeout: 30s, max_stream_messages: 1000, max_concurrent_streams: 100000, max_message_size: 4MiB,
    max_connections: 500, handshake_timeout: 5s, frame_timeout: 2s }\n  shutdown_grace: 2s\nmetrics:\n  listen: 0.0.0.0:9464\n  per_stream: { max_streams: 50 }\n",
    );
    let server = &profile.server;
    assert_eq!(server.listen, Some("127.0.0.1:50051".parse().unwrap()));
    assert_eq!(
        server.protos,
        [PathBuf::from("profiles/../protos/myapp"), PathBuf::from("profiles/extra.proto")]
    );
    assert_eq!(server.import_paths, [PathBuf::from("profiles/include")]);
    assert_eq!(server.stubs, [PathBuf::from("profiles/stubs")]);
    assert_eq!(
        server.limits,
        ServerLimits {
            stream_timeout: Some(MS(30_000)),
            max_stream_messages: Some(1000),
            max_concurrent_streams: Some(100_000),
            max_message_size: Some(4 << 20),
            max_connections: Some(500),
            handshake_timeout: Some(MS(5000)),
            frame_timeout: Some(MS(2000)),
        }
    );
    assert_eq!(server.shutdown_grace, Some(MS(2000)));
    assert_eq!(profile.metrics.listen, Some("0.0.0.0:9464".parse().unwrap()));
    assert_eq!(profile.metrics.per_stream_max_streams, Some(50));
    assert!(profile.load.is_none() && profile.chaos.rules.is_empty());
}

#[test]
fn chaos_rules_with_every_fault_kind() {
    let profile = parse(
        r#"chaos:
  seed: 42
  header_faults: true
  connections: { max_age: 5m, max_age_grace: 10s, calls_per_second: 500 }
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      latency: { first_message: 0ms..50ms, per_message: { p50: 20ms, p99: 250ms } }
      abort: { rate: 5%, codes: { UNAVAILABLE: 3, internal: 1 } }
      fail: { rate: 0.02, after_messages: 3..20, code: 13, message: boom }
      disconnect: { rate: 1%, after: 2s..5s, mode: goaway, grace: 1s }
      message_cap: { max: 100, code: RESOURCE_EXHAUSTED }
      inbound_cap: 10
      stream_timeout: { after: 1m, code: CANCELLED }
      rate_limit: { messages_per_second: 100, calls_per_second: 20 }
    - match: { method: "myapp.ChatService/*" }
      disconnect: { rate: 100%, after_messages: 5, mode: reset_stream, h2_code: REFUSED_STREAM }
      message_cap: 7
      stream_timeout: 30s
    - latency: { per_message: { normal: { mean: 50ms, stddev: 10ms } }, first_message: { lognormal: { median: 50ms, sigma: 0.5 } } }
      disconnect: { rate: 1%, after_messages: 1, mode: tcp_reset }
"#,
    );
    let plan = &profile.chaos;
    assert_eq!((plan.seed, plan.header_faults), (42, true));
    assert_eq!(plan.connections.max_age, Some(MS(300_000)));
    assert_eq!(plan.connections.max_age_grace, Some(MS(10_000)));
    assert_eq!(plan.connections.calls_per_second, Some(500));
    let [first, second, third] = plan.rules.as_slice() else { panic!("three rules") };
    assert_eq!(
        first.matcher,
        MethodMatch::Method { service: "myapp.NotificationService".into(), method: "Subscribe".into() }
    );
    let latency = first.faults.latency.as_ref().unwrap();
    assert_eq!(latency.first_message, Some(Distribution::Uniform(MS(0), MS(50))));
    assert_eq!(latency.per_message, Some(Distribution::Percentiles { p50: MS(20), p99: MS(250) }));
    let abort = first.faults.abort.as_ref().unwrap();
    assert_eq!((abort.rate, abort.message.as_str()), (0.05, "injected abort"));
    assert_eq!(abort.codes, Codes(vec![(Code::Unavailable, 3), (Code::Internal, 1)]));
    let fail = first.faults.fail.as_ref().unwrap();
    assert_eq!((fail.rate, fail.message.as_str()), (0.02, "boom"));
    assert_eq!(fail.after, After::Messages(CountRange { min: 3, max: 20 }));
    assert_eq!(fail.codes, Codes(vec![(Code::Internal, 1)]));
    let disconnect = first.faults.disconnect.as_ref().unwrap();
    assert_eq!(disconnect.after, After::Elapsed(Distribution::Uniform(MS(2000), MS(5000))));
    assert_eq!(disconnect.mode, DisconnectMode::Goaway { grace: Some(MS(1000)) });
    assert_eq!(first.faults.message_cap, Some(MessageCap { max: 100, code: Code::ResourceExhausted }));
    assert_eq!(first.faults.inbound_cap, Some(10));
    assert_eq!(first.faults.stream_timeout, Some(StreamTimeout { after: MS(60_000), code: Code::Cancelled }));
    assert_eq!(
        first.faults.rate_limit,
        Some(RateLimit { messages_per_second: Some(100), calls_per_second: Some(20) })
    );
    assert_eq!(second.matcher, MethodMatch::Service("myapp.ChatService".into()));
    let disconnect = second.faults.disconnect.as_ref().unwrap();
    assert_eq!((disconnect.rate, disconnect.mode), (1.0, DisconnectMode::ResetStream { h2_code: 7 }));
    assert_eq!(second.faults.message_cap, Some(MessageCap { max: 7, code: Code::Ok }));
    assert_eq!(
        second.faults.stream_timeout,
        Some(StreamTimeout { after: MS(30_000), code: Code::DeadlineExceeded })
    );
    assert_eq!(third.matcher, MethodMatch::All);
    let latency = third.faults.latency.as_ref().unwrap();
    assert_eq!(latency.per_message, Some(Distribution::Normal { mean: MS(50), stddev: MS(10) }));
    assert_eq!(latency.first_message, Some(Distribution::LogNormal { median: MS(50), sigma: 0.5 }));
    assert_eq!(third.faults.disconnect.as_ref().unwrap().mode, DisconnectMode::TcpReset);
    let fields: Vec<_> = profile.method_references.iter().map(|reference| reference.field.as_str()).collect();
    assert_eq!(fields, ["chaos.rules[0].match.method", "chaos.rules[1].match.method"]);
    assert_eq!(profile.method_references[0].at, Position { line: 6, column: 24 });
}

#[test]
fn defaults_fill_what_is_left_out() {
    let profile = parse(
        "chaos:\n  rules:\n    - abort: { rate: 1% }\n      fail: { rate: 1%, after: 10ms }\n      disconnect: { rate: 1%, after_messages: 2 }\n    - disconnect: { rate: 1%, after_messages: 2, mode: goaway }\n    - latency: { per_message: 10ms }\n",
    );
    let faults = &profile.chaos.rules[0].faults;
    let abort = faults.abort.as_ref().unwrap();
    assert_eq!(
        (abort.codes.clone(), abort.message.as_str()),
        (Codes(vec![(Code::Unavailable, 1)]), "injected abort")
    );
    assert!(abort.details.is_none());
    let fail = faults.fail.as_ref().unwrap();
    assert_eq!(
        (fail.codes.clone(), fail.message.as_str()),
        (Codes(vec![(Code::Internal, 1)]), "injected failure")
    );
    assert_eq!(fail.after, After::Elapsed(Distribution::Fixed(MS(10))));
    assert_eq!(faults.disconnect.as_ref().unwrap().mode, DisconnectMode::ResetStream { h2_code: 8 });
    let goaway = profile.chaos.rules[1].faults.disconnect.as_ref().unwrap();
    assert_eq!(goaway.mode, DisconnectMode::Goaway { grace: None });
    let latency = profile.chaos.rules[2].faults.latency.as_ref().unwrap();
    assert_eq!(
        (latency.first_message.clone(), latency.per_message.clone()),
        (None, Some(Distribution::Fixed(MS(10))))
    );
}

#[test]
fn phases_abort_details_and_raw_load() {
    let profile = parse(
        r#"chaos:
  phases:
    - { name: steady, duration: 60s }
    - name: outage
      duration: 10s
      abort:
        rate: 100%
        code: UNAVAILABLE
        message: down for maintenance
        details: [{ "@type": google.rpc.RetryInfo, retry_delay: 10s }]
load:
  target: embedded
  scenarios: [{ method: myapp.NotificationService/Subscribe, streams: 10 }]
"#,
    );
    let [steady, outage] = profile.chaos.phases.as_slice() else { panic!("two phases") };
    assert_eq!((steady.name.as_str(), steady.duration), ("steady", MS(60_000)));
    assert!(steady.faults.abort.is_none());
    assert_eq!((outage.name.as_str(), outage.duration), ("outage", MS(10_000)));
    let abort = outage.faults.abort.as_ref().unwrap();
    assert_eq!((abort.rate, abort.message.as_str()), (1.0, "down for maintenance"));
    assert!(abort.details.as_ref().is_some_and(|details| !details.is_empty()));
    let load = profile.load.unwrap();
    assert_eq!(load.get("target").and_then(Node::as_str), Some("embedded"));
    assert_eq!(load.at.line, 12);
}

#[test]
fn seed_is_drawn_when_absent() {
    let seeds: Vec<u64> = (0..3).map(|_| parse("metrics: { listen: 127.0.0.1:0 }\n").chaos.seed).collect();
    assert!(seeds.windows(2).any(|pair| pair[0] != pair[1]), "{seeds:?}");
}

#[test]
fn unknown_keys_are_rejected_at_every_level() {
    let text = "servr: {}\nserver: { listn: x, limits: { max_streams: 1 } }\nchaos:\n  rules:\n    - abort: { rte: 5% }\n      match: { methd: a.B/C }\n  phases: [{ name: a, duration: 1s, latncy: {} }]\nmetrics: { per_stream: { max: 1 } }\n";
    assert_eq!(
        problems(text),
        [
            "p.yaml:1:1: servr: unknown field 'servr', did you mean 'server'? (expected one of: server, proxy, chaos, metrics, load, clients, expect)",
            "p.yaml:2:11: server.listn: unknown field 'listn', did you mean 'listen'? (expected one of: listen, protos, import_paths, stubs, limits, shutdown_grace, tls)",
            "p.yaml:2:31: server.limits.max_streams: unknown field 'max_streams', did you mean 'max_stream_messages'? (expected one of: stream_timeout, max_stream_messages, max_concurrent_streams, max_message_size, max_connections, handshake_timeout, frame_timeout)",
            "p.yaml:5:14: chaos.rules[0].abort: missing field 'rate' (e.g. rate: 5%)",
            "p.yaml:5:16: chaos.rules[0].abort.rte: unknown field 'rte', did you mean 'rate'? (expected one of: rate, code, codes, message, details)",
            "p.yaml:6:16: chaos.rules[0].match.methd: unknown field 'methd', did you mean 'method'? (expected one of: method)",
            "p.yaml:7:37: chaos.phases[0].latncy: unknown field 'latncy', did you mean 'latency'? (expected one of: name, duration, on_enter, latency, abort, fail, disconnect, upstream, message_cap, inbound_cap, stream_timeout, rate_limit)",
            "p.yaml:8:26: metrics.per_stream.max: unknown field 'max', did you mean 'max_streams'? (expected one of: max_streams)",
        ]
    );
}

#[test]
fn bad_values_are_located_with_what_is_allowed() {
    let text = r#"server:
  listen: localhost
  protos: [1]
  limits: { max_message_size: huge, handshake_timeout: 0s }
chaos:
  seed: -1
  header_faults: "no"
  rules:
    - match: { method: NotificationService }
      latency: { per_message: 100ms..10ms, first_message: { normal: { mean: 5ms } } }
      abort: { rate: 5, code: BOGUS }
      fail: { rate: 2%, after_messages: 20..3, after: 1s }
      disconnect: { rate: 1%, after: { p50: 1s }, mode: unplug }
    - disconnect: { rate: 1%, after_messages: 5, mode: stall, h2_code: 8, grace: 1s }
      abort: { rate: 1%, codes: { UNAVAILABLE: 0, NOPE: 1 }, details: [] }
      message_cap: { code: OK }
      stream_timeout: 0s
      rate_limit: {}
      latency: { per_message: { p50: 300ms, p99: 200ms } }
  phases:
    - { duration: 0s }
metrics: { listen: 1 }
load: [1]
"#;
    let duration_hint = "write e.g. 500ms, 30s, 2m, 1.5s";
    let expected = [
        "p.yaml:2:11: server.listen: not a socket address: \"localhost\" (write ip:port, e.g. 127.0.0.1:50051 or [::]:50051)".to_owned(),
        "p.yaml:3:12: server.protos[0]: expected a path, found a number".to_owned(),
        "p.yaml:4:31: server.limits.max_message_size: not a size: \"huge\" (write bytes like 4194304, or 64KiB, 4MiB, 1MB)".to_owned(),
        format!("p.yaml:4:56: server.limits.handshake_timeout: must be longer than 0, found \"0s\" ({duration_hint})"),
        format!("p.yaml:6:9: chaos.seed: expected a whole number from 0 to {}, found -1", u64::MAX),
        "p.yaml:7:18: chaos.header_faults: expected true or false, found \"no\"".to_owned(),
        "p.yaml:9:24: chaos.rules[0].match.method: not a method: \"NotificationService\" (write package.Service/Method or package.Service/*)".to_owned(),
        "p.yaml:10:31: chaos.rules[0].latency.per_message: range \"100ms..10ms\" runs backwards (write the shorter duration first)".to_owned(),
        "p.yaml:10:69: chaos.rules[0].latency.first_message.normal: missing field 'stddev' (e.g. stddev: 10ms)".to_owned(),
        "p.yaml:11:22: chaos.rules[0].abort.rate: not a rate: 5 (write a percentage like 5% or a fraction from 0 to 1 like 0.05; did you mean 5%?)".to_owned(),
        "p.yaml:11:31: chaos.rules[0].abort.code: not a gRPC status code: \"BOGUS\" (use 0-16 or OK, CANCELLED,".to_owned(),
        "p.yaml:12:55: chaos.rules[0].fail.after: write either 'after_messages' or 'after', not both".to_owned(),
        "p.yaml:13:38: chaos.rules[0].disconnect.after: missing field 'p99' (e.g. p99: 250ms)".to_owned(),
        "p.yaml:13:57: chaos.rules[0].disconnect.mode: not a disconnect mode: \"unplug\" (expected one of: reset_stream, goaway, tcp_reset, stall, blackhole)".to_owned(),
        "p.yaml:14:72: chaos.rules[1].disconnect.h2_code: applies to mode reset_stream only, not stall".to_owned(),
        "p.yaml:14:82: chaos.rules[1].disconnect.grace: applies to mode goaway only, not stall".to_owned(),
        "p.yaml:15:48: chaos.rules[1].abort.codes.UNAVAILABLE: expected a whole number from 1 to 4294967295, found 0".to_owned(),
        "p.yaml:15:51: chaos.rules[1].abort.codes.NOPE: not a gRPC status code: \"NOPE\"".to_owned(),
        "p.yaml:16:20: chaos.rules[1].message_cap: missing field 'max' (e.g. max: 100)".to_owned(),
        format!("p.yaml:17:23: chaos.rules[1].stream_timeout: must be longer than 0, found \"0s\" ({duration_hint})"),
        "p.yaml:18:19: chaos.rules[1].rate_limit: set messages_per_second, calls_per_second or both".to_owned(),
        "p.yaml:19:31: chaos.rules[1].latency.per_message: p50 must not be longer than p99".to_owned(),
        "p.yaml:21:7: chaos.phases[0]: missing field 'name' (e.g. name: outage)".to_owned(),
        format!("p.yaml:21:19: chaos.phases[0].duration: must be longer than 0, found \"0s\" ({duration_hint})"),
        "p.yaml:22:20: metrics.listen: not a socket address: 1 (write ip:port, e.g. 127.0.0.1:50051 or [::]:50051)".to_owned(),
        "p.yaml:23:7: load: expected a mapping, found a list".to_owned(),
    ];
    let found = problems(text);
    for line in &expected {
        assert!(
            found.iter().any(|problem| problem.starts_with(line.as_str())),
            "missing {line:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

#[test]
fn codes_and_draws_in_every_form() {
    let profile = parse(
        "chaos:\n  rules:\n    - abort: { rate: 1%, codes: { 14: 2, internal: 1 } }\n      fail: { rate: 1%, after: { p50: 1s, p99: 9s }, codes: [UNAVAILABLE, 13] }\n",
    );
    let faults = &profile.chaos.rules[0].faults;
    assert_eq!(
        faults.abort.as_ref().unwrap().codes,
        Codes(vec![(Code::Unavailable, 2), (Code::Internal, 1)])
    );
    let fail = faults.fail.as_ref().unwrap();
    assert_eq!(fail.codes, Codes(vec![(Code::Unavailable, 1), (Code::Internal, 1)]));
    assert_eq!(fail.after, After::Elapsed(Distribution::Percentiles { p50: MS(1000), p99: MS(9000) }));
    assert_eq!(
        problems(
            "chaos:\n  rules:\n    - fail: { rate: 1%, codes: {} }\n      latency: { per_message: { normal: {}, p50: 1s } }\n      abort: { rate: 1%, code: 14, codes: [13] }\n    - latency: {}\n      disconnect: { rate: 1%, after: { lognormal: { median: 0s, sigma: -1 } } }\n"
        ),
        [
            "p.yaml:3:13: chaos.rules[0].fail: missing field 'after_messages' or 'after' (e.g. after_messages: 3..20 or after: 5s)",
            "p.yaml:3:32: chaos.rules[0].fail.codes: name at least one code",
            "p.yaml:4:31: chaos.rules[0].latency.per_message: a distribution is one form, found normal and p50 (write 10ms, 10ms..100ms, {normal: {mean, stddev}}, {lognormal: {median, sigma}} or {p50, p99})",
            "p.yaml:5:43: chaos.rules[0].abort.codes: write either 'code' or 'codes', not both",
            "p.yaml:6:16: chaos.rules[1].latency: set first_message, per_message or both (e.g. per_message: 10ms..100ms)",
            "p.yaml:7:61: chaos.rules[1].disconnect.after.lognormal.median: must be longer than 0, found \"0s\" (write e.g. 500ms, 30s, 2m, 1.5s)",
            "p.yaml:7:72: chaos.rules[1].disconnect.after.lognormal.sigma: expected a number from 0 up (e.g. 0.5), found -1",
        ]
    );
}
