//! The per-stream chaos decision: the faults a new stream draws from a plan of several rules
//! (latency distributions, abort, fail, disconnect, caps — the work every call pays when chaos
//! is on), from a plan that is present but injects nothing (every rate 0 %), and the floor: a
//! stream with no chaos engine, which only seeds its RNG.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use streamstorm::chaos::stream_rng;
use streamstorm::chaos::{ChaosEngine, StreamFaults};
use streamstorm::config::parse_profile;
use streamstorm::proto::{MethodCatalog, load_pool};

/// Four rules for three kinds of method, as `profiles/flaky.yaml` writes them.
const SEVERAL_RULES: &str = r#"
chaos:
  seed: 42
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      latency:
        first_message: 0ms..50ms
        per_message: { p50: 20ms, p99: 250ms }
      abort: { rate: 2%, code: UNAVAILABLE, message: "backend overloaded" }
      fail: { rate: 3%, after_messages: 3..20, codes: { INTERNAL: 3, UNAVAILABLE: 1 } }
      disconnect: { rate: 1%, after_messages: 5..50, mode: reset_stream }
    - match: { method: "myapp.ChatService/*" }
      latency: { per_message: 5ms..80ms }
      disconnect: { rate: 0.5%, after: 10s..60s, mode: goaway, grace: 2s }
    - match: { method: myapp.UserService/GetUser }
      message_cap: { max: 100 }
    - latency: { per_message: 0ms..20ms }
      abort: { rate: 1%, code: UNAVAILABLE }
"#;

fn chaos(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pool = load_pool(&[root.join("protos")], &[]).expect("protos load");
    let catalog = MethodCatalog::new(&pool, &[]);
    let subscribe =
        catalog.by_path("/myapp.NotificationService/Subscribe").expect("Subscribe exists").clone();
    let headers = http::HeaderMap::new();
    let plan =
        |text: &str| parse_profile(&PathBuf::from("bench.yaml"), text).expect("the plan compiles").chaos;
    let quiet = std::fs::read_to_string(root.join("benches/e2e/profile.yaml")).expect("the bench profile");
    let engines = [
        ("draw_several_rules", ChaosEngine::new(plan(SEVERAL_RULES))),
        ("draw_plan_injecting_nothing", ChaosEngine::new(plan(&quiet))),
    ];

    let mut group = c.benchmark_group("chaos/stream");
    group.throughput(Throughput::Elements(1));
    group.bench_function("no_engine_baseline", |b| {
        let mut stream_id = 0;
        b.iter(|| {
            stream_id += 1;
            black_box(StreamFaults::none(stream_rng(42, stream_id, 1)))
        })
    });
    for (name, engine) in &engines {
        group.bench_function(*name, |b| {
            let mut stream_id = 0;
            b.iter(|| {
                stream_id += 1;
                black_box(engine.draw(&subscribe, stream_id, &headers))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, chaos);
criterion_main!(benches);
