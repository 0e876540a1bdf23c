//! The answer for methods that nothing else answers: a valid default message of the output
//! type (every field at its proto3 default), or `UNIMPLEMENTED` when so configured.

use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use tonic::Status;

use super::call::{Call, OutboundStream, Responder};
use crate::proto::{CallKind, OutboundMessage};

/// What the default responder does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultResponse {
    /// Answer with default messages: unary and client streaming one reply; server streaming
    /// `stream_messages` replies spaced by `stream_interval`; bidi one reply per inbound message.
    Empty { stream_messages: u32, stream_interval: Duration },
    /// Answer every call with `UNIMPLEMENTED`.
    Unimplemented,
}

impl Default for DefaultResponse {
    fn default() -> Self {
        Self::Empty { stream_messages: 1, stream_interval: Duration::ZERO }
    }
}

pub struct DefaultResponder {
    response: DefaultResponse,
}

impl DefaultResponder {
    pub fn new(response: DefaultResponse) -> Self {
        Self { response }
    }
}

/// A message with every field at its default encodes to zero bytes.
fn default_message() -> OutboundMessage {
    OutboundMessage::Encoded(Bytes::new())
}

impl Responder for DefaultResponder {
    fn respond(&self, mut call: Call) -> BoxFuture<'static, Result<tonic::Response<OutboundStream>, Status>> {
        let (stream_messages, stream_interval) = match self.response {
            DefaultResponse::Unimplemented => {
                let message = format!("no response is configured for {}", call.method.path);
                return futures::future::ready(Err(Status::unimplemented(message))).boxed();
            }
            DefaultResponse::Empty { stream_messages, stream_interval } => (stream_messages, stream_interval),
        };
        async move {
            let stream: OutboundStream = match call.method.kind {
                CallKind::Unary => {
                    call.inbound.single().await?;
                    Box::pin(futures::stream::iter([Ok(default_message())]))
                }
                CallKind::ClientStreaming => {
                    call.inbound.drain().await?;
                    Box::pin(futures::stream::iter([Ok(default_message())]))
                }
                CallKind::ServerStreaming => {
                    call.inbound.single().await?;
                    Box::pin(paced_defaults(stream_messages, stream_interval))
                }
                CallKind::BidiStreaming => {
                    Box::pin(futures::stream::try_unfold(call.inbound, |mut inbound| async move {
                        Ok(inbound.next().await?.map(|_| (default_message(), inbound)))
                    }))
                }
            };
            Ok(tonic::Response::new(stream))
        }
        .boxed()
    }
}

/// `count` default messages, the first at once and each later one `interval` after the last.
fn paced_defaults(
    count: u32,
    interval: Duration,
) -> impl futures::Stream<Item = Result<OutboundMessage, Status>> + Send {
    futures::stream::unfold(0u32, move |sent| async move {
        if sent == count {
            return None;
        }
        if sent > 0 && !interval.is_zero() {
            tokio::time::sleep(interval).await;
        }
        Some((Ok(default_message()), sent + 1))
    })
}
