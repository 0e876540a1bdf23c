//! The telemetry listener (`--metrics-listen`, loopback by default): `GET /metrics` for
//! Prometheus, `GET /streams` listing live streams, `GET /clients` with how each client under
//! test copes (and its verdicts so far), and the chaos admin endpoint under
//! `/admin/` ([`super::admin`]). Plain HTTP/1.1, one small task per connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::debug;

use super::{admin, live, process};
use crate::chaos::ChaosEngine;
use crate::server::ServerHandle;

/// Why the telemetry listener could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot serve metrics on {addr}: {reason} (set --metrics-listen or metrics.listen to a free address, \
     e.g. 127.0.0.1:0 for any free port)"
)]
pub struct BindError {
    pub addr: SocketAddr,
    /// Part of the message rather than a `source`, so a printed error chain names it once.
    pub reason: std::io::Error,
}

/// What the endpoint shows and may change.
#[derive(Clone)]
pub struct TelemetryState {
    pub prometheus: PrometheusHandle,
    /// The server's live streams and connections, when this process serves.
    pub server: Option<ServerHandle>,
    pub chaos: Option<Arc<ChaosEngine>>,
    /// Whether `/admin/` may change the chaos state (read-only otherwise).
    pub admin_writable: bool,
}

/// The bound listener.
pub struct TelemetryEndpoint {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<TelemetryState>,
}

impl TelemetryEndpoint {
    pub async fn bind(addr: SocketAddr, state: TelemetryState) -> Result<Self, BindError> {
        let listener = TcpListener::bind(addr).await.map_err(|reason| BindError { addr, reason })?;
        let local_addr = listener.local_addr().map_err(|reason| BindError { addr, reason })?;
        Ok(Self { listener, local_addr, state: Arc::new(state) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Answers requests until `shutdown`.
    pub async fn serve(self, shutdown: CancellationToken) {
        let connections = TaskTracker::new();
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        debug!(%error, "Telemetry accept failed.");
                        continue;
                    }
                },
            };
            let state = self.state.clone();
            let shutdown = shutdown.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(route(&state, request).await) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    result = connection => if let Err(error) = result {
                        debug!(%error, "Telemetry connection ended with an error.");
                    },
                    _ = shutdown.cancelled() => {}
                }
            });
        }
        connections.close();
        connections.wait().await;
    }
}

/// A response with a body.
pub(super) fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("static headers are valid")
}

/// A JSON response.
pub(super) fn respond_json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    respond(status, "application/json", value.to_string())
}

async fn route(state: &TelemetryState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::GET, "/metrics") => {
            // Only a serving process has chaos state to show (not a load client alone).
            if state.server.is_some() {
                admin::record_chaos_state(state.chaos.as_deref());
            }
            process::record_process_state();
            let mut text = super::render_page(&state.prometheus);
            if let Some(server) = &state.server {
                live::render_series(&server.streams, &mut text);
            }
            respond(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", text)
        }
        (&Method::GET, "/streams") => match &state.server {
            Some(server) => respond_json(StatusCode::OK, &live::list(server, request.uri().query())),
            None => respond(StatusCode::NOT_FOUND, "text/plain", "no server runs in this process\n"),
        },
        (&Method::GET, "/clients") => match &state.server {
            Some(server) => match serde_json::to_value(server.judge.report(false, true)) {
                Ok(report) => respond_json(StatusCode::OK, &report),
                Err(error) => respond(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("{error}\n")),
            },
            None => respond(StatusCode::NOT_FOUND, "text/plain", "no server runs in this process\n"),
        },
        (_, path) if path.starts_with("/admin/") => admin::handle(state, request).await,
        (&Method::GET, "/") => respond(
            StatusCode::OK,
            "text/plain",
            "streamstorm telemetry: GET /metrics, GET /streams, GET /clients, GET /admin/chaos\n",
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            format!("no route for {} {path}\n", request.method()),
        ),
    }
}
