//! The relay: the service every proxied call goes to. It opens the call's stream on the
//! server's registry (so `/streams`, metrics, the judge and live cuts see it as any other),
//! draws its faults, answers an abort itself, and otherwise forwards the call to the upstream
//! — request headers as they came, messages frame by frame — then hands the upstream's
//! response messages to the stream driver on their way back.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Uri};
use http_body::Frame;
use http_body_util::StreamBody;
use tokio::sync::oneshot;
use tonic::Status;
use tonic::body::Body;

use super::body::{
    RequestBody, RequestFailure, ResponseBody, ResponseMessages, TrailerSlot, client_body_status,
};
use super::errors::UpstreamError;
use super::frames::{FrameError, GrpcFrames, PREFIX_LEN};
use super::methods::RelayedMethods;
use super::upstream::{CutRequested, DedicatedConnection, UpstreamPool};
use crate::chaos::{ChaosEngine, FaultKind, FaultTally, StreamFaults};
use crate::driver::{DriverTargets, InboundDelays, UpstreamControl, drive};
use crate::judge::Judge;
use crate::proto::codec::WireMeter;
use crate::record::{CallTap, Recorder};
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
    /// Records calls as stubs and scripts (`--record`); `None` taps nothing.
    recorder: Option<Arc<Recorder>>,
}

