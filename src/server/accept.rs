//! The accept loop and the per-connection HTTP/2 server. Each accepted socket is registered,
//! served by hyper's HTTP/2 server with the configured settings, and obeys the registry's
//! commands (drain with GOAWAY, close) until it ends. Connections older than the chaos plan's
//! maximum age are drained with GOAWAY, as load balancers do. With TLS, each connection's task
//! runs the handshake ([`super::tls`]) over the chaos-capable socket before HTTP/2, so faults
//! still act on the raw TCP connection. Connection counts and why each connection closed are
//! recorded as metrics.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::body::Body;
use tower::Service;
use tracing::{debug, info, warn};

use super::Http2Settings;
use super::connection::{ConnectionCommand, ConnectionContext, ConnectionRegistry};
use super::delivery::{DeliveryProgress, MeteredIo};
use super::descriptors;
use super::guard::{ProgressGuard, ProgressTimeouts, Stall, StallFlag};
use super::router::FrontService;
use super::tls::ServerTls;
use crate::chaos::stream_rng;
use crate::chaos::{ChaosEngine, FaultKind};
use crate::driver::sleep_until;
use crate::judge::Judge;
use crate::telemetry::names;

/// Everything the accept loop needs, owned for the server's life.
pub(super) struct Acceptor {
    pub listener: TcpListener,
    pub registry: Arc<ConnectionRegistry>,
    pub router: FrontService,
    pub http2: Http2Settings,
    /// Bounds the number of connections served at once; one permit per connection.
    pub connection_permits: Arc<Semaphore>,
    pub shutdown_grace: Duration,
    /// Supplies the connection-level faults (maximum age).
    pub chaos: Option<Arc<ChaosEngine>>,
    /// When set, every connection is TLS.
    pub tls: Option<ServerTls>,
    /// Told of connections opening, blackholed, abandoned and closing.
    pub judge: Arc<Judge>,
}

/// Distinguishes the maximum-age jitter from other draws.
const MAX_AGE_RNG: u64 = 5;

/// Why a connection closed (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseReason {
    /// The peer closed it, or it drained cleanly after a GOAWAY from the peer.
    Client,
    Error,
    /// Server shutdown.
    Shutdown,
    Goaway,
    MaxAge,
    TcpReset,
    Blackhole,
    /// The TLS handshake failed or timed out.
    TlsError,
    /// The client missed the handshake deadline.
    HandshakeTimeout,
    /// The client began a frame or header block and did not finish it in time.
    FrameTimeout,
}

impl From<Stall> for CloseReason {
    fn from(stall: Stall) -> Self {
        match stall {
            Stall::Handshake => Self::HandshakeTimeout,
            Stall::Frame => Self::FrameTimeout,
        }
    }
}

/// Every `reason` label value, registered at zero when the server binds.
pub(super) const CLOSE_REASONS: &[&str] = &[
    "client",
    "error",
    "shutdown",
    "goaway",
    "max_age",
    "tcp_reset",
    "blackhole",
    "tls_error",
    "handshake_timeout",
    "frame_timeout",
];

impl CloseReason {
    /// The `reason` label, one of [`CLOSE_REASONS`].
    fn name(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Error => "error",
            Self::Shutdown => "shutdown",
            Self::Goaway => "goaway",
            Self::MaxAge => "max_age",
            Self::TcpReset => "tcp_reset",
            Self::Blackhole => "blackhole",
            Self::TlsError => "tls_error",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::FrameTimeout => "frame_timeout",
        }
    }
}

impl Acceptor {
    /// Accepts until `shutdown` fires, then drains every connection with GOAWAY, waits up to
    /// the grace period, and closes what is left.
    pub async fn run(self, shutdown: CancellationToken) {
        let builder = Arc::new(http2_builder(&self.http2));
        let tasks = TaskTracker::new();
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = self.connection_permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            };
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Usually descriptor exhaustion: back off instead of spinning.
                        if descriptors::is_exhaustion(&error) {
                            let limit = descriptors::open_files_limit().unwrap_or_default();
                            warn!(%error, limit, "Accept failed: the open-file limit is reached; new connections wait for one to close. To hold more, {}.", descriptors::HOW_TO_RAISE);
                        } else {
                            warn!(%error, "Accept failed; retrying shortly.");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            if let Err(error) = stream.set_nodelay(true) {
                debug!(%error, "Could not disable Nagle's algorithm.");
            }
            let (context, commands) = self.registry.register(peer);
            metrics::counter!(names::CONNECTIONS_ACCEPTED).increment(1);
            metrics::gauge!(names::CONNECTIONS_ACTIVE).increment(1.0);
            let max_age = self.chaos.as_ref().and_then(|chaos| max_age(chaos, context.id.0));
            let connection = ConnectionTask {
                context,
                commands,
                max_age,
                progress: self.http2.progress_timeouts(),
                router: self.router.clone(),
                builder: builder.clone(),
                registry: self.registry.clone(),
                chaos: self.chaos.clone(),
                tls: self.tls.clone(),
                judge: self.judge.clone(),
            };
            tasks.spawn(async move {
                connection.run(stream).await;
                drop(permit);
            });
        }
        drop(self.listener);
        tasks.close();
        info!(connections = self.registry.len(), grace = ?self.shutdown_grace, "Draining connections.");
        self.registry.command_all(ConnectionCommand::Drain);
        if tokio::time::timeout(self.shutdown_grace, tasks.wait()).await.is_err() {
            warn!(connections = self.registry.len(), "Grace period over; closing the remaining connections.");
            self.registry.command_all(ConnectionCommand::Close);
            tasks.wait().await;
        }
    }
}

