//! gRPC messages cut out of an HTTP/2 body without decoding them: each is its 5-byte prefix
//! (compression flag, big-endian length) and its bytes, relayed as they came, compression flag
//! and all. A DATA frame holding whole messages is sliced, not copied; only a message split
//! over DATA frames is gathered, so what a stream holds is at most one message in the making.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::Body;

pub use crate::proto::codec::PREFIX_LEN;

/// Why a body's messages could not be cut out.
#[derive(Debug)]
pub enum FrameError<E> {
    /// The body itself failed.
    Body(E),
    /// A message longer than the limit.
    TooLarge { length: usize, max: usize },
    /// The body ended part-way through a message.
    Truncated,
}

/// The messages of a body, then its trailers.
pub struct GrpcFrames<B> {
    body: B,
    /// What is left of the last DATA frame, not yet cut into messages.
    chunk: Bytes,
    /// A message whose bytes span DATA frames, as gathered so far.
    partial: BytesMut,
    max_message: usize,
    trailers: Option<HeaderMap>,
    /// The body has ended.
    ended: bool,
    /// An error was reported: nothing more comes.
    failed: bool,
}

impl<B> GrpcFrames<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    /// Messages of at most `max_message` bytes from `body`.
    pub fn new(body: B, max_message: usize) -> Self {
        Self {
            body,
            chunk: Bytes::new(),
            partial: BytesMut::new(),
            max_message,
            trailers: None,
            ended: false,
            failed: false,
        }
    }

    /// The trailers, once the body has ended with them.
    pub fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }

    /// The next whole message with its prefix; `None` when the body has ended between
    /// messages.
    pub fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, FrameError<B::Error>>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let next = ready!(self.poll_next_message(cx));
        self.failed = matches!(next, Some(Err(_)));
        Poll::Ready(next)
    }

    fn poll_next_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, FrameError<B::Error>>>> {
        loop {
            match self.cut() {
                Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                Ok(None) => {}
                Err(error) => return Poll::Ready(Some(Err(error))),
            }
            if self.ended {
                let truncated = !self.partial.is_empty() || !self.chunk.is_empty();
                return Poll::Ready(truncated.then_some(Err(FrameError::Truncated)));
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.chunk = data,
                    Err(frame) => self.trailers = frame.into_trailers().ok(),
                },
                Some(Err(error)) => return Poll::Ready(Some(Err(FrameError::Body(error)))),
                None => self.ended = true,
            }
        }
    }

    /// Cuts the next whole message from what has arrived, if there is one.
    fn cut(&mut self) -> Result<Option<Bytes>, FrameError<B::Error>> {
        if self.partial.is_empty() {
            match self.message_length(&self.chunk)? {
                Some(length) if self.chunk.len() >= length => return Ok(Some(self.chunk.split_to(length))),
                _ if self.chunk.is_empty() => return Ok(None),
                _ => {}
            }
        }
        // Gather into `partial`: the prefix first, then up to the end of the message.
        let wanted = match self.message_length(&self.partial)? {
            Some(length) => length,
            None => PREFIX_LEN,
        };
        let take = (wanted - self.partial.len()).min(self.chunk.len());
        self.partial.extend_from_slice(&self.chunk[..take]);
        self.chunk.advance(take);
        match self.message_length(&self.partial)? {
            Some(length) if self.partial.len() == length => Ok(Some(self.partial.split().freeze())),
            // The prefix just completed: gather the rest of the message.
            Some(_) if !self.chunk.is_empty() => self.cut(),
            _ => Ok(None),
        }
    }

    /// The whole length (prefix included) of the message `bytes` starts with, once its prefix
    /// is there.
    fn message_length(&self, bytes: &[u8]) -> Result<Option<usize>, FrameError<B::Error>> {
        let Some(prefix) = bytes.get(..PREFIX_LEN) else { return Ok(None) };
        let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        if length > self.max_message {
            return Err(FrameError::TooLarge { length, max: self.max_message });
        }
        Ok(Some(PREFIX_LEN + length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use http_body_util::StreamBody;

    fn message(payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    type Chunks =
        StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<http_body::Frame<Bytes>, String>>>>;

    fn body(chunks: Vec<Vec<u8>>) -> Chunks {
        let frames: Vec<_> =
            chunks.into_iter().map(|chunk| Ok(http_body::Frame::data(Bytes::from(chunk)))).collect();
        StreamBody::new(futures::stream::iter(frames))
    }

    async fn messages(frames: &mut GrpcFrames<Chunks>) -> Vec<Result<Vec<u8>, String>> {
        futures::stream::poll_fn(|cx| frames.poll_message(cx))
            .map(|message| message.map(|bytes| bytes.to_vec()).map_err(|error| format!("{error:?}")))
            .collect()
            .await
    }

    #[tokio::test]
    async fn whole_messages_in_one_chunk_are_cut_apart() {
        let (a, b) = (message(b"hello"), message(b""));
        let mut frames = GrpcFrames::new(body(vec![[a.clone(), b.clone()].concat()]), 1024);
        assert_eq!(messages(&mut frames).await, vec![Ok(a), Ok(b)]);
    }

    #[tokio::test]
    async fn messages_split_anywhere_are_gathered() {
        let (a, b) = (message(b"first message"), message(b"second"));
        let all = [a.clone(), b.clone()].concat();
        for split in 0..=all.len() {
            for second in split..=all.len() {
                let chunks = vec![all[..split].to_vec(), all[split..second].to_vec(), all[second..].to_vec()];
                let mut frames = GrpcFrames::new(body(chunks), 1024);
                assert_eq!(
                    messages(&mut frames).await,
                    vec![Ok(a.clone()), Ok(b.clone())],
                    "split at {split}, {second}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_body_ending_mid_message_is_truncated() {
        let a = message(b"cut short");
        let mut frames = GrpcFrames::new(body(vec![a[..7].to_vec()]), 1024);
        assert_eq!(messages(&mut frames).await, vec![Err("Truncated".to_owned())]);
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_refused_from_its_prefix() {
        let mut frames = GrpcFrames::new(body(vec![message(&[7; 100])[..5].to_vec()]), 99);
        assert_eq!(messages(&mut frames).await, vec![Err("TooLarge { length: 100, max: 99 }".to_owned())]);
    }
}
