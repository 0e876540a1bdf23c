//! The mock gRPC server: our own accept loop ([`accept`]) with a registry of live connections
//! ([`connection`]), routing ([`router`]) to native reflection and health ([`introspection`])
//! or to the dynamic service ([`dynamic`]), which hands each [`call::Call`] to a responder.
//! Connections are plaintext HTTP/2 or, with [`tls::ServerTls`], HTTP/2 over TLS. While it
//! serves, the server follows the chaos phase timeline and carries out each phase's `on_enter`
//! on its live streams and connections ([`live_cut`], also reached by the admin endpoint
//! through [`ServerHandle::cuts`]).
//!
//! The server owns no knowledge of stubs, and decides no fault: it runs whatever
//! [`call::Responder`] it is given, and carries out what the chaos engine decides.

pub mod accept;
pub mod body;
pub mod call;
pub mod connection;
pub mod default_responder;
pub mod delivery;
pub mod descriptors;
pub mod dynamic;
pub mod guard;
pub mod introspection;
pub mod limits;
pub mod live_cut;
pub mod router;
pub mod streams;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tracing::{info, warn};

pub use call::{Call, Inbound, OutboundStream, Responder};
pub use connection::{ConnectionCommand, ConnectionContext, ConnectionId, ConnectionRegistry};
pub use default_responder::{DefaultResponder, DefaultResponse};
pub use limits::StreamLimits;
pub use live_cut::{CutCount, LiveCuts};
pub use router::FrontService;
pub use streams::{LiveStream, StreamRegistry};
pub use tls::{ServerTls, ServerTlsFiles};

use crate::chaos::plan::FaultPlan;
use crate::chaos::{ChaosEngine, run_timeline};
use crate::judge::{Judge, JudgeSettings};
use crate::proto::MethodCatalog;
use dynamic::DynamicService;
use router::GrpcRouter;

/// How long streams may take to end once every connection has closed.
const STREAMS_SETTLE: Duration = Duration::from_secs(1);

/// HTTP/2 settings applied to every connection.
#[derive(Debug, Clone)]
pub struct Http2Settings {
    /// Streams a client may open at once on one connection; more are refused (REFUSED_STREAM).
    pub max_concurrent_streams: u32,
    /// Flow-control window per stream: bounds what one stream can buffer in the server.
    pub initial_stream_window: u32,
    /// Flow-control window per connection: bounds what one connection can buffer.
    pub initial_connection_window: u32,
    pub max_frame_size: u32,
    /// How often to ping an idle client; `None` never pings.
    pub keepalive_interval: Option<Duration>,
    /// How long a ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// Streams a client may reset before the server has seen them (rapid-reset protection):
    /// one more and the connection gets GOAWAY `ENHANCE_YOUR_CALM`.
    pub max_pending_accept_reset_streams: usize,
    /// Streams the server may reset for a client's protocol errors before it sends GOAWAY
    /// (protection against floods of resets the client provokes, "MadeYouReset").
    pub max_local_error_reset_streams: usize,
    /// Largest request header block (`SETTINGS_MAX_HEADER_LIST_SIZE`); larger requests are
    /// refused with HTTP 431 on their stream only.
    pub max_header_list_size: u32,
    /// Bytes each stream may queue for a peer that does not read (or grant window): what the
    /// server holds per stream for a stalled client, beyond the message being encoded.
    pub max_send_buffer: usize,
    /// How long a client has, from the accept, to send the preface and its first SETTINGS.
    pub handshake_timeout: Duration,
    /// How long a frame, or a header block split over CONTINUATION frames, may take to arrive
    /// once begun (slowloris protection).
    pub frame_timeout: Duration,
}

/// What h2 charges a small DATA frame it holds unread against its connection's budget (a frame
/// of `n < 256` payload bytes costs `256 - n`; h2's `DEFAULT_DATA_FRAME_OVERHEAD_THRESHOLD`).
const SMALL_DATA_FRAME_COST: u32 = 256;

