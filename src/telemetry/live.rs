//! Live streams shown two ways: as JSON for `GET /streams` (counters, age, connection, the
//! faults drawn), and as per-stream Prometheus series for the few streams the profile asks
//! about (`metrics.per_stream.max_streams`), rendered at scrape time from the live list so a
//! stream's series vanish when it ends.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};

use super::names;
use crate::server::{LiveStream, ServerHandle, StreamRegistry};

/// Streams listed when the request does not say `?limit=N`.
const DEFAULT_LIMIT: usize = 1000;

/// `GET /streams[?limit=N]`: the oldest `limit` live streams and the server's totals.
pub fn list(server: &ServerHandle, query: Option<&str>) -> Value {
    let limit = query
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("limit=").and_then(|n| n.parse().ok()))
        .unwrap_or(DEFAULT_LIMIT);
    let streams = server.streams.list(false);
    let listed: Vec<Value> = streams.iter().take(limit).map(|stream| describe(stream)).collect();
    json!({
        "active": streams.len(),
        "started": server.streams.started(),
        "connections": server.connections.len(),
        "listed": listed.len(),
        "streams": listed,
    })
}

fn describe(stream: &LiveStream) -> Value {
    json!({
        "id": stream.id,
        "service": stream.method.service,
        "method": stream.method.method,
        "kind": stream.method.kind_label(),
        "connection": stream.connection.to_string(),
        "age_seconds": stream.opened.elapsed().as_secs_f64(),
        "messages_sent": stream.messages_sent.load(Ordering::Relaxed),
        "messages_received": stream.messages_received.load(Ordering::Relaxed),
        "bytes_sent": stream.bytes_sent.load(Ordering::Relaxed),
        "bytes_received": stream.bytes_received.load(Ordering::Relaxed),
        "faults": stream.faults().describe(),
    })
}

/// A per-stream gauge: its name, help text, and how to read it from a stream.
type StreamGauge = (&'static str, &'static str, fn(&LiveStream) -> f64);

/// Appends the per-stream series (gauges labelled by stream id) to a `/metrics` page.
pub fn render_series(streams: &StreamRegistry, out: &mut String) {
    let detailed = streams.list(true);
    if detailed.is_empty() {
        return;
    }
    let families: [StreamGauge; 3] = [
        (names::STREAM_MESSAGES_SENT_BY_STREAM, "Messages sent on this stream so far.", |stream| {
            stream.messages_sent.load(Ordering::Relaxed) as f64
        }),
        (names::STREAM_MESSAGES_RECEIVED_BY_STREAM, "Messages received on this stream so far.", |stream| {
            stream.messages_received.load(Ordering::Relaxed) as f64
        }),
        (names::STREAM_AGE_BY_STREAM, "Seconds since this stream opened.", |stream| {
            stream.opened.elapsed().as_secs_f64()
        }),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for stream in &detailed {
            let _ = writeln!(
                out,
                "{name}{{stream_id=\"{}\",service=\"{}\",method=\"{}\"}} {}",
                stream.id,
                stream.method.service,
                stream.method.method,
                value(stream)
            );
        }
    }
}
