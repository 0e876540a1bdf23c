//! Connections to the server under test: plain tonic channels over loopback, one HTTP/2
//! connection each, with settings chosen so the client is never what holds a stream back.
//! Also raises the open-files limit, which a run with many connections may need.

use std::net::SocketAddr;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// Flow-control window per stream: far above one message, so no stream waits for a grant.
const STREAM_WINDOW: u32 = 1024 * 1024;
/// Flow-control window per connection: thousands of streams share it.
const CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
/// Requests a channel queues for its connection before callers wait: above any slot count.
const REQUEST_BUFFER: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {target}: {source}")]
    Connect { target: SocketAddr, source: tonic::transport::Error },
}

/// Opens `count` HTTP/2 connections to `target`.
pub async fn connect(target: SocketAddr, count: usize) -> Result<Vec<Channel>, ConnectError> {
    let endpoint = Endpoint::from_shared(format!("http://{target}"))
        .expect("a socket address is a valid URI")
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .buffer_size(REQUEST_BUFFER)
        .connect_timeout(Duration::from_secs(10));
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        // `connect` opens a connection of its own each time; clones of a channel would share one.
        let channel = endpoint.connect().await.map_err(|source| ConnectError::Connect { target, source })?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Raises the soft limit on open files as far as the hard limit allows, so sockets never run
/// out; returns the soft limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    Ok(streamstorm::server::descriptors::raise_open_files_limit()?.now)
}
