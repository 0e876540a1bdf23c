//! The gRPC service for every method of the loaded protos: finds the method by path, decodes
//! requests as its input type, hands the call to the responder, and tracks the stream in the [`StreamRegistry`] from its first
//! byte to its status.
//!
//! All four call patterns go through tonic's bidirectional handler: the responder decides how
//! many messages to read and write, so one path serves them all and oversize or malformed
//! inbound messages surface as statuses the responder can pass on.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures::Stream;
use futures::future::BoxFuture;
use prost_reflect::DynamicMessage;
use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::metadata::MetadataValue;
use tonic::server::Grpc;
use tonic::{Status, Streaming};

use super::body::DrivenBody;
use super::call::{Call, Inbound, InboundCap, OutboundStream, Responder};
use super::connection::{ConnectionContext, ConnectionRegistry};
use super::streams::{StreamGuard, StreamRegistry};
use super::{ServerHandle, ServerSettings};
use crate::chaos::{ChaosEngine, FaultTally};
use crate::driver::{DriverTargets, InboundDelays, StreamControl, drive};
use crate::judge::Judge;
use crate::proto::status::MESSAGES_READ_METADATA;
use crate::proto::{DynamicCodec, MethodCatalog, MethodEntry, OutboundMessage};

/// Serves the methods of a [`MethodCatalog`] through a [`Responder`].
#[derive(Clone)]
pub struct DynamicService {
    shared: Arc<DynamicShared>,
}

struct DynamicShared {
    catalog: Arc<MethodCatalog>,
    responder: Arc<dyn Responder>,
    max_message_bytes: usize,
    /// Initial size of each stream's codec buffers.
    stream_buffer_bytes: Option<usize>,
    streams: Arc<StreamRegistry>,
    /// Decides each stream's faults: the profile's plan, or only the stream limits without one.
    chaos: Arc<ChaosEngine>,
    /// Counts injected faults and limit endings (the engine's tally).
    tally: Arc<FaultTally>,
    connections: Arc<ConnectionRegistry>,
    /// Follows how each client under test copes.
    judge: Arc<Judge>,
}

impl DynamicService {
    /// Serves `catalog` through `responder` on the server whose shared parts `server` holds.
    pub fn new(
        catalog: Arc<MethodCatalog>,
        responder: Arc<dyn Responder>,
        settings: &ServerSettings,
        server: &ServerHandle,
    ) -> Self {
        let shared = DynamicShared {
            catalog,
            responder,
            max_message_bytes: settings.max_message_bytes,
            stream_buffer_bytes: settings.limits.stream_buffer_bytes,
            streams: server.streams.clone(),
            tally: server.chaos.tally().clone(),
            chaos: server.chaos.clone(),
            connections: server.connections.clone(),
            judge: server.judge.clone(),
        };
        Self { shared: Arc::new(shared) }
    }
}

impl tower::Service<http::Request<Body>> for DynamicService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(shared.serve(request).await) })
    }
}