impl RelayService {
    /// Relays to `upstream` the calls of the server whose shared parts `server` holds.
    pub fn new(
        upstream: UpstreamPool,
        max_message_bytes: usize,
        server: &ServerHandle,
        recorder: Option<Arc<Recorder>>,
    ) -> Self {
        let relay = Relay {
            upstream,
            methods: RelayedMethods::new(server.catalog.clone()),
            max_message_bytes,
            streams: server.streams.clone(),
            tally: server.chaos.tally().clone(),
            chaos: server.chaos.clone(),
            connections: server.connections.clone(),
            judge: server.judge.clone(),
            recorder,
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
        // (The upstream's side runs in the driven stream; see `exchange`.)
        let Some(connection) = request.extensions().get::<ConnectionContext>().cloned() else {
            return Status::internal("request arrived outside a registered connection").into_http();
        };
        let method = self.methods.get(request.uri().path());
        let mut stream = self.streams.open_call(&self.judge, method.clone(), &connection, request.headers());
        let control = stream.stream().control.clone();
        let stream_id = stream.stream().id;
        let mut faults = self.chaos.draw(&method, stream_id, request.headers());
        if let Some(abort) = stream.drawn(&mut faults, &self.tally) {
            return abort.into_http();
        }

        let tap = self.recorder.as_ref().and_then(|recorder| recorder.tap(&method, request.headers()));
        let failure = RequestFailure::default();
        let (parts, body) = request.into_parts();
        let upstream_body = self.request_body(body, &mut faults, &stream, failure.clone(), tap.clone());
        let mut upstream_request = http::Request::from_parts(parts, upstream_body);
        *upstream_request.uri_mut() = self.upstream_uri(upstream_request.uri());
        // A call drawn for an upstream fault gets a connection of its own, for the cut to break.
        let (cut, cut_requested) = match faults.upstream.is_some() {
            true => {
                let (cut, requested) = DedicatedConnection::new(self.upstream.target().clone());
                (Some(cut as Arc<dyn UpstreamControl>), Some(requested))
            }
            false => (None, None),
        };
        let trailers = TrailerSlot::default();
        let (headers, headers_sent) = oneshot::channel();
        let exchange = UpstreamExchange {
            request: upstream_request,
            cut_requested,
            failure,
            trailers: trailers.clone(),
            tap,
        };
        let targets = DriverTargets {
            stream_id,
            control: control.clone(),
            connection: self.connections.control(&connection),
            upstream: cut,
            tally: self.tally.clone(),
        };
        // The driver starts with the call, so its timers and live cuts reach a call still
        // waiting for the upstream to answer.
        let mut driven = drive(self.clone().exchange(exchange, headers).boxed(), faults, targets);
        let (parts, first) = match respond_when_ready(headers_sent, &mut driven).await {
            Ok((parts, first)) => (parts, first),
            Err(first) => (synthetic_headers(), first),
        };
        let driven = match first {
            None => driven,
            Some(first) => futures::stream::once(std::future::ready(first)).chain(driven).boxed(),
        };
        let body = ResponseBody::new(driven, trailers, stream);
        http::Response::from_parts(
            parts,
            Body::new(DrivenBody::new(body, control, connection.delivery.clone())),
        )
    }

    /// The upstream's side of a call: connects, sends the request, hands the response's
    /// headers over through `headers`, then yields its messages; the upstream's failures end
    /// it with the status the client gets.
    fn exchange(
        self: Arc<Self>,
        exchange: UpstreamExchange,
        headers: oneshot::Sender<http::response::Parts>,
    ) -> impl Stream<Item = Result<Bytes, Status>> + Send + 'static {
        let UpstreamExchange { request, cut_requested, failure, trailers, tap } = exchange;
        async_stream::stream! {
            let target = self.upstream.target().clone();
            let mut upstream = match self.upstream.connect(cut_requested).await {
                Ok(upstream) => upstream,
                Err(error) => {
                    yield Err(error.status);
                    return;
                }
            };
            let response = match upstream.sender.send_request(request).await {
                Ok(response) => response,
                Err(error) => {
                    let status = failure.get().cloned();
                    yield Err(status.unwrap_or_else(|| UpstreamError::of_call(&target, &error, &upstream.sniffed).status));
                    return;
                }
            };
            let (mut parts, incoming) = response.into_parts();
            if parts.status != http::StatusCode::OK {
                yield Err(http_status(parts.status));
                return;
            }
            if parts.headers.contains_key("grpc-status") {
                // Trailers-only: the status moves to the trailers, after whatever the driver does.
                *trailers.lock().unwrap_or_else(|p| p.into_inner()) = Some(take_status(&mut parts.headers));
            }
            if let Some(tap) = &tap {
                tap.response_headers(&parts.headers);
            }
            let _ = headers.send(parts);
            let sniffed = upstream.sniffed.clone();
            let max_message = self.max_message_bytes;
            let mut messages = ResponseMessages {
                frames: GrpcFrames::new(incoming, max_message),
                trailers: trailers.clone(),
                on_error: Box::new(move |error| match (failure.get(), error) {
                    (Some(status), _) => status.clone(),
                    (None, FrameError::Body(error)) => UpstreamError::of_call(&target, &error, &sniffed).status,
                    (None, FrameError::TooLarge { length, max }) => Status::resource_exhausted(format!(
                        "response message of {length} bytes is larger than the proxy's limit of {max}"
                    )),
                    (None, FrameError::Truncated) => {
                        Status::internal("the upstream's stream ended part-way through a message")
                    }
                }),
            };
            while let Some(message) = messages.next().await {
                if let (Some(tap), Ok(message)) = (&tap, &message) {
                    tap.response(message);
                }
                yield message;
            }
            // The upstream's own end (a failure above ends with the stream's error instead,
            // and the call goes unrecorded).
            if let Some(tap) = &tap {
                let ended = trailers.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(ended) = ended {
                    tap.end(ended);
                }
            }
        }
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
        tap: Option<Arc<CallTap>>,
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
                if let Some(tap) = &tap {
                    tap.request(&message);
                }
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
                    if !tally.admit(FaultKind::InboundCap, Some(tonic::Code::ResourceExhausted), stream_id) {
                        // The run's books are closed: the stream waits for the run's cut.
                        std::future::pending::<()>().await;
                    }
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

/// What the upstream's side of a call needs.
struct UpstreamExchange {
    request: http::Request<RequestBody>,
    /// For a call with a connection of its own: where its cut is asked for.
    cut_requested: Option<CutRequested>,
    failure: RequestFailure,
    trailers: TrailerSlot,
    /// The recorder's taps, when the call is recorded.
    tap: Option<Arc<CallTap>>,
}

/// The response headers to send the client, once known: the upstream's, with whatever the
/// driven stream yielded meanwhile; or, when the driven stream yields or ends before the
/// upstream answers (a fault, a live cut, an upstream failure), that first item alone.
async fn respond_when_ready(
    mut headers: oneshot::Receiver<http::response::Parts>,
    driven: &mut BoxStream<'static, Result<Bytes, Status>>,
) -> Result<(http::response::Parts, Option<Result<Bytes, Status>>), Option<Result<Bytes, Status>>> {
    tokio::select! {
        biased;
        parts = &mut headers => match parts {
            Ok(parts) => Ok((parts, None)),
            Err(_) => Err(driven.next().await),
        },
        first = driven.next() => match headers.try_recv() {
            // The upstream answered, and its first message came with the same poll.
            Ok(parts) => Ok((parts, first)),
            Err(_) => Err(first),
        },
    }
}

/// The headers of a response the upstream has not answered: a gRPC response whose trailers
/// will carry the status.
fn synthetic_headers() -> http::response::Parts {
    let mut response = http::Response::new(());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response.into_parts().0
}

/// The status gRPC clients report for a response with a non-200 HTTP status (gRPC's HTTP to
/// gRPC status code mapping).
fn http_status(status: http::StatusCode) -> Status {
    use http::StatusCode as Http;
    let code = match status {
        Http::BAD_REQUEST => tonic::Code::Internal,
        Http::UNAUTHORIZED => tonic::Code::Unauthenticated,
        Http::FORBIDDEN => tonic::Code::PermissionDenied,
        Http::NOT_FOUND => tonic::Code::Unimplemented,
        Http::TOO_MANY_REQUESTS | Http::BAD_GATEWAY | Http::SERVICE_UNAVAILABLE | Http::GATEWAY_TIMEOUT => {
            tonic::Code::Unavailable
        }
        _ => tonic::Code::Unknown,
    };
    Status::new(code, format!("the upstream answered with HTTP status {status}"))
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
