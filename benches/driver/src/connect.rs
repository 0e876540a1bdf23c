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

/// Raises the soft limit on open files to the hard limit, so sockets never run out; returns the
/// soft limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit whose soft value does not exceed its hard value.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}
