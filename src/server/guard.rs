//! Deadlines on a connection's inbound bytes, against clients that hold a connection without
//! making progress (slowloris): the HTTP/2 handshake — the preface and the first SETTINGS frame —
//! must arrive within the handshake timeout of the accept, and once begun, every frame and every
//! header block (HEADERS through the CONTINUATION carrying END_HEADERS) must complete within the
//! frame timeout. A connection that misses a deadline fails its next read with `TimedOut`, which
//! ends hyper's connection; [`StallFlag`] then says which deadline it was.
//!
//! A connection between frames has no deadline: idle clients are kept alive by keepalive pings,
//! not timed out here. Only frame boundaries are tracked (each 9-byte header read, the payload
//! skipped), so the guard costs a few comparisons per read and no copies.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// How long a client may take to make progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressTimeouts {
    /// From the accept to the end of the client's first SETTINGS frame.
    pub handshake: Duration,
    /// From the first byte of a frame (or of a header block) to its last.
    pub frame: Duration,
}

/// Which deadline a connection missed, shared with the task that reports why it closed.
#[derive(Debug, Default, Clone)]
pub struct StallFlag(Arc<AtomicU8>);

/// A missed deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    Handshake,
    Frame,
}

impl StallFlag {
    fn set(&self, stall: Stall) {
        self.0.store(stall as u8 + 1, Ordering::Relaxed);
    }

    /// The deadline the connection missed, if it missed one.
    pub fn get(&self) -> Option<Stall> {
        match self.0.load(Ordering::Relaxed) {
            1 => Some(Stall::Handshake),
            2 => Some(Stall::Frame),
            _ => None,
        }
    }
}

/// Where the reader is in the inbound byte stream.
#[derive(Debug, Clone, Copy)]
enum Position {
    Preface { seen: usize },
    FrameHeader { header: [u8; FRAME_HEADER_LEN], filled: usize },
    Payload { remaining: usize },
}

/// Follows frame boundaries in the bytes a client sends and says when the next deadline falls.
#[derive(Debug)]
struct FrameTracker {
    position: Position,
    accepted: Instant,
    /// The first SETTINGS frame has been read whole.
    handshaken: bool,
    /// When the frame being read began; `None` between frames.
    frame_started: Option<Instant>,
    /// When the open header block began; `None` when no block is open.
    block_started: Option<Instant>,
}

impl FrameTracker {
    fn new(accepted: Instant) -> Self {
        Self {
            position: Position::Preface { seen: 0 },
            accepted,
            handshaken: false,
            frame_started: None,
            block_started: None,
        }
    }

    fn observe(&mut self, mut bytes: &[u8], now: Instant) {
        while !bytes.is_empty() {
            match &mut self.position {
                Position::Preface { seen } => {
                    let take = (PREFACE_LEN - *seen).min(bytes.len());
                    *seen += take;
                    bytes = &bytes[take..];
                    if *seen == PREFACE_LEN {
                        self.position = Position::FrameHeader { header: [0; FRAME_HEADER_LEN], filled: 0 };
                    }
                }
                Position::FrameHeader { header, filled } => {
                    if *filled == 0 {
                        self.frame_started = Some(now);
                    }
                    let take = (FRAME_HEADER_LEN - *filled).min(bytes.len());
                    header[*filled..*filled + take].copy_from_slice(&bytes[..take]);
                    *filled += take;
                    bytes = &bytes[take..];
                    if *filled == FRAME_HEADER_LEN {
                        let header = *header;
                        self.frame_header(&header, now);
                    }
                }
                Position::Payload { remaining } => {
                    let take = (*remaining).min(bytes.len());
                    *remaining -= take;
                    bytes = &bytes[take..];
                    if *remaining == 0 {
                        self.frame_complete();
                    }
                }
            }
        }
    }

    fn frame_header(&mut self, header: &[u8; FRAME_HEADER_LEN], now: Instant) {
        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let (kind, flags) = (header[3], header[4]);
        match kind {
            HEADERS if flags & END_HEADERS == 0 => self.block_started = self.block_started.or(Some(now)),
            HEADERS | CONTINUATION if flags & END_HEADERS != 0 => self.block_started = None,
            _ => {}
        }
        self.position = Position::Payload { remaining: length };
        if length == 0 {
            self.frame_complete();
        }
    }

    fn frame_complete(&mut self) {
        // The first frame must be SETTINGS; if it is not, HTTP/2 itself fails the connection.
        self.handshaken = true;
        self.frame_started = None;
        self.position = Position::FrameHeader { header: [0; FRAME_HEADER_LEN], filled: 0 };
    }

    /// When the client must next have made progress, and which deadline that is.
    fn deadline(&self, timeouts: ProgressTimeouts) -> Option<(Instant, Stall)> {
        if !self.handshaken {
            return Some((self.accepted + timeouts.handshake, Stall::Handshake));
        }
        let started = match (self.frame_started, self.block_started) {
            (Some(frame), Some(block)) => Some(frame.min(block)),
            (frame, block) => frame.or(block),
        };
        started.map(|started| (started + timeouts.frame, Stall::Frame))
    }
}