/// The largest flow-control window HTTP/2 allows (2³¹ − 1).
const MAX_WINDOW: u32 = (1 << 31) - 1;

impl Http2Settings {
    /// The connection window the server advertises: at least [`Self::initial_connection_window`],
    /// and large enough for one small unread DATA frame on every stream a connection may open.
    ///
    /// h2 sends GOAWAY `ENHANCE_YOUR_CALM` ("too_many_data_frames") once the small frames it holds
    /// unread cost more than half the connection window, which hyper does not let us set apart.
    /// An opening burst is exactly that: thousands of streams arrive, each with a small request
    /// message, before their handlers have run to read them. Sized this way, a burst of up to
    /// `max_concurrent_streams` streams fits, and a flood of small frames is still stopped once it
    /// holds more unread frames than the connection may have streams.
    pub fn connection_window(&self) -> u32 {
        let burst = self.max_concurrent_streams.saturating_mul(2 * SMALL_DATA_FRAME_COST);
        self.initial_connection_window.max(burst).min(MAX_WINDOW)
    }

    /// The deadlines the connection guard enforces.
    pub fn progress_timeouts(&self) -> guard::ProgressTimeouts {
        guard::ProgressTimeouts { handshake: self.handshake_timeout, frame: self.frame_timeout }
    }
}

impl Default for Http2Settings {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100_000,
            initial_stream_window: 256 * 1024,
            initial_connection_window: 2 * 1024 * 1024,
            max_frame_size: 16 * 1024,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(20),
            max_pending_accept_reset_streams: 100,
            max_local_error_reset_streams: 1024,
            max_header_list_size: 16 * 1024,
            max_send_buffer: 64 * 1024,
            handshake_timeout: Duration::from_secs(10),
            frame_timeout: Duration::from_secs(10),
        }
    }
}

/// The tokio runtime `serve` and `simulate` run on: multi-threaded, one worker per core, I/O
/// and timers enabled. Shared with the benchmarks' baseline server so both run alike.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

/// Everything `serve` can be told.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub http2: Http2Settings,
    /// Largest message accepted or sent; larger ones end the call with `RESOURCE_EXHAUSTED`.
    pub max_message_bytes: usize,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// How long in-flight streams may run after shutdown begins.
    pub shutdown_grace: Duration,
    pub default_response: DefaultResponse,
    /// Limits every stream obeys (stream timeout, message cap, latency).
    pub limits: StreamLimits,
    /// Seeds every per-stream random draw.
    pub seed: u64,
    /// The chaos engine, when a profile asks for faults.
    pub chaos: Option<Arc<ChaosEngine>>,
    /// Live streams that get Prometheus series of their own (`metrics.per_stream.max_streams`).
    pub per_stream_series: usize,
    /// Serve TLS (and with a client CA, mTLS) instead of plaintext.
    pub tls: Option<ServerTls>,
    /// How the clients under test are told apart, measured and judged.
    pub judging: JudgeSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            http2: Http2Settings::default(),
            max_message_bytes: 4 * 1024 * 1024,
            max_connections: 65_536,
            shutdown_grace: Duration::from_secs(5),
            default_response: DefaultResponse::default(),
            limits: StreamLimits::default(),
            seed: 0,
            chaos: None,
            per_stream_series: 0,
            tls: None,
            judging: JudgeSettings::default(),
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("the protos define no services to serve")]
    NoServices,
    #[error("cannot add the health and reflection descriptors: {0}")]
    BuiltinDescriptors(#[from] prost_reflect::DescriptorError),
    #[error("cannot build server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The OS error is part of the message and not a `source`, so a printed error chain
    /// names it once.
    #[error("cannot listen on {addr}: {reason} (choose another address with --listen)")]
    Bind { addr: SocketAddr, reason: std::io::Error },
}

