//! Delivery: whether what a connection's streams handed to HTTP/2 has reached the peer. The
//! stream driver waits for it before a cut, so the messages sent before a reset, GOAWAY, TCP
//! reset or blackhole are not lost in flight.
//!
//! Three counts per connection: the DATA bytes streams handed to HTTP/2 ([`super::body`]), the
//! DATA payload bytes HTTP/2 wrote ([`MeteredIo`], which follows frame boundaries on the way
//! out), and the bytes written to the socket. Delivery is reached when the DATA written catches
//! up with what was handed over when asked, and the peer's TCP has acknowledged every socket
//! byte written by then (written minus the socket's unacknowledged bytes, `TIOCOUTQ`). Both are
//! polled every millisecond, up to [`DELIVERY_BOUND`]: DATA of streams the client reset is
//! never written, and a peer that does not read never acknowledges.
//!
//! Under TLS the socket count is of encrypted bytes written by the time the DATA was, which
//! rustls writes through at once in practice; the barrier is then close, not exact.

use std::os::fd::RawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The longest a cut waits for delivery.
pub const DELIVERY_BOUND: Duration = Duration::from_millis(500);
/// How often delivery is checked.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

const FRAME_HEADER_LEN: usize = 9;
const DATA: u8 = 0x0;

/// What one connection has carried, for the delivery barrier.
#[derive(Debug)]
pub struct DeliveryProgress {
    /// DATA bytes the connection's streams have handed to HTTP/2.
    pub handed: AtomicU64,
    /// DATA payload bytes HTTP/2 has written.
    written_data: AtomicU64,
    /// Bytes written to the socket.
    written_socket: AtomicU64,
    /// The socket while the connection is open; -1 before and after.
    socket: AtomicI32,
}

impl Default for DeliveryProgress {
    fn default() -> Self {
        Self {
            handed: AtomicU64::new(0),
            written_data: AtomicU64::new(0),
            written_socket: AtomicU64::new(0),
            socket: AtomicI32::new(-1),
        }
    }
}

impl DeliveryProgress {
    /// The connection's socket, for reading what the peer has acknowledged.
    pub fn attach(&self, socket: RawFd) {
        self.socket.store(socket, Ordering::Relaxed);
    }

    /// The connection is closing: its socket must not be read any more.
    pub fn detach(&self) {
        self.socket.store(-1, Ordering::Relaxed);
    }

    /// Counts bytes written to the socket.
    pub fn wrote_to_socket(&self, bytes: usize) {
        self.written_socket.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Waits until the DATA handed over so far has been written and acknowledged by the peer's
    /// TCP, or [`DELIVERY_BOUND`] has passed.
    pub async fn delivered(&self) {
        let handed = self.handed.load(Ordering::Relaxed);
        let give_up = Instant::now() + DELIVERY_BOUND;
        let written = || self.written_data.load(Ordering::Relaxed) >= handed;
        if !self.poll_until(written, give_up).await {
            return;
        }
        let mark = self.written_socket.load(Ordering::Relaxed);
        self.poll_until(|| self.acknowledged().is_none_or(|acknowledged| acknowledged >= mark), give_up)
            .await;
    }

    /// Checks `done` every [`POLL_INTERVAL`] until it holds (true) or `give_up` passes (false).
    async fn poll_until(&self, done: impl Fn() -> bool, give_up: Instant) -> bool {
        while !done() {
            if Instant::now() >= give_up {
                return false;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        true
    }

    /// Socket bytes the peer has acknowledged; `None` once the socket is gone or unreadable.
    fn acknowledged(&self) -> Option<u64> {
        let socket = self.socket.load(Ordering::Relaxed);
        if socket < 0 {
            return None;
        }
        let mut unacknowledged: libc::c_int = 0;
        // SAFETY: TIOCOUTQ writes one int; a socket closed meanwhile fails with EBADF, which is
        // handled, and a number reused by another socket only skews this wait.
        let result = unsafe { libc::ioctl(socket, libc::TIOCOUTQ, &mut unacknowledged) };
        (result == 0)
            .then(|| self.written_socket.load(Ordering::Relaxed).saturating_sub(unacknowledged.max(0) as u64))
    }
}

/// Where the writer is in the outbound frames.
#[derive(Debug, Clone, Copy)]
enum Position {
    Header { header: [u8; FRAME_HEADER_LEN], filled: usize },
    Payload { remaining: usize, data: bool },
}

/// The connection's plaintext HTTP/2 side, counting DATA payload bytes as they are written.
pub struct MeteredIo<IO> {
    inner: IO,
    position: Position,
    progress: std::sync::Arc<DeliveryProgress>,
}

impl<IO> MeteredIo<IO> {
    pub fn new(inner: IO, progress: std::sync::Arc<DeliveryProgress>) -> Self {
        Self { inner, position: Position::Header { header: [0; FRAME_HEADER_LEN], filled: 0 }, progress }
    }

    /// Follows frame boundaries through `bytes`, just written.
    fn track(&mut self, mut bytes: &[u8]) {
        let mut data_bytes = 0;
        while !bytes.is_empty() {
            match &mut self.position {
                Position::Header { header, filled } => {
                    let take = (FRAME_HEADER_LEN - *filled).min(bytes.len());
                    header[*filled..*filled + take].copy_from_slice(&bytes[..take]);
                    *filled += take;
                    bytes = &bytes[take..];
                    if *filled == FRAME_HEADER_LEN {
                        let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
                        self.position = Position::Payload { remaining: length, data: header[3] == DATA };
                    }
                }
                Position::Payload { remaining, data } => {
                    let take = (*remaining).min(bytes.len());
                    if *data {
                        data_bytes += take;
                    }
                    *remaining -= take;
                    bytes = &bytes[take..];
                }
            }
            if matches!(self.position, Position::Payload { remaining: 0, .. }) {
                self.position = Position::Header { header: [0; FRAME_HEADER_LEN], filled: 0 };
            }
        }
        if data_bytes > 0 {
            self.progress.written_data.fetch_add(data_bytes as u64, Ordering::Relaxed);
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for MeteredIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for MeteredIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.track(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let mut written = std::task::ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        let total = written;
        for buf in bufs {
            let take = written.min(buf.len());
            self.track(&buf[..take]);
            written -= take;
            if written == 0 {
                break;
            }
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
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
    use std::sync::Arc;

    use super::*;

    fn frame(kind: u8, payload: usize) -> Vec<u8> {
        let length = (payload as u32).to_be_bytes();
        let mut bytes = vec![length[1], length[2], length[3], kind, 0, 0, 0, 0, 1];
        bytes.resize(FRAME_HEADER_LEN + payload, 7);
        bytes
    }

    #[test]
    fn counts_data_payloads_across_split_writes() {
        let progress = Arc::new(DeliveryProgress::default());
        let mut io = MeteredIo::new((), progress.clone());
        let bytes = [frame(0x4, 6), frame(DATA, 20), frame(0x1, 3), frame(DATA, 5)].concat();
        for chunk in bytes.chunks(4) {
            io.track(chunk);
        }
        assert_eq!(progress.written_data.load(Ordering::Relaxed), 25);
    }
}