/// hyper's HTTP/2 server configured with `settings`: every connection `serve` accepts is served
/// by one of these (public so the baseline server of the benchmarks runs with the same values).
pub fn http2_builder(settings: &Http2Settings) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.max_concurrent_streams)
        .initial_stream_window_size(settings.initial_stream_window)
        .initial_connection_window_size(settings.connection_window())
        .max_frame_size(settings.max_frame_size)
        .keep_alive_interval(settings.keepalive_interval)
        .keep_alive_timeout(settings.keepalive_timeout)
        .max_pending_accept_reset_streams(settings.max_pending_accept_reset_streams)
        .max_local_error_reset_streams(settings.max_local_error_reset_streams)
        .max_header_list_size(settings.max_header_list_size)
        .max_send_buf_size(settings.max_send_buffer);
    builder
}

/// The age at which connection `id` gets GOAWAY, jittered by ±10% (as gRPC servers do, so
/// connections opened together do not all drain at once), and the grace after it.
fn max_age(chaos: &ChaosEngine, id: u64) -> Option<(Duration, Duration)> {
    let plan = chaos.plan();
    let age = plan.connections.max_age?;
    let jitter = rand::Rng::random_range(&mut stream_rng(plan.seed, id, MAX_AGE_RNG), 0.9..=1.1);
    Some((age.mul_f64(jitter), plan.connections.max_age_grace.unwrap_or(Duration::ZERO)))
}

/// One connection's task: serves HTTP/2 and listens for registry commands.
struct ConnectionTask {
    context: ConnectionContext,
    /// When to send GOAWAY for age, and the grace after it.
    max_age: Option<(Duration, Duration)>,
    /// Deadlines on the client's handshake and frames.
    progress: ProgressTimeouts,
    commands: mpsc::UnboundedReceiver<ConnectionCommand>,
    router: FrontService,
    builder: Arc<http2::Builder<TokioExecutor>>,
    registry: Arc<ConnectionRegistry>,
    chaos: Option<Arc<ChaosEngine>>,
    tls: Option<ServerTls>,
    judge: Arc<Judge>,
}