/// Shared views of a running server, for tests, admin endpoints and the embedded simulator.
#[derive(Clone)]
pub struct ServerHandle {
    pub connections: Arc<ConnectionRegistry>,
    pub streams: Arc<StreamRegistry>,
    /// The methods known from protos (none for a proxy given no protos).
    pub catalog: Arc<MethodCatalog>,
    /// The server's own health service; `None` when health checks are relayed (the proxy).
    pub health: Option<HealthReporter>,
    /// How each client under test copes (`/clients`, `serve --report`).
    pub judge: Arc<Judge>,
    /// Cuts live streams and connections on cue (phases' `on_enter`, `/admin/disconnect`).
    pub cuts: Arc<LiveCuts>,
    /// The engine deciding every stream's faults: the profile's, or one with only the
    /// stream limits.
    pub chaos: Arc<ChaosEngine>,
}

impl ServerHandle {
    pub fn streams_active(&self) -> usize {
        self.streams.active()
    }
}

/// A server bound to its address, ready to serve.
pub struct BoundServer {
    acceptor: accept::Acceptor,
    local_addr: SocketAddr,
    handle: ServerHandle,
}

impl BoundServer {
    /// Compiles the catalog, reflection and health for `pool`, and binds the listener.
    pub async fn bind(mut pool: DescriptorPool, settings: ServerSettings) -> Result<Self, ServerError> {
        let responder = Arc::new(DefaultResponder::seeded(settings.default_response.clone(), settings.seed));
        Self::bind_with(&mut pool, settings, responder).await
    }

    /// As [`BoundServer::bind`], answering calls with `responder`.
    pub async fn bind_with(
        pool: &mut DescriptorPool,
        settings: ServerSettings,
        responder: Arc<dyn Responder>,
    ) -> Result<Self, ServerError> {
        let catalog = Arc::new(MethodCatalog::new(pool, introspection::BUILTIN_SERVICE_PREFIXES));
        if catalog.is_empty() {
            return Err(ServerError::NoServices);
        }
        introspection::add_builtin_descriptors(pool)?;
        let (reflection_v1, reflection_v1alpha) = introspection::reflection_services(pool)?;
        let (health, health_service) = introspection::health_service(catalog.services()).await;
        let dynamic_settings = settings.clone();
        Self::bind_front(settings, catalog.clone(), Some(health), move |handle| {
            let dynamic = DynamicService::new(catalog, responder, &dynamic_settings, handle);
            let router = GrpcRouter::new(dynamic)
                .with_native("grpc.health.v1.Health", health_service)
                .with_native("grpc.reflection.v1.ServerReflection", reflection_v1)
                .with_native("grpc.reflection.v1alpha.ServerReflection", reflection_v1alpha);
            FrontService::new(router)
        })
        .await
    }

