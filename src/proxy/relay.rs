//! The relay: the service every proxied call goes to. It opens the call's stream on the
//! server's registry (so `/streams`, metrics, the judge and live cuts see it as any other),
//! draws its faults, answers an abort itself, and otherwise forwards the call to the upstream
//! — request headers as they came, messages frame by frame — then hands the upstream's
//! response messages to the stream driver on their way back.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::StreamExt;
use futures::future::BoxFuture;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Uri};
use http_body::Frame;
use http_body_util::StreamBody;
use tonic::Status;
use tonic::body::Body;

use super::body::{
    RequestBody, RequestFailure, ResponseBody, ResponseMessages, TrailerSlot, client_body_status, is_reset,
    status_of,
};
use super::errors::UpstreamError;
use super::frames::{FrameError, GrpcFrames, PREFIX_LEN};
use super::methods::RelayedMethods;
use super::upstream::UpstreamPool;
use crate::chaos::{ChaosEngine, FaultKind, FaultTally, StreamFaults};
use crate::driver::{DriverTargets, InboundDelays, StreamControl, UpstreamControl, drive};
use crate::judge::{CallArrival, Judge, method_name};
use crate::proto::codec::WireMeter;
use crate::server::body::DrivenBody;
use crate::server::streams::{StreamGuard, StreamRegistry};
use crate::server::{ConnectionContext, ConnectionRegistry, ServerHandle};

/// Relays calls to the upstream.
#[derive(Clone)]
pub struct RelayService {
    shared: Arc<Relay>,
}

struct Relay {
    upstream: UpstreamPool,
    methods: RelayedMethods,
    /// Largest message relayed either way; a larger one ends the call with
    /// `RESOURCE_EXHAUSTED`.
    max_message_bytes: usize,
    streams: Arc<StreamRegistry>,
    chaos: Arc<ChaosEngine>,
    tally: Arc<FaultTally>,
    connections: Arc<ConnectionRegistry>,
    judge: Arc<Judge>,
}

impl RelayService {
    /// Relays to `upstream` the calls of the server whose shared parts `server` holds.
    pub fn new(upstream: UpstreamPool, max_message_bytes: usize, server: &ServerHandle) -> Self {
        let relay = Relay {
            upstream,
            methods: RelayedMethods::new(server.catalog.clone()),
            max_message_bytes,
            streams: server.streams.clone(),
            tally: server.chaos.tally().clone(),
            chaos: server.chaos.clone(),
            connections: server.connections.clone(),
            judge: server.judge.clone(),
        };
        Self { shared: Arc::new(relay) }
    }
}

impl tower::Service<http::Request<Body>> for RelayService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let relay = self.shared.clone();
        Box::pin(async move { Ok(relay.relay(request).await) })
    }
}

impl Relay {
    async fn relay(self: Arc<Self>, request: http::Request<Body>) -> http::Response<Body> {
        let Some(connection) = request.extensions().get::<ConnectionContext>().cloned() else {
            return Status::internal("request arrived outside a registered connection").into_http();
        };
        let method = self.methods.get(request.uri().path());
        let control = Arc::new(StreamControl::default());
        let judged = self.judge.call_started(CallArrival {
            connection: connection.id.0,
            peer: connection.peer,
            headers: request.headers(),
            method: method_name(&method.path),
        });
        let mut stream = self.streams.open(method.clone(), &connection, control.clone());
        stream.judge(judged);
        let stream_id = stream.stream().id;
        let mut faults = self.chaos.draw(&method, stream_id, request.headers());
        stream.stream().set_faults(faults.summary());
        if let Some((kind, abort)) = faults.abort.take() {
            self.tally.record(kind, Some(abort.code()), stream_id);
            control.note_fault(kind, Some(abort.code()));
            stream.finish(&abort);
            return abort.into_http();
        }

        let failure = RequestFailure::default();
        let (parts, body) = request.into_parts();
        let upstream_body = self.request_body(body, &mut faults, &stream, failure.clone());
        let mut upstream_request = http::Request::from_parts(parts, upstream_body);
        *upstream_request.uri_mut() = self.upstream_uri(upstream_request.uri());
        let dedicated = faults.upstream.is_some();
        let connection_to_upstream =
            if dedicated { self.upstream.dedicated().await } else { self.upstream.shared().await };
        let mut upstream = match connection_to_upstream {
            Ok(upstream) => upstream,
            Err(error) => return failed(error.status, &mut stream),
        };
        let response = match upstream.sender.send_request(upstream_request).await {
            Ok(response) => response,
            Err(error) => {
                let status = failure.get().cloned().unwrap_or_else(|| {
                    UpstreamError::of_call(self.upstream.target(), &error, &upstream.sniffed).status
                });
                return failed(status, &mut stream);
            }
        };
        let (mut parts, incoming) = response.into_parts();
        if parts.status != http::StatusCode::OK {
            // Not a gRPC response: relayed as it is, for the client to map as gRPC says.
            stream.finish(&Status::unknown(format!("upstream answered HTTP {}", parts.status)));
            return http::Response::from_parts(parts, Body::new(incoming));
        }
        let trailers = TrailerSlot::default();
        if parts.headers.contains_key("grpc-status") {
            if faults.is_quiet() {
                // Trailers-only, relayed as it came.
                stream.finish(&status_of(&parts.headers));
                return http::Response::from_parts(parts, Body::new(incoming));
            }
            // The status moves to the trailers, so the driver's faults come before it.
            *trailers.lock().unwrap_or_else(|p| p.into_inner()) = Some(take_status(&mut parts.headers));
        }
        let target = self.upstream.target().clone();
        let sniffed = upstream.sniffed.clone();
        let max_message = self.max_message_bytes;
        let messages = ResponseMessages {
            frames: GrpcFrames::new(incoming, max_message),
            trailers: trailers.clone(),
            on_error: Box::new(move |error| {
                if let Some(status) = failure.get() {
                    return status.clone();
                }
                match error {
                    FrameError::Body(error) => UpstreamError::of_call(&target, &error, &sniffed).status,
                    FrameError::TooLarge { length, max } => Status::resource_exhausted(format!(
                        "response message of {length} bytes is larger than the proxy's limit of {max}"
                    )),
                    FrameError::Truncated => {
                        Status::internal("the upstream's stream ended part-way through a message")
                    }
                }
            }),
        };
        let targets = DriverTargets {
            stream_id,
            control: control.clone(),
            connection: self.connections.control(&connection),
            upstream: upstream.cut.map(|cut| cut as Arc<dyn UpstreamControl>),
            tally: self.tally.clone(),
        };
        let driven = drive(messages.boxed(), faults, targets);
        let body = ResponseBody::new(driven, trailers, stream);
        http::Response::from_parts(
            parts,
            Body::new(DrivenBody::new(body, control, connection.delivery.clone())),
        )
    }

