//! The first bytes an upstream connection reads, kept so a failed connection can say what the
//! upstream spoke: an HTTP/1 server answers the HTTP/2 preface with `HTTP/1.1 400` (or bare
//! HTML), which HTTP/2 itself can only report as a malformed frame.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many leading bytes are kept.
const KEPT: usize = 16;
/// Where an HTTP/2 frame header has its type; a server's first frame must be SETTINGS.
const FRAME_TYPE_AT: usize = 3;
const SETTINGS_FRAME: u8 = 0x4;

/// What the upstream sent first (up to [`KEPT`] bytes).
#[derive(Debug, Default)]
pub struct Sniffed(Mutex<Vec<u8>>);

impl Sniffed {
    fn first(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the upstream's first bytes cannot begin an HTTP/2 server's first frame.
    pub fn not_http2(&self) -> bool {
        self.first().get(FRAME_TYPE_AT).is_some_and(|kind| *kind != SETTINGS_FRAME)
    }

    /// Whether the upstream has sent nothing at all. An HTTP/2 server sends its SETTINGS as soon
    /// as it accepts, so a connection that fails before any byte came never spoke HTTP/2: an
    /// HTTP/1 server that hung up on the preface, for instance, when its reset discarded its
    /// answer before it could be read.
    pub fn silent(&self) -> bool {
        self.first().is_empty()
    }

    /// What the upstream answered instead of HTTP/2, for a status message.
    pub fn describe(&self) -> String {
        let first = self.first();
        if first.is_empty() {
            return "it hung up before sending a single HTTP/2 frame".to_owned();
        }
        if first.starts_with(b"HTTP/") {
            return "it answered in HTTP/1".to_owned();
        }
        let printable = first.iter().all(|byte| byte.is_ascii_graphic() || byte.is_ascii_whitespace());
        if printable {
            format!("it answered with text ({:?}...)", String::from_utf8_lossy(&first))
        } else {
            format!("it answered with bytes {first:02x?}...")
        }
    }
}

/// An I/O stream that keeps the first bytes it reads.
pub struct FirstBytes<IO> {
    inner: IO,
    sniffed: Arc<Sniffed>,
    /// How many of the first bytes have been kept.
    kept: usize,
}

impl<IO> FirstBytes<IO> {
    pub fn new(inner: IO) -> (Self, Arc<Sniffed>) {
        let sniffed = Arc::new(Sniffed::default());
        (Self { inner, sniffed: sniffed.clone(), kept: 0 }, sniffed)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FirstBytes<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.kept < KEPT {
            let fresh = &buf.filled()[before..];
            let fresh = &fresh[..fresh.len().min(KEPT - self.kept)];
            self.sniffed.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(fresh);
            self.kept += fresh.len();
        }
        result
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> FirstBytes<IO> {
    /// A peer that answers and hangs up at once (an HTTP/1 server refusing the HTTP/2 preface)
    /// can fail a write before anything was read: read what it answered then, so the failure
    /// still says what the peer speaks.
    fn sniff_failed_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if self.kept == 0 && matches!(&written, Poll::Ready(Err(_))) {
            let mut first = [0u8; KEPT];
            let mut buf = ReadBuf::new(&mut first);
            let _ = Pin::new(self).poll_read(cx, &mut buf);
        }
        written
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for FirstBytes<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.sniff_failed_write(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.sniff_failed_write(cx, written)
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
