//! `streamstorm proxy`: the chaos engine in front of a real gRPC server. The proxy accepts
//! calls on the server's own accept loop and connection registry, so connection faults,
//! phases, live cuts, `/streams`, metrics and the judge work as under `serve`; but where the
//! mock answers a call, the relay ([`relay`]) forwards it to the upstream ([`upstream`]) and
//! relays the messages both ways without decoding them ([`frames`]), through the same stream
//! driver that carries out the mock's faults.
//!
//! Memory per relayed stream is bounded by flow control, not by the traffic: the upstream
//! connection's stream window ([`UpstreamSettings::stream_window`]) caps what the upstream can
//! have in flight to the proxy, the server's send buffer caps what waits for the client, and
//! the relay holds at most one message being gathered each way.

pub mod body;
pub mod errors;
pub mod frames;
pub mod methods;
pub mod relay;
pub mod sniff;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use crate::client::tls::ClientTls;
pub use crate::config::UpstreamTarget;
use crate::proto::MethodCatalog;
use crate::record::Recorder;
use crate::server::{BoundServer, FrontService, ServerError, ServerSettings};
use relay::RelayService;
use upstream::UpstreamPool;

/// How the proxy reaches its upstream.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub target: UpstreamTarget,
    /// TLS to the upstream; plaintext HTTP/2 without.
    pub tls: Option<ClientTls>,
    /// Shared HTTP/2 connections calls are spread over (a call drawn for an `upstream` fault
    /// gets one of its own).
    pub connections: usize,
    pub connect_timeout: Duration,
    /// Flow-control window per upstream stream: what the upstream may send ahead of the
    /// client's reading, and so what one relayed stream can hold.
    pub stream_window: u32,
    /// Flow-control window per upstream connection.
    pub connection_window: u32,
    /// How often an idle upstream connection is pinged; `None` never.
    pub keepalive_interval: Option<Duration>,
    pub keepalive_timeout: Duration,
}

impl UpstreamSettings {
    /// Plaintext to `target`, with the defaults.
    pub fn new(target: UpstreamTarget) -> Self {
        Self {
            target,
            tls: None,
            connections: 4,
            connect_timeout: Duration::from_secs(5),
            stream_window: 256 * 1024,
            connection_window: 16 * 1024 * 1024,
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_timeout: Duration::from_secs(20),
        }
    }
}

/// Binds a proxy to `settings.listen` that relays every call to the upstream. `catalog`
/// holds the methods whose messages the proxy can decode (empty without protos); `recorder`,
/// when given, records the calls it relays.
pub async fn bind(
    settings: ServerSettings,
    upstream: UpstreamSettings,
    catalog: Arc<MethodCatalog>,
    recorder: Option<Arc<Recorder>>,
) -> Result<BoundServer, ServerError> {
    errors::register_metrics();
    let pool = UpstreamPool::new(&upstream);
    let max_message_bytes = settings.max_message_bytes;
    BoundServer::bind_front(settings, catalog, None, move |server| {
        FrontService::new(RelayService::new(pool, max_message_bytes, server, recorder.clone()))
    })
    .await
}