/// A connection's socket with the deadlines of [`ProgressTimeouts`] on what it reads.
pub struct ProgressGuard<S> {
    inner: S,
    tracker: FrameTracker,
    timeouts: ProgressTimeouts,
    timer: Pin<Box<Sleep>>,
    stall: StallFlag,
}

impl<S> ProgressGuard<S> {
    /// Guards `inner`, accepted just now; `stall` learns which deadline was missed.
    pub fn new(inner: S, timeouts: ProgressTimeouts, stall: StallFlag) -> Self {
        let now = Instant::now();
        Self {
            inner,
            tracker: FrameTracker::new(now),
            timeouts,
            timer: Box::pin(tokio::time::sleep_until(now + timeouts.handshake)),
            stall,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProgressGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let this = &mut *self;
                this.tracker.observe(&buf.filled()[before..], Instant::now());
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                let Some((deadline, stall)) = self.tracker.deadline(self.timeouts) else {
                    return Poll::Pending;
                };
                if self.timer.deadline() != deadline {
                    self.timer.as_mut().reset(deadline);
                }
                if self.timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.stall.set(stall);
                let what = match stall {
                    Stall::Handshake => "the HTTP/2 handshake did not complete in time",
                    Stall::Frame => "a frame or header block did not complete in time",
                };
                Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, what)))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProgressGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: ProgressTimeouts =
        ProgressTimeouts { handshake: Duration::from_secs(10), frame: Duration::from_secs(5) };

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend([kind, flags, 0, 0, 0, 1]);
        out.extend_from_slice(payload);
        out
    }

    fn handshake() -> Vec<u8> {
        [&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..], &frame(0x4, 0, &[])].concat()
    }

    #[test]
    fn the_handshake_deadline_holds_until_the_first_frame_is_whole() {
        let start = Instant::now();
        let mut tracker = FrameTracker::new(start);
        let bytes = handshake();
        tracker.observe(&bytes[..bytes.len() - 1], start + Duration::from_secs(1));
        assert_eq!(tracker.deadline(TIMEOUTS), Some((start + TIMEOUTS.handshake, Stall::Handshake)));
        tracker.observe(&bytes[bytes.len() - 1..], start + Duration::from_secs(2));
        assert_eq!(tracker.deadline(TIMEOUTS), None, "between frames there is no deadline");
    }

    #[test]
    fn a_partial_frame_has_a_deadline_from_its_first_byte() {
        let start = Instant::now();
        let mut tracker = FrameTracker::new(start);
        tracker.observe(&handshake(), start);
        let data = frame(0x0, 0, &[7; 100]);
        let later = start + Duration::from_secs(30);
        tracker.observe(&data[..4], later);
        assert_eq!(tracker.deadline(TIMEOUTS), Some((later + TIMEOUTS.frame, Stall::Frame)));
        tracker.observe(&data[4..50], later + Duration::from_secs(1));
        assert_eq!(tracker.deadline(TIMEOUTS), Some((later + TIMEOUTS.frame, Stall::Frame)));
        tracker.observe(&data[50..], later + Duration::from_secs(2));
        assert_eq!(tracker.deadline(TIMEOUTS), None);
    }

    #[test]
    fn an_open_header_block_has_a_deadline_until_end_headers() {
        let start = Instant::now();
        let mut tracker = FrameTracker::new(start);
        tracker.observe(&handshake(), start);
        tracker.observe(&frame(HEADERS, 0, &[1, 2, 3]), start);
        for second in 1..4 {
            tracker.observe(&frame(CONTINUATION, 0, &[4]), start + Duration::from_secs(second));
            assert_eq!(tracker.deadline(TIMEOUTS), Some((start + TIMEOUTS.frame, Stall::Frame)));
        }
        tracker.observe(&frame(CONTINUATION, END_HEADERS, &[5]), start + Duration::from_secs(4));
        assert_eq!(tracker.deadline(TIMEOUTS), None);
        tracker.observe(&frame(HEADERS, END_HEADERS, &[1]), start + Duration::from_secs(5));
        assert_eq!(tracker.deadline(TIMEOUTS), None, "a block in one frame never stays open");
    }

    #[tokio::test]
    async fn a_silent_socket_fails_its_read_at_the_handshake_deadline() {
        use tokio::io::AsyncReadExt;
        let (client, server) = tokio::io::duplex(64);
        let stall = StallFlag::default();
        let short = ProgressTimeouts { handshake: Duration::from_millis(200), ..TIMEOUTS };
        let mut guarded = ProgressGuard::new(server, short, stall.clone());
        let started = Instant::now();
        let error = guarded.read(&mut [0; 16]).await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
        // Never before the deadline; after it by no more than a loaded machine's scheduling.
        let took = started.elapsed();
        assert!(took >= short.handshake && took < Duration::from_secs(5), "{took:?}");
        assert_eq!(stall.get(), Some(Stall::Handshake));
        drop(client);
    }
}
