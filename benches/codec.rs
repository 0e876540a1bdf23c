//! The codec hot path: a server-streaming message (`myapp.Notification`, with a Timestamp and
//! an enum) decoded from and encoded to protobuf as a `DynamicMessage`, against the same bytes
//! copied as-is (the floor any codec pays), and the proto3 JSON conversions stubs rely on.

use std::hint::black_box;
use std::path::PathBuf;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use prost_reflect::DynamicMessage;
use serde_json::json;
use streamstorm::proto::json::{DefaultFields, FieldNames, message_from_json, message_to_json};
use streamstorm::proto::load_pool;

fn codec(c: &mut Criterion) {
    let pool =
        load_pool(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("protos")], &[]).expect("protos load");
    let notification = pool.get_message_by_name("myapp.Notification").expect("Notification exists");
    let json = json!({
        "topic": "payment", "message": "Payment processed for order 1234 in 23 ms",
        "timestamp": "2024-01-01T12:00:00.250Z", "severity": "WARNING", "sequence": "42"
    });
    let message = message_from_json(&notification, &json).expect("valid JSON");
    let bytes = Bytes::from(message.encode_to_vec());

    let mut group = c.benchmark_group("codec/notification");
    group.throughput(Throughput::Elements(1));
    group.bench_function("copy_bytes_baseline", |b| b.iter(|| Bytes::copy_from_slice(black_box(&bytes))));
    group.bench_function("decode_dynamic", |b| {
        b.iter(|| DynamicMessage::decode(notification.clone(), black_box(bytes.clone())).unwrap())
    });
    group.bench_function("encode_dynamic", |b| b.iter(|| black_box(&message).encode_to_vec()));
    group.bench_function("from_json", |b| {
        b.iter(|| message_from_json(&notification, black_box(&json)).unwrap())
    });
    group.bench_function("to_json", |b| {
        b.iter(|| message_to_json(black_box(&message), FieldNames::Proto, DefaultFields::Include).unwrap())
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