impl DynamicShared {
    async fn serve(self: Arc<Self>, request: http::Request<Body>) -> http::Response<Body> {
        let path = request.uri().path();
        let Some(method) = self.catalog.by_path(path).cloned() else {
            return unknown_method_status(path).into_http();
        };
        let Some(connection) = request.extensions().get::<ConnectionContext>().cloned() else {
            return Status::internal("request arrived outside a registered connection").into_http();
        };
        let stream = self.streams.open_call(&self.judge, method.clone(), &connection, request.headers());
        let control = stream.stream().control.clone();
        let codec = DynamicCodec::for_server(method.input())
            .with_buffer_size(self.stream_buffer_bytes)
            .with_meter(stream.stream().clone());
        let mut grpc = Grpc::new(codec)
            .max_decoding_message_size(self.max_message_bytes)
            .max_encoding_message_size(self.max_message_bytes)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd);
        let stream_control = control.clone();
        let delivery = connection.delivery.clone();
        // tonic calls the handler once per request; the guard moves into that call.
        let mut stream = Some(stream);
        let handler = tower::service_fn(move |call: tonic::Request<Streaming<DynamicMessage>>| {
            let stream = stream.take().expect("the handler runs once per request");
            self.clone().start_call(method.clone(), connection.clone(), stream, stream_control.clone(), call)
        });
        let response = grpc.streaming(handler, request).await;
        response.map(|body| Body::new(DrivenBody::new(body, control, delivery)))
    }

    fn start_call(
        self: Arc<Self>,
        method: Arc<MethodEntry>,
        connection: ConnectionContext,
        mut stream: StreamGuard,
        control: Arc<StreamControl>,
        request: tonic::Request<Streaming<DynamicMessage>>,
    ) -> BoxFuture<'static, Result<tonic::Response<OutboundStream>, Status>> {
        let (metadata, _extensions, messages) = request.into_parts();
        let stream_id = stream.stream().id;
        let mut faults = self.chaos.draw(&method, stream_id, metadata.as_ref());
        if let Some(abort) = stream.drawn(&mut faults, &self.tally) {
            return Box::pin(futures::future::ready(Err(stamp_messages_read(abort, &stream))));
        }
        let inbound_cap = faults.inbound_cap.map(|max| InboundCap {
            max,
            tally: self.tally.clone(),
            stream_id,
            control: control.clone(),
        });
        let delays = faults
            .request_delays
            .take()
            .and_then(|delays| InboundDelays::new(delays, self.tally.clone(), stream_id));
        let inbound = Inbound::new(messages)
            .with_cap(inbound_cap)
            .with_request_probe(stream.request_probe())
            .with_delays(delays);
        let targets = DriverTargets {
            stream_id,
            control,
            connection: self.connections.control(&connection),
            upstream: None,
            tally: self.tally.clone(),
        };
        let opened = stream.stream().opened;
        let call = Call { method, connection, stream_id, opened, metadata, inbound };
        let responding = self.responder.respond(call);
        Box::pin(async move {
            let response = match responding.await {
                Ok(response) => response,
                Err(status) => {
                    stream.finish(&status);
                    return Err(stamp_messages_read(status, &stream));
                }
            };
            Ok(response.map(|messages| {
                let messages = drive(messages, faults, targets);
                Box::pin(TrackedOutbound { messages, stream, ended: false }) as OutboundStream
            }))
        })
    }
}

/// `UNIMPLEMENTED`, naming whether the service or only the method is unknown.
fn unknown_method_status(path: &str) -> Status {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    Status::unimplemented(format!("unknown method {method} for service {service}"))
}

/// Adds the [`MESSAGES_READ_METADATA`] trailer: the messages read on the call so far.
fn stamp_messages_read(mut status: Status, stream: &StreamGuard) -> Status {
    let read = stream.stream().messages_received.load(Ordering::Relaxed);
    status.metadata_mut().insert(MESSAGES_READ_METADATA, MetadataValue::from(read));
    status
}

/// Passes the outbound messages through, recording on the stream's guard the status they end
/// with: the error item's code, or `OK` when they run out. Every status carries the count of
/// messages read (an `OK` end becomes an explicit `OK` status to carry it). Dropped early, the
/// guard records `CANCELLED`.
struct TrackedOutbound {
    messages: OutboundStream,
    stream: StreamGuard,
    ended: bool,
}

impl Stream for TrackedOutbound {
    type Item = Result<OutboundMessage, Status>;

    fn poll_next(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let item = match std::task::ready!(self.messages.as_mut().poll_next(cx)) {
            Some(Ok(message)) => {
                self.stream.delivering(&message);
                return Poll::Ready(Some(Ok(message)));
            }
            Some(Err(status)) => status,
            None => Status::ok(""),
        };
        self.ended = true;
        self.stream.finish(&item);
        Poll::Ready(Some(Err(stamp_messages_read(item, &self.stream))))
    }
}
