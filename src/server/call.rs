//! One gRPC call as the server's responders see it: the method, the connection, the request
//! metadata and the inbound messages — whatever the call pattern, inbound is a stream, so one
//! code path serves unary, client, server and bidirectional calls alike.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use futures::future::BoxFuture;
use prost_reflect::DynamicMessage;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status, Streaming};

use super::connection::ConnectionContext;
use crate::chaos::{FaultKind, FaultTally};
use crate::driver::{InboundDelays, StreamControl};
use crate::judge::RequestProbe;
use crate::proto::{MethodEntry, OutboundMessage};

/// The messages a responder sends back; ends with `Ok` or with the `Err` status.
pub type OutboundStream = Pin<Box<dyn Stream<Item = Result<OutboundMessage, Status>> + Send>>;

/// Produces the response to calls. Implementations: the built-in default responder, stubs,
/// scripts.
pub trait Responder: Send + Sync + 'static {
    /// Starts answering `call`. An `Err` ends the call before any message, with that status.
    fn respond(&self, call: Call) -> BoxFuture<'static, Result<tonic::Response<OutboundStream>, Status>>;
}

/// A call in progress, as handed to a [`Responder`].
pub struct Call {
    pub method: Arc<MethodEntry>,
    pub connection: ConnectionContext,
    /// Server-wide stream number, unique for the life of the process.
    pub stream_id: u64,
    /// When the call's headers arrived: the origin of a script's timeline, as of a recording's.
    pub opened: std::time::Instant,
    pub metadata: MetadataMap,
    pub inbound: Inbound,
}

/// The messages the client sends, with transport errors already mapped to the status a client
/// should see.
pub struct Inbound {
    messages: Streaming<DynamicMessage>,
    received: u64,
    cap: Option<InboundCap>,
    /// Reads the resume position the first request asks for.
    request_probe: Option<RequestProbe>,
    /// Injected latency on each message before the responder gets it.
    delays: Option<InboundDelays>,
}

/// Messages accepted before the call ends with `RESOURCE_EXHAUSTED` (chaos inbound cap).
pub struct InboundCap {
    pub max: u64,
    /// Counts the fault when the cap is hit.
    pub tally: Arc<FaultTally>,
    pub stream_id: u64,
    /// Notes the fault as the one that ended the stream.
    pub control: Arc<StreamControl>,
}

impl Inbound {
    pub fn new(messages: Streaming<DynamicMessage>) -> Self {
        Self { messages, received: 0, cap: None, request_probe: None, delays: None }
    }

    /// Holds each message for its injected latency before handing it to the responder.
    pub fn with_delays(mut self, delays: Option<InboundDelays>) -> Self {
        self.delays = delays;
        self
    }

    /// Has `probe` read the first request.
    pub fn with_request_probe(mut self, probe: Option<RequestProbe>) -> Self {
        self.request_probe = probe;
        self
    }

    /// Accepts at most `cap.max` messages.
    pub fn with_cap(mut self, cap: Option<InboundCap>) -> Self {
        self.cap = cap;
        self
    }

    /// The next message, `None` once the client has half-closed.
    pub async fn next(&mut self) -> Result<Option<DynamicMessage>, Status> {
        let message = self.messages.message().await.map_err(inbound_status)?;
        if let Some(message) = &message {
            self.received += 1;
            if let Some(probe) = self.request_probe.take() {
                probe.observe(message);
            }
            if let Some(cap) = self.cap.as_ref().filter(|cap| self.received > cap.max) {
                if !cap.tally.admit(FaultKind::InboundCap, Some(Code::ResourceExhausted), cap.stream_id) {
                    // The run's books are closed: the stream waits for the run's cut.
                    std::future::pending::<()>().await;
                }
                cap.control.note_fault(FaultKind::InboundCap, Some(Code::ResourceExhausted));
                return Err(Status::resource_exhausted(format!(
                    "inbound message cap of {} reached",
                    cap.max
                )));
            }
            if let Some(delays) = &mut self.delays {
                delays.hold().await;
            }
        }
        Ok(message)
    }

    /// Messages received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The single request of a unary or server-streaming call: exactly one message, then the
    /// half-close.
    pub async fn single(&mut self) -> Result<DynamicMessage, Status> {
        let message = self
            .next()
            .await?
            .ok_or_else(|| Status::internal("the client half-closed without sending its request message"))?;
        if self.next().await?.is_some() {
            return Err(Status::internal(
                "the client sent more than one request message on a call that takes one",
            ));
        }
        Ok(message)
    }

    /// Reads and discards until the client half-closes; returns how many messages came.
    pub async fn drain(&mut self) -> Result<u64, Status> {
        while self.next().await?.is_some() {}
        Ok(self.received)
    }
}

/// tonic reports an oversized inbound message as `OUT_OF_RANGE`; gRPC servers conventionally
/// answer `RESOURCE_EXHAUSTED`, which is what clients' retry policies expect.
fn inbound_status(status: Status) -> Status {
    if status.code() == Code::OutOfRange && status.message().contains("message length too large") {
        Status::resource_exhausted(status.message().to_owned())
    } else {
        status
    }
}
