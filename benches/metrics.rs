//! Metrics recording on the hot path: what the server's codec reports per message (the
//! stream's counters and the method's Prometheus handles), with no recorder installed (the
//! floor: the stream's own atomics) and with the Prometheus recorder; and what a stream costs
//! to open and close (registry entry, started/active/ended series, per-stream histograms).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use streamstorm::proto::codec::WireMeter;
use streamstorm::proto::{MethodCatalog, load_pool};
use streamstorm::server::{ConnectionRegistry, StreamRegistry};

/// Encoded size of the benches' `myapp.Notification`.
const MESSAGE_BYTES: usize = 74;

fn metrics(c: &mut Criterion) {
    let pool = load_pool(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("protos")], &[]).expect("protos load");
    let catalog = MethodCatalog::new(&pool, &[]);
    let subscribe =
        catalog.by_path("/myapp.NotificationService/Subscribe").expect("Subscribe exists").clone();
    let connections = ConnectionRegistry::default();
    let (connection, _commands) = connections.register("127.0.0.1:1".parse().unwrap());

    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(1));
    // Handles are bound when the registry is built: the first registry records into no-op
    // handles, the second into the installed Prometheus recorder.
    let without = Arc::new(StreamRegistry::new(&catalog, 0));
    streamstorm::telemetry::install_recorder().expect("recorder installs");
    let with = Arc::new(StreamRegistry::new(&catalog, 0));
    for (name, registry) in
        [("message_sent_no_recorder_baseline", &without), ("message_sent_prometheus", &with)]
    {
        let guard = registry.open(subscribe.clone(), &connection, Default::default());
        group.bench_function(name, |b| b.iter(|| guard.stream().sent(black_box(MESSAGE_BYTES))));
    }
    group.bench_function("stream_open_close_prometheus", |b| {
        b.iter(|| drop(black_box(with.open(subscribe.clone(), &connection, Default::default()))))
    });
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
