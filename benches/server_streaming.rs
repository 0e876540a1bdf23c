//! Messages per second of one server-streaming call through the whole server (accept loop,
//! router, dynamic service, codec, HTTP/2) on loopback, with a realistic `myapp.Notification`
//! built as a dynamic message per send, against the same bytes encoded once ahead of time (the
//! baseline: everything but per-message encoding). The last variant repeats the dynamic one
//! with the Prometheus recorder installed, to measure what metrics cost on the hot path.

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::RepeatResponder;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use streamstorm::proto::{DynamicCodec, OutboundMessage, load_pool};
use streamstorm::server::{BoundServer, ServerSettings};
use tokio_util::sync::CancellationToken;

const MESSAGES_PER_CALL: u64 = 10_000;

fn server_streaming(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let pool =
        load_pool(&[PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("protos")], &[]).expect("protos load");
    let notification = pool.get_message_by_name("myapp.Notification").expect("Notification exists");
    let request_type = pool.get_message_by_name("myapp.SubscribeRequest").expect("SubscribeRequest exists");
    let message = common::notification(&pool);

    let mut group = c.benchmark_group("server_streaming");
    group.throughput(Throughput::Elements(MESSAGES_PER_CALL));
    group.sample_size(20);
    // Metric handles are bound when the server starts: the variants before the recorder is
    // installed record into no-op handles.
    let variants = [
        ("pre_encoded_baseline", OutboundMessage::Encoded(message.encode_to_vec().into()), false),
        ("dynamic_message", OutboundMessage::Dynamic(message.clone()), false),
        ("dynamic_message_metrics_on", OutboundMessage::Dynamic(message), true),
    ];
    for (name, outbound, metrics) in variants {
        if metrics {
            streamstorm::telemetry::install_recorder().expect("recorder installs");
        }
        let shutdown = CancellationToken::new();
        let channel = runtime.block_on(async {
            let settings =
                ServerSettings { listen: "127.0.0.1:0".parse().unwrap(), ..ServerSettings::default() };
            let server = BoundServer::bind_with(
                &mut pool.clone(),
                settings,
                Arc::new(RepeatResponder { message: outbound, count: MESSAGES_PER_CALL }),
            )
            .await
            .expect("server binds");
            let url = format!("http://{}", server.local_addr());
            tokio::spawn(server.serve(shutdown.clone()));
            tonic::transport::Endpoint::from_shared(url).unwrap().connect().await.expect("client connects")
        });
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let mut grpc = tonic::client::Grpc::new(channel.clone());
                    grpc.ready().await.unwrap();
                    let request = prost_reflect::DynamicMessage::new(request_type.clone());
                    let response = grpc
                        .streaming(
                            tonic::Request::new(futures::stream::iter([OutboundMessage::Dynamic(request)])),
                            "/myapp.NotificationService/Subscribe".parse().unwrap(),
                            DynamicCodec::for_client(notification.clone()),
                        )
                        .await
                        .unwrap();
                    let mut stream = response.into_inner();
                    let mut received = 0;
                    while stream.message().await.unwrap().is_some() {
                        received += 1;
                    }
                    assert_eq!(received, MESSAGES_PER_CALL);
                })
            })
        });
        shutdown.cancel();
    }
    group.finish();
}

criterion_group!(benches, server_streaming);
criterion_main!(benches);