    /// The client's messages on their way to the upstream: counted, the first one shown to the
    /// judge, held for injected latency, and stopped at the inbound cap (the call then ends
    /// with `RESOURCE_EXHAUSTED`, and the upstream's call is reset).
    fn request_body(
        &self,
        body: Body,
        faults: &mut StreamFaults,
        stream: &StreamGuard,
        failure: RequestFailure,
    ) -> RequestBody {
        let max_message = self.max_message_bytes;
        let mut frames = GrpcFrames::new(body, max_message);
        let live = stream.stream().clone();
        let stream_id = live.id;
        let inbound_cap = faults.inbound_cap;
        let mut delays = faults
            .request_delays
            .take()
            .and_then(|delays| InboundDelays::new(delays, self.tally.clone(), stream_id));
        let mut probe = stream.request_probe().filter(|_| !live.method.opaque);
        let input = live.method.input();
        let tally = self.tally.clone();
        let messages = async_stream::stream! {
            let mut received = 0u64;
            loop {
                let message = match std::future::poll_fn(|cx| frames.poll_message(cx)).await {
                    None => break,
                    Some(Ok(message)) => message,
                    Some(Err(error)) => {
                        let status = client_body_status(error, max_message);
                        let _ = failure.set(status.clone());
                        yield Err(status);
                        break;
                    }
                };
                received += 1;
                live.received(message.len() - PREFIX_LEN);
                if let Some(probe) = probe.take() {
                    // Compressed or malformed requests carry no readable position.
                    if message[0] == 0 {
                        if let Ok(request) = prost_reflect::DynamicMessage::decode(input.clone(), &message[PREFIX_LEN..]) {
                            probe.observe(&request);
                        }
                    }
                }
                if let Some(max) = inbound_cap.filter(|max| received > *max) {
                    tally.record(FaultKind::InboundCap, Some(tonic::Code::ResourceExhausted), stream_id);
                    live.control.note_fault(FaultKind::InboundCap, Some(tonic::Code::ResourceExhausted));
                    let status = Status::resource_exhausted(format!("inbound message cap of {max} reached"));
                    let _ = failure.set(status.clone());
                    yield Err(status);
                    break;
                }
                if let Some(delays) = delays.as_mut() {
                    delays.hold().await;
                }
                yield Ok(Frame::data(message));
            }
        };
        StreamBody::new(messages.boxed())
    }

    /// `uri`'s path on the upstream.
    fn upstream_uri(&self, uri: &Uri) -> Uri {
        let scheme = if self.upstream.is_tls() { "https" } else { "http" };
        let path = uri.path_and_query().map_or("/", |path| path.as_str());
        format!("{scheme}://{}{path}", self.upstream.target()).parse().unwrap_or_else(|_| uri.clone())
    }
}

/// The response for a call that failed before the upstream answered: the status, or a reset
/// of the stream when the upstream reset it.
fn failed(status: Status, stream: &mut StreamGuard) -> http::Response<Body> {
    stream.finish(&status);
    if !is_reset(&status) {
        return status.into_http();
    }
    let reset = futures::stream::once(async move { Err::<Frame<bytes::Bytes>, Status>(status) });
    let mut response = http::Response::new(Body::new(StreamBody::new(reset)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

/// Moves the status headers of a trailers-only response out of `headers`, as trailers.
fn take_status(headers: &mut http::HeaderMap) -> http::HeaderMap {
    let mut trailers = http::HeaderMap::new();
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        if let Some(value) = headers.remove(name) {
            trailers.insert(name, value);
        }
    }
    trailers
}
