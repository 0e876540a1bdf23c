//! The two bodies of a relayed call. The request body carries the client's messages to the
//! upstream, held for any injected request latency and stopped at the inbound cap. The
//! response body carries the upstream's messages, as the stream driver lets them through, to
//! the client, then the upstream's trailers — or the status a fault or an upstream failure
//! ended the call with. Both pull one message at a time, so a slow reader on either side slows
//! the other through HTTP/2 flow control; messages let through together leave in one frame.

use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use futures::stream::BoxStream;
use http::HeaderMap;
use http_body::{Body, Frame};
use http_body_util::StreamBody;
use tonic::{Code, Status};

use super::frames::{FrameError, GrpcFrames, PREFIX_LEN};
use crate::proto::OutboundMessage;
use crate::proto::codec::WireMeter;
use crate::server::streams::StreamGuard;

/// What the proxy sends the upstream: the client's messages, relayed.
pub type RequestBody = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Status>>>;

/// The upstream's trailers, left by the response's messages when they end.
pub type TrailerSlot = Arc<Mutex<Option<HeaderMap>>>;

/// Why the proxy stopped relaying the client's messages, when it did: the status the client
/// gets instead of whatever the upstream makes of the reset that follows.
pub type RequestFailure = Arc<OnceLock<Status>>;

/// The status a failed client body ends the call with.
pub fn client_body_status(error: FrameError<Status>, max_message: usize) -> Status {
    match error {
        FrameError::Body(status) => status,
        FrameError::TooLarge { length, .. } => Status::resource_exhausted(format!(
            "request message of {length} bytes is larger than the proxy's limit of {max_message}"
        )),
        FrameError::Truncated => Status::internal("the client's stream ended part-way through a message"),
    }
}

/// The upstream's response messages, each with its prefix; their end leaves the trailers in
/// the slot.
pub struct ResponseMessages<B: Body> {
    pub frames: GrpcFrames<B>,
    pub trailers: TrailerSlot,
    /// Maps a failure of the upstream's body to the status the client gets.
    pub on_error: Box<dyn Fn(FrameError<B::Error>) -> Status + Send>,
}

impl<B> Stream for ResponseMessages<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Item = Result<Bytes, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match ready!(this.frames.poll_message(cx)) {
            Some(Ok(message)) => Poll::Ready(Some(Ok(message))),
            Some(Err(error)) => Poll::Ready(Some(Err((this.on_error)(error)))),
            None => {
                // A trailers-only response left its status in the slot already.
                if let Some(trailers) = this.frames.take_trailers() {
                    *this.trailers.lock().unwrap_or_else(|p| p.into_inner()) = Some(trailers);
                }
                Poll::Ready(None)
            }
        }
    }
}

/// Messages the driver lets through together go out in one DATA frame of up to this many
/// bytes, as a gRPC server's own writes do: a frame each would cost the client (and HTTP/2 on
/// both sides) a frame per message. A lone message goes out as it came, uncopied.
const COALESCE_BYTES: usize = 32 * 1024;

/// The body the client reads: the driven messages, then trailers.
pub struct ResponseBody {
    /// The upstream's messages as the driver lets them through; dropped at the end, which
    /// cancels the upstream call if it is still running.
    messages: Option<BoxStream<'static, Result<Bytes, Status>>>,
    /// How the messages ended, when that came while a frame was being gathered: the failure's
    /// status, or `None` for the upstream's own end. Sent after that frame.
    ending: Option<Option<Status>>,
    trailers: TrailerSlot,
    /// Keeps the stream listed, counts its messages and records how it ended.
    stream: StreamGuard,
}

impl ResponseBody {
    pub fn new(
        messages: BoxStream<'static, Result<Bytes, Status>>,
        trailers: TrailerSlot,
        stream: StreamGuard,
    ) -> Self {
        Self { messages: Some(messages), ending: None, trailers, stream }
    }

    /// The trailers the call ends with: the status's, or the upstream's own.
    fn end(&mut self, status: Option<Status>) -> Result<HeaderMap, Status> {
        self.messages = None;
        let trailers = match status {
            // A reset is carried out by failing the body (see `UpstreamError`).
            Some(status) if is_reset(&status) => {
                self.stream.finish(&status);
                return Err(status);
            }
            Some(status) => status_trailers(status),
            None => self.trailers.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_else(|| {
                status_trailers(Status::internal("the upstream ended the call without a status"))
            }),
        };
        self.stream.finish(&status_of(&trailers));
        Ok(trailers)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        if let Some(ending) = this.ending.take() {
            return Poll::Ready(Some(this.end(ending).map(Frame::trailers)));
        }
        let Some(messages) = this.messages.as_mut() else { return Poll::Ready(None) };
        let first = match ready!(messages.as_mut().poll_next(cx)) {
            Some(Ok(message)) => message,
            Some(Err(status)) => return Poll::Ready(Some(this.end(Some(status)).map(Frame::trailers))),
            None => return Poll::Ready(Some(this.end(None).map(Frame::trailers))),
        };
        count_sent(&mut this.stream, &first);
        // Whatever else the driver has let through already joins the same frame.
        let mut gathered: Option<BytesMut> = None;
        while gathered.as_ref().map_or(first.len(), BytesMut::len) < COALESCE_BYTES {
            let next = match messages.as_mut().poll_next(cx) {
                Poll::Pending => break,
                Poll::Ready(Some(Ok(next))) => next,
                Poll::Ready(Some(Err(status))) => {
                    this.ending = Some(Some(status));
                    break;
                }
                Poll::Ready(None) => {
                    this.ending = Some(None);
                    break;
                }
            };
            count_sent(&mut this.stream, &next);
            gathered.get_or_insert_with(|| BytesMut::from(&first[..])).extend_from_slice(&next);
        }
        let data = gathered.map_or(first, BytesMut::freeze);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.messages.is_none()
    }
}

/// Counts one relayed message (`message` with its prefix) as sent on `stream`.
fn count_sent(stream: &mut StreamGuard, message: &Bytes) {
    let payload = message.slice(PREFIX_LEN..);
    stream.stream().sent(payload.len());
    stream.delivering(&OutboundMessage::Encoded(payload));
}

/// Whether `status` stands for a reset of the stream rather than a status to send.
pub fn is_reset(status: &Status) -> bool {
    std::error::Error::source(status).is_some_and(|source| source.downcast_ref::<h2::Error>().is_some())
}

/// `status` as trailers.
pub fn status_trailers(status: Status) -> HeaderMap {
    status.into_http::<()>().into_parts().0.headers
}

/// The status trailers (or trailers-only headers) carry; `UNKNOWN` when they carry none.
pub fn status_of(headers: &HeaderMap) -> Status {
    Status::from_header_map(headers).unwrap_or_else(|| Status::new(Code::Unknown, "no grpc-status"))
}