impl ConnectionTask {
    async fn run(mut self, stream: TcpStream) {
        let id = self.context.id;
        debug!(connection = %id, peer = %self.context.peer, "Connection accepted.");
        self.judge.connection_opened(id.0);
        let context = self.context.clone();
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(context.clone());
            router.clone().call(request.map(Body::new))
        });
        let socket = stream.as_raw_fd();
        let delivery = self.context.delivery.clone();
        delivery.attach(socket);
        let blackholed = Arc::new(AtomicBool::new(false));
        let io = ChaosIo { inner: stream, blackholed: blackholed.clone(), delivery: delivery.clone() };
        let io = match self.tls.clone() {
            None => Either::Left(io),
            Some(tls) => match self.accept_tls(&tls, io).await {
                Ok(stream) => Either::Right(stream),
                Err(reason) => return self.closed(reason),
            },
        };
        // The guard watches HTTP/2 frames, so it reads the decrypted side of TLS.
        let stall = StallFlag::default();
        let io = MeteredIo::new(ProgressGuard::new(io, self.progress, stall.clone()), delivery);
        let connection = self.builder.serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        // When set, the connection is closed at this instant (after GOAWAY or a blackhole).
        let mut close_at: Option<tokio::time::Instant> = None;
        let mut age_at = self.max_age.map(|(age, _)| tokio::time::Instant::now() + age);
        let mut reset_on_close = false;
        // Why the connection will close, once the server has decided it.
        let mut reason: Option<CloseReason> = None;
        let go_away = |close_at: &mut Option<tokio::time::Instant>, grace: Duration| {
            let at = tokio::time::Instant::now() + grace;
            *close_at = Some(close_at.map_or(at, |earlier| earlier.min(at)));
        };
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        debug!(connection = %id, %error, "Connection ended with an error.");
                        reason.get_or_insert(stall.get().map_or(CloseReason::Error, CloseReason::from));
                    }
                    break;
                }
                _ = sleep_until(close_at) => break,
                // A blackholed connection reads nothing, so the peer giving up shows only in
                // the socket's TCP state.
                _ = peer_gone(socket), if reset_on_close && reason == Some(CloseReason::Blackhole) => {
                    debug!(connection = %id, "The peer abandoned the blackholed connection.");
                    self.judge.peer_abandoned(id.0);
                    break;
                }
                _ = sleep_until(age_at) => {
                    age_at = None;
                    connection.as_mut().graceful_shutdown();
                    go_away(&mut close_at, self.max_age.map_or(Duration::ZERO, |(_, grace)| grace));
                    reason.get_or_insert(CloseReason::MaxAge);
                    if let Some(chaos) = &self.chaos {
                        chaos.tally().record(FaultKind::MaxAge, None, 0);
                    }
                }
                command = self.commands.recv() => match command {
                    Some(ConnectionCommand::Drain) => {
                        connection.as_mut().graceful_shutdown();
                        reason.get_or_insert(CloseReason::Shutdown);
                    }
                    Some(ConnectionCommand::GoAway { grace }) => {
                        connection.as_mut().graceful_shutdown();
                        go_away(&mut close_at, grace);
                        reason.get_or_insert(CloseReason::Goaway);
                    }
                    Some(ConnectionCommand::Blackhole { hold }) => {
                        blackholed.store(true, Ordering::Relaxed);
                        close_at = Some(tokio::time::Instant::now() + hold);
                        reset_on_close = true;
                        reason.get_or_insert(CloseReason::Blackhole);
                        self.judge.blackhole_began(id.0);
                    }
                    Some(ConnectionCommand::Reset) => {
                        reset_on_close = true;
                        reason.get_or_insert(CloseReason::TcpReset);
                        break;
                    }
                    Some(ConnectionCommand::Close) | None => {
                        reason.get_or_insert(CloseReason::Shutdown);
                        break;
                    }
                },
            }
        }
        if reset_on_close {
            // The socket is still open: the connection future owning it is alive until the end
            // of this function.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(socket) };
            if let Err(error) = socket2::SockRef::from(&fd).set_linger(Some(Duration::ZERO)) {
                debug!(connection = %id, %error, "Could not arm the TCP reset.");
            }
        }
        self.closed(reason.unwrap_or(CloseReason::Client));
    }

    /// The TLS handshake, given up when the server closes the connection meanwhile.
    async fn accept_tls(
        &mut self,
        tls: &ServerTls,
        io: ChaosIo,
    ) -> Result<tokio_rustls::server::TlsStream<ChaosIo>, CloseReason> {
        tokio::select! {
            result = tls.handshake(io) => result.map_err(|error| {
                debug!(connection = %self.context.id, peer = %self.context.peer, %error, "TLS handshake failed.");
                CloseReason::TlsError
            }),
            // No stream exists yet, so whatever the command, the connection just closes.
            _ = self.commands.recv() => Err(CloseReason::Shutdown),
        }
    }

    /// Forgets the connection and counts why it closed.
    fn closed(&self, reason: CloseReason) {
        let id = self.context.id;
        self.context.delivery.detach();
        self.registry.remove(id);
        self.judge.connection_closed(id.0);
        metrics::counter!(names::CONNECTIONS_CLOSED, "reason" => reason.name()).increment(1);
        metrics::gauge!(names::CONNECTIONS_ACTIVE).decrement(1.0);
        debug!(connection = %id, reason = reason.name(), "Connection closed.");
    }
}

/// How often a blackholed connection's TCP state is checked for the peer giving up.
const PEER_CHECK_INTERVAL: Duration = Duration::from_millis(20);
/// `TCP_ESTABLISHED` of Linux's `tcp_states.h`.
const TCP_ESTABLISHED: u8 = 1;

/// Resolves once the peer has closed or reset the TCP connection on `socket`: its state has
/// left ESTABLISHED (a FIN makes it CLOSE_WAIT, a RST makes it CLOSE).
async fn peer_gone(socket: std::os::fd::RawFd) {
    loop {
        tokio::time::sleep(PEER_CHECK_INTERVAL).await;
        if tcp_state(socket).is_none_or(|state| state != TCP_ESTABLISHED) {
            return;
        }
    }
}

/// The kernel's TCP state of `socket` (`TCP_INFO`); `None` when it cannot be read.
fn tcp_state(socket: std::os::fd::RawFd) -> Option<u8> {
    // SAFETY: `info` is a plain C struct the kernel fills up to `length` bytes; the socket stays
    // open while its connection task runs, which is the only caller.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut length = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let result = unsafe {
        libc::getsockopt(
            socket,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut length,
        )
    };
    (result == 0).then_some(info.tcpi_state)
}

/// The connection's socket, which can be blackholed: then every read and write waits forever
/// (no waker is kept, nothing will wake it), so HTTP/2 frames and pings go unanswered. The
/// guard sits inside, so a blackholed connection misses no deadline of its own.
struct ChaosIo {
    inner: TcpStream,
    blackholed: Arc<AtomicBool>,
    /// Counts the bytes written to the socket.
    delivery: Arc<DeliveryProgress>,
}

impl tokio::io::AsyncRead for ChaosIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.blackholed.load(Ordering::Relaxed) {
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ChaosIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.blackholed.load(Ordering::Relaxed) {
            return std::task::Poll::Pending;
        }
        let written = std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_write(cx, buf))?;
        self.delivery.wrote_to_socket(written);
        std::task::Poll::Ready(Ok(written))
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.blackholed.load(Ordering::Relaxed) {
            return std::task::Poll::Pending;
        }
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