    /// Binds a server whose calls go to the service `front` builds from the server's shared
    /// parts (the live streams, connections, chaos engine and judge): the mock's router, or
    /// the proxy's relay. `catalog` names the methods known from protos; `health`, when the
    /// server answers health checks itself, is set to `NOT_SERVING` as it drains.
    pub async fn bind_front(
        settings: ServerSettings,
        catalog: Arc<MethodCatalog>,
        health: Option<HealthReporter>,
        front: impl FnOnce(&ServerHandle) -> FrontService,
    ) -> Result<Self, ServerError> {
        crate::telemetry::register_counter_at_zero(
            crate::telemetry::names::CONNECTIONS_CLOSED,
            "reason",
            accept::CLOSE_REASONS,
        );
        let streams = Arc::new(StreamRegistry::new(&catalog, settings.per_stream_series));
        let connections = Arc::new(ConnectionRegistry::default());
        let judge = Arc::new(Judge::new(settings.judging.clone(), &catalog));
        let chaos = settings.chaos.clone().unwrap_or_else(|| {
            Arc::new(ChaosEngine::new(FaultPlan { seed: settings.seed, ..FaultPlan::default() }))
        });
        chaos.set_base(settings.limits.base_layer());
        let cuts = Arc::new(LiveCuts::new(streams.clone(), connections.clone(), chaos.clone()));
        let handle = ServerHandle { connections, streams, catalog, health, judge, cuts, chaos };
        let router = front(&handle);

        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|reason| ServerError::Bind { addr: settings.listen, reason })?;
        let local_addr =
            listener.local_addr().map_err(|reason| ServerError::Bind { addr: settings.listen, reason })?;
        let acceptor = accept::Acceptor {
            listener,
            registry: handle.connections.clone(),
            router,
            http2: settings.http2.clone(),
            connection_permits: Arc::new(Semaphore::new(settings.max_connections)),
            shutdown_grace: settings.shutdown_grace,
            chaos: settings.chaos.clone(),
            tls: settings.tls.clone(),
            judge: handle.judge.clone(),
        };
        Ok(Self { acceptor, local_addr, handle })
    }

    /// The address actually bound (the port is chosen by the OS when `listen` said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// The TLS configuration, when the server speaks TLS.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.acceptor.tls.as_ref()
    }

    /// Serves until `shutdown` fires, then drains (GOAWAY), waits the grace period, and closes.
    /// Meanwhile the phase timeline runs: each phase's `on_enter` cuts live traffic as it
    /// begins.
    pub async fn serve(self, shutdown: CancellationToken) {
        let tls = self.tls().map(|tls| if tls.is_mutual() { "mtls" } else { "tls" });
        info!(addr = %self.local_addr, services = self.handle.catalog.services().len(), tls, "Serving.");
        let health = self.handle.health.clone();
        let services = self.handle.catalog.services().to_vec();
        let draining = shutdown.clone();
        let mark_not_serving = async move {
            let Some(health) = health else { return };
            draining.cancelled().await;
            for service in services.iter().map(String::as_str).chain([""]) {
                health.set_service_status(service, ServingStatus::NotServing).await;
            }
        };
        let (chaos, cuts) = (self.handle.chaos.clone(), self.handle.cuts.clone());
        let on_enter = |cut: &crate::chaos::plan::LiveCut| {
            let count = cuts.cut(cut);
            let action = cut.action.describe();
            info!(%action, streams = count.streams, connections = count.connections, "Phase cut live traffic.");
        };
        let timeline = run_timeline(&chaos, on_enter, shutdown.clone());
        let judge_phases = tell_judge_phases(&chaos, self.handle.judge.clone(), shutdown.clone());
        tokio::join!(self.acceptor.run(shutdown), mark_not_serving, timeline, judge_phases);
        self.handle.cuts.close().await;
        // Streams run in tasks of their own, which notice a closed connection a moment after
        // its task ends; wait for them so every stream's end is counted before returning.
        if tokio::time::timeout(STREAMS_SETTLE, self.handle.streams.until_idle()).await.is_err() {
            warn!(
                streams = self.handle.streams_active(),
                "Streams still open after their connections closed."
            );
        }
        info!("Server stopped.");
    }
}

/// Tells the judge of the phase in force and of every change, until `shutdown`.
async fn tell_judge_phases(chaos: &ChaosEngine, judge: Arc<Judge>, shutdown: CancellationToken) {
    let mut phases = chaos.phase_changes();
    loop {
        {
            let phase = phases.borrow_and_update();
            judge.phase_changed(phase.name.as_deref(), phase.outage, phase.since);
        }
        tokio::select! {
            changed = phases.changed() => if changed.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_window_holds_a_small_frame_for_every_allowed_stream() {
        let allowing =
            |streams| Http2Settings { max_concurrent_streams: streams, ..Http2Settings::default() };
        assert_eq!(allowing(100).connection_window(), 2 * 1024 * 1024, "the floor");
        // h2 allows unread small frames up to half the window, each costing up to 256 bytes.
        assert_eq!(allowing(100_000).connection_window() / 2 / SMALL_DATA_FRAME_COST, 100_000);
        assert_eq!(allowing(u32::MAX).connection_window(), MAX_WINDOW, "HTTP/2's largest window");
    }
}
