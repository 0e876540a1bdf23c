//! The answer for methods that nothing else answers: plausible data of the output type (the
//! default, [`crate::proto::fake`]), a bare default message (every field at its proto3
//! default), or `UNIMPLEMENTED`, as configured. Server streams send at a steady pace until
//! their message count is reached or the client cancels.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use prost_reflect::MessageDescriptor;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tonic::Status;

use super::call::{Call, OutboundStream, Responder};
use crate::proto::fake::{FakeContext, fake_message};
use crate::proto::{CallKind, OutboundMessage};

/// What the default responder does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultResponse {
    /// Answer with plausible data, seeded: unary and client streaming one reply; server
    /// streaming `stream_messages` replies spaced by `stream_interval`; bidi one reply per
    /// inbound message.
    Fake { stream_messages: u32, stream_interval: Duration },
    /// As `Fake`, with messages that have every field at its default (zero bytes on the wire).
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
    /// Seeds each call's data together with its method and its number among that method's
    /// calls, so the n-th call of a method gets the same data for the same seed.
    seed: u64,
    calls: Mutex<HashMap<String, u64>>,
}

impl DefaultResponder {
    pub fn new(response: DefaultResponse) -> Self {
        Self::seeded(response, 0)
    }

    pub fn seeded(response: DefaultResponse, seed: u64) -> Self {
        Self { response, seed, calls: Mutex::default() }
    }

    /// The messages of one call of `method` whose replies are of type `output`.
    fn replies(&self, method: &str, output: MessageDescriptor) -> Replies {
        if !matches!(self.response, DefaultResponse::Fake { .. }) {
            return Replies::Empty;
        }
        let call = {
            let mut calls = self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let count = calls.entry(method.to_owned()).or_default();
            *count += 1;
            *count
        };
        // FNV-1a of the method, so the seed does not depend on the order methods are called.
        let method_hash = method.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
        });
        let seed = self.seed ^ method_hash ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Replies::Fake { output, rng: Box::new(StdRng::seed_from_u64(seed)), sent: 0 }
    }
}

/// Makes one call's replies.
enum Replies {
    Empty,
    Fake { output: MessageDescriptor, rng: Box<StdRng>, sent: u64 },
}

impl Replies {
    fn next_message(&mut self) -> OutboundMessage {
        match self {
            // A message with every field at its default encodes to zero bytes.
            Self::Empty => OutboundMessage::Encoded(Bytes::new()),
            Self::Fake { output, rng, sent } => {
                *sent += 1;
                let context = FakeContext { sequence: *sent, now: SystemTime::now() };
                OutboundMessage::Dynamic(fake_message(output, context, rng.as_mut()))
            }
        }
    }
}

impl Responder for DefaultResponder {
    fn respond(&self, mut call: Call) -> BoxFuture<'static, Result<tonic::Response<OutboundStream>, Status>> {
        let (stream_messages, stream_interval) = match self.response {
            DefaultResponse::Unimplemented => {
                let message = format!("no response is configured for {}", call.method.path);
                return futures::future::ready(Err(Status::unimplemented(message))).boxed();
            }
            DefaultResponse::Fake { stream_messages, stream_interval }
            | DefaultResponse::Empty { stream_messages, stream_interval } => {
                (stream_messages, stream_interval)
            }
        };
        let mut replies = self.replies(&call.method.path, call.method.descriptor.output());
        async move {
            let stream: OutboundStream = match call.method.kind {
                CallKind::Unary => {
                    call.inbound.single().await?;
                    Box::pin(futures::stream::iter([Ok(replies.next_message())]))
                }
                CallKind::ClientStreaming => {
                    call.inbound.drain().await?;
                    Box::pin(futures::stream::iter([Ok(replies.next_message())]))
                }
                CallKind::ServerStreaming => {
                    call.inbound.single().await?;
                    Box::pin(paced(replies, stream_messages, stream_interval))
                }
                CallKind::BidiStreaming => Box::pin(futures::stream::try_unfold(
                    (call.inbound, replies),
                    |(mut inbound, mut replies)| async move {
                        Ok(inbound.next().await?.map(|_| (replies.next_message(), (inbound, replies))))
                    },
                )),
            };
            Ok(tonic::Response::new(stream))
        }
        .boxed()
    }
}

/// `count` replies, the first at once and each later one `interval` after the one before was
/// due (an absolute schedule: a late timer does not push back the replies after it); the
/// stream ends early when the client cancels (the server drops it).
fn paced(
    replies: Replies,
    count: u32,
    interval: Duration,
) -> impl futures::Stream<Item = Result<OutboundMessage, Status>> + Send {
    let start = tokio::time::Instant::now();
    futures::stream::unfold((replies, 0u32), move |(mut replies, sent)| async move {
        if sent == count {
            return None;
        }
        if sent > 0 && !interval.is_zero() {
            match start.checked_add(interval.saturating_mul(sent)) {
                Some(due) => tokio::time::sleep_until(due).await,
                // Due beyond the clock's range: never.
                None => std::future::pending().await,
            }
        }
        Some((Ok(replies.next_message()), (replies, sent + 1)))
    })
}
