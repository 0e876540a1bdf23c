//! The proxy's HTTP/2 connections to its upstream: a few shared connections that calls are
//! spread over round robin (each re-dialled when it dies), and a connection of its own for a
//! call drawn to have its upstream connection broken (an `upstream` fault), so the cut reaches
//! that call alone. Every failure to reach the upstream becomes the `UNAVAILABLE` status a gRPC
//! client library reports for an unreachable server, naming the upstream, and is counted by
//! reason.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, oneshot};
use tokio_util::either::Either;
use tonic::Status;
use tracing::debug;

use super::body::RequestBody;
use super::errors::{UpstreamError, UpstreamErrorReason};
use super::sniff::{FirstBytes, Sniffed};
use super::{UpstreamSettings, UpstreamTarget};
use crate::chaos::plan::UpstreamCut;
use crate::client::tls::ClientTls;
use crate::driver::UpstreamControl;
use crate::telemetry::names;

/// Sends requests on one upstream connection.
pub type Sender = SendRequest<RequestBody>;

/// A shared connection's sender, and what its upstream sent first.
type SharedConnection = (Sender, Arc<Sniffed>);

/// An upstream connection, as one call uses it.
pub struct UpstreamConnection {
    pub sender: Sender,
    /// What the upstream sent first on the connection.
    pub sniffed: Arc<Sniffed>,
    /// Breaks the connection, when the call has it to itself.
    pub cut: Option<Arc<DedicatedConnection>>,
}

/// The upstream's connections.
pub struct UpstreamPool {
    target: UpstreamTarget,
    tls: Option<ClientTls>,
    connect_timeout: Duration,
    http2: http2::Builder<TokioExecutor>,
    /// The shared connections, each dialled when first needed and again once it has died.
    shared: Box<[Mutex<Option<SharedConnection>>]>,
    next: AtomicUsize,
}

impl UpstreamPool {
    pub fn new(settings: &UpstreamSettings) -> Self {
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .initial_stream_window_size(settings.stream_window)
            .initial_connection_window_size(settings.connection_window)
            .max_send_buf_size(settings.stream_window as usize)
            .keep_alive_interval(settings.keepalive_interval)
            .keep_alive_timeout(settings.keepalive_timeout)
            .keep_alive_while_idle(true);
        Self {
            target: settings.target.clone(),
            tls: settings.tls.clone(),
            connect_timeout: settings.connect_timeout,
            http2,
            shared: (0..settings.connections.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The upstream, as `host:port`.
    pub fn target(&self) -> &UpstreamTarget {
        &self.target
    }

    /// Whether calls go to the upstream over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// One of the shared connections, dialled if it is not open.
    pub async fn shared(&self) -> Result<UpstreamConnection, UpstreamError> {
        let slot = &self.shared[self.next.fetch_add(1, Ordering::Relaxed) % self.shared.len()];
        let mut slot = slot.lock().await;
        if let Some((sender, sniffed)) = slot.as_ref().filter(|(sender, _)| !sender.is_closed()) {
            return Ok(UpstreamConnection { sender: sender.clone(), sniffed: sniffed.clone(), cut: None });
        }
        let (sender, sniffed) = self.dial(None).await?;
        *slot = Some((sender.clone(), sniffed.clone()));
        Ok(UpstreamConnection { sender, sniffed, cut: None })
    }

    /// A connection of the call's own, which its `cut` breaks.
    pub async fn dedicated(&self) -> Result<UpstreamConnection, UpstreamError> {
        let (cut, cut_requested) = oneshot::channel();
        let (sender, sniffed) = self.dial(Some(cut_requested)).await?;
        let cut = DedicatedConnection { cut: std::sync::Mutex::new(Some(cut)), target: self.target.clone() };
        Ok(UpstreamConnection { sender, sniffed, cut: Some(Arc::new(cut)) })
    }

    /// Dials the upstream: TCP, TLS when configured, then the HTTP/2 handshake. The
    /// connection's task ends when the connection does, or when `cut` asks for it.
    async fn dial(
        &self,
        cut: Option<oneshot::Receiver<UpstreamCut>>,
    ) -> Result<(Sender, Arc<Sniffed>), UpstreamError> {
        let target = &self.target;
        let error = |reason, detail: String| UpstreamError::new(target, reason, detail);
        let address = (target.host.as_str(), target.port);
        let tcp = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
            Err(_) => {
                let waited = humantime::format_duration(self.connect_timeout);
                return Err(error(UpstreamErrorReason::Timeout, format!("no answer within {waited}")));
            }
            Ok(Err(io)) => return Err(error(UpstreamErrorReason::of_connect(&io), io.to_string())),
            Ok(Ok(tcp)) => tcp,
        };
        if let Err(io) = tcp.set_nodelay(true) {
            debug!(%io, "Could not disable Nagle's algorithm on the upstream connection.");
        }
        let socket = tcp.as_raw_fd();
        let (io, sniffed) = FirstBytes::new(tcp);
        let io = match &self.tls {
            None => Either::Left(io),
            Some(tls) => match tls.handshake(&target.host, io).await {
                Ok(stream) => Either::Right(stream),
                Err(io) => {
                    return Err(error(UpstreamErrorReason::Tls, format!("TLS handshake failed: {io}")));
                }
            },
        };
        let (sender, connection) = self
            .http2
            .handshake(TokioIo::new(io))
            .await
            .map_err(|failure| error(UpstreamErrorReason::Protocol, failure.to_string()))?;
        metrics::gauge!(names::PROXY_UPSTREAM_CONNECTIONS).increment(1.0);
        let described = target.to_string();
        tokio::spawn(async move {
            let cut = async move {
                match cut {
                    Some(cut) => cut.await.ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = connection => {
                    if let Err(failure) = result {
                        debug!(upstream = %described, %failure, "Upstream connection ended with an error.");
                    }
                }
                Some(cut) = cut => {
                    if cut == UpstreamCut::Reset {
                        arm_reset(socket);
                    }
                    debug!(upstream = %described, cut = cut.name(), "Upstream connection cut.");
                }
            }
            metrics::gauge!(names::PROXY_UPSTREAM_CONNECTIONS).decrement(1.0);
        });
        Ok((sender, sniffed))
    }
}

/// Makes the socket's close send a TCP RST instead of a FIN. The connection owning the socket
/// is still alive (it is dropped right after), so the descriptor is valid.
fn arm_reset(socket: RawFd) {
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(socket) };
    if let Err(io) = socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO)) {
        debug!(%io, "Could not arm the upstream TCP reset.");
    }
}

/// A connection one call has to itself; an `upstream` fault breaks it.
pub struct DedicatedConnection {
    cut: std::sync::Mutex<Option<oneshot::Sender<UpstreamCut>>>,
    target: UpstreamTarget,
}

impl UpstreamControl for DedicatedConnection {
    fn cut(&self, cut: UpstreamCut) -> Status {
        if let Some(sender) = self.cut.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = sender.send(cut);
        }
        let what = match cut {
            UpstreamCut::Reset => "reset",
            UpstreamCut::Close => "closed",
        };
        Status::unavailable(format!(
            "connection to upstream {} {what} (injected upstream fault)",
            self.target
        ))
    }
}
