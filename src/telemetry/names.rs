//! Metric names: the contract dashboards and users depend on. Prometheus conventions: the
//! `streamstorm_` prefix, base units (`_seconds`, `_bytes`), `_total` on counters. Extend the
//! list; never rename an entry.

// Streams (labels: service, method, kind; `code` on ended).
pub const STREAMS_ACTIVE: &str = "streamstorm_streams_active";
pub const STREAMS_STARTED: &str = "streamstorm_streams_started_total";
pub const STREAMS_ENDED: &str = "streamstorm_streams_ended_total";
pub const STREAM_DURATION: &str = "streamstorm_stream_duration_seconds";
/// Messages per stream (label: direction).
pub const STREAM_MESSAGES: &str = "streamstorm_stream_messages";
/// Payload bytes per stream (label: direction).
pub const STREAM_BYTES: &str = "streamstorm_stream_bytes";

// Messages (labels: service, method).
pub const MESSAGES_SENT: &str = "streamstorm_messages_sent_total";
pub const MESSAGES_RECEIVED: &str = "streamstorm_messages_received_total";
/// Encoded message size (labels: service, method, direction).
pub const MESSAGE_SIZE: &str = "streamstorm_message_size_bytes";

// Faults (labels: kind, code).
pub const FAULTS_INJECTED: &str = "streamstorm_faults_injected_total";
pub const INJECTED_LATENCY: &str = "streamstorm_injected_latency_seconds";
/// How late a delayed or paced message went out against its intended time (fidelity).
pub const SCHEDULE_ERROR: &str = "streamstorm_schedule_error_seconds";

// Connections.
pub const CONNECTIONS_ACTIVE: &str = "streamstorm_connections_active";
pub const CONNECTIONS_ACCEPTED: &str = "streamstorm_connections_accepted_total";
/// Label: reason.
pub const CONNECTIONS_CLOSED: &str = "streamstorm_connections_closed_total";
/// The proxy's failures to reach or keep its upstream, by `reason`.
pub const PROXY_UPSTREAM_ERRORS: &str = "streamstorm_proxy_upstream_errors_total";
/// The proxy's open connections to its upstream.
pub const PROXY_UPSTREAM_CONNECTIONS: &str = "streamstorm_proxy_upstream_connections";

// The clients under test, as the server sees them (the `streamstorm_peer_` prefix).
/// Time from a call's end to the client's next attempt on that method (label: ending).
pub const PEER_RECONNECT_DELAY: &str = "streamstorm_peer_reconnect_delay_seconds";
/// Time from a failed attempt's end to the next attempt, within a failure streak.
pub const PEER_RETRY_GAP: &str = "streamstorm_peer_retry_gap_seconds";
/// Time from an outage's end to a client's first delivered message.
pub const PEER_RECOVERY: &str = "streamstorm_peer_recovery_seconds";
/// Time from a blackhole's start to the client abandoning the connection.
pub const PEER_DEAD_PEER_DETECTION: &str = "streamstorm_peer_dead_peer_detection_seconds";
pub const PEER_ATTEMPTS: &str = "streamstorm_peer_attempts_total";
pub const PEER_CONNECTIONS: &str = "streamstorm_peer_connections_total";
/// Label: class (`resumed`, `restarted`, `skipped`, `duplicated`).
pub const PEER_RESUMES: &str = "streamstorm_peer_resumes_total";
pub const PEER_HOT_LOOPS: &str = "streamstorm_peer_hot_loops_total";
/// Label: honoured (`true`, `false`).
pub const PEER_RETRY_INFO: &str = "streamstorm_peer_retry_info_total";
pub const PEER_CLIENTS_TRACKED: &str = "streamstorm_peer_clients_tracked";
pub const PEER_CLIENTS_DROPPED: &str = "streamstorm_peer_clients_dropped_total";
/// Attempts of each of the first `metrics.per_client.max_clients` clients (label: client).
pub const PEER_CLIENT_ATTEMPTS: &str = "streamstorm_peer_client_attempts_total";

// Chaos state and reloads.
/// 1 for the phase in force, 0 for the others (label: phase, bounded by the profile).
pub const CHAOS_PHASE: &str = "streamstorm_chaos_phase";
/// Phase changes, by the phase entered.
pub const PHASE_CHANGES: &str = "streamstorm_phase_changes_total";
pub const CHAOS_ENABLED: &str = "streamstorm_chaos_enabled";
/// Label: result (`ok`, `error`).
pub const PROFILE_RELOADS: &str = "streamstorm_profile_reloads_total";
/// Label: result (`ok`, `error`).
pub const STUB_RELOADS: &str = "streamstorm_stub_reloads_total";
/// The `result` label values of the reload counters.
pub const RELOAD_RESULTS: &[&str] = &["ok", "error"];
/// The `phase` label of [`CHAOS_PHASE`] when no phase of a timeline is in force (the profile
/// has none, or no chaos runs): 1 then, so the panel says so rather than "No data".
pub const NO_PHASE: &str = "none";

// The process itself, refreshed at each scrape, for spotting leaks from outside.
/// Tasks alive on the async runtime (connections, streams, timers, listeners).
pub const RUNTIME_TASKS_ALIVE: &str = "streamstorm_runtime_tasks_alive";
/// Open file descriptors (sockets, listeners, watched files).
pub const PROCESS_OPEN_FDS: &str = "streamstorm_process_open_fds";
pub const PROCESS_RESIDENT_MEMORY: &str = "streamstorm_process_resident_memory_bytes";

// Per-stream detail, only for the first `metrics.per_stream.max_streams` streams (label:
// stream_id), rendered from the live streams and gone when the stream ends.
pub const STREAM_MESSAGES_SENT_BY_STREAM: &str = "streamstorm_stream_messages_sent";
pub const STREAM_MESSAGES_RECEIVED_BY_STREAM: &str = "streamstorm_stream_messages_received";
pub const STREAM_AGE_BY_STREAM: &str = "streamstorm_stream_age_seconds";

/// What kind of metric a name is.
#[derive(Clone, Copy)]
pub enum Family {
    Counter,
    Gauge,
    Histogram,
}

/// Help text for every name above that the recorder exports (the per-stream gauges carry their
/// own); Prometheus tooling (`promtool check metrics`) expects each family to have one.
const HELP: &[(&str, Family, &str)] = &[
    (STREAMS_ACTIVE, Family::Gauge, "Streams open now."),
    (STREAMS_STARTED, Family::Counter, "Streams (calls of any kind) started."),
    (STREAMS_ENDED, Family::Counter, "Streams ended, by the gRPC status code they ended with."),
    (STREAM_DURATION, Family::Histogram, "How long streams lasted, from open to end."),
    (STREAM_MESSAGES, Family::Histogram, "Messages carried per stream, by direction."),
    (STREAM_BYTES, Family::Histogram, "Payload bytes carried per stream, by direction."),
    (
        FAULTS_INJECTED,
        Family::Counter,
        "Faults injected by the chaos engine, by kind and the status code they ended with.",
    ),
    (INJECTED_LATENCY, Family::Histogram, "Delay injected before a message."),
    (
        SCHEDULE_ERROR,
        Family::Histogram,
        "How late each delayed or paced message went out against its intended send time.",
    ),
    (CONNECTIONS_ACTIVE, Family::Gauge, "Client connections open now."),
    (CONNECTIONS_ACCEPTED, Family::Counter, "Client connections accepted."),
    (CONNECTIONS_CLOSED, Family::Counter, "Client connections closed, by why they closed."),
    (
        PROXY_UPSTREAM_ERRORS,
        Family::Counter,
        "Calls the proxy's upstream failed: unreachable, refused, TLS, not HTTP/2, or a connection or stream lost mid-call.",
    ),
    (PROXY_UPSTREAM_CONNECTIONS, Family::Gauge, "The proxy's connections to its upstream open now."),
    (
        PEER_RECONNECT_DELAY,
        Family::Histogram,
        "Time from a call's end to the client's next attempt on that method, by how the call ended.",
    ),
    (
        PEER_RETRY_GAP,
        Family::Histogram,
        "Time from a failed attempt's end to the client's next attempt, within a failure streak.",
    ),
    (PEER_RECOVERY, Family::Histogram, "Time from an outage's end to a client's first delivered message."),
    (
        PEER_DEAD_PEER_DETECTION,
        Family::Histogram,
        "Time from a blackhole's start to the client abandoning the connection.",
    ),
    (PEER_ATTEMPTS, Family::Counter, "Call attempts by the clients under test."),
    (PEER_CONNECTIONS, Family::Counter, "Connections opened by the clients under test."),
    (PEER_RESUMES, Family::Counter, "Calls after a cut, by how they resumed the stream."),
    (PEER_HOT_LOOPS, Family::Counter, "Times a client's attempt rate rose above the hot-loop limit."),
    (
        PEER_RETRY_INFO,
        Family::Counter,
        "Attempts after a status carrying RetryInfo, by whether they waited the delay.",
    ),
    (PEER_CLIENTS_TRACKED, Family::Gauge, "Clients under test tracked now."),
    (PEER_CLIENTS_DROPPED, Family::Counter, "Clients forgotten to stay within clients.max_tracked."),
    (
        PEER_CLIENT_ATTEMPTS,
        Family::Counter,
        "Call attempts of each of the first clients (metrics.per_client).",
    ),
    (CHAOS_PHASE, Family::Gauge, "1 for the chaos phase in force, 0 for the other phases of the profile."),
    (PHASE_CHANGES, Family::Counter, "Phase changes (by the clock or pinned by hand), by the phase entered."),
    (CHAOS_ENABLED, Family::Gauge, "1 while chaos is enabled, 0 while the admin endpoint has disabled it."),
    (PROFILE_RELOADS, Family::Counter, "Profile hot reloads, by result."),
    (STUB_RELOADS, Family::Counter, "Stub and script hot reloads, by result."),
    (RUNTIME_TASKS_ALIVE, Family::Gauge, "Tasks alive on the async runtime, read at scrape time."),
    (PROCESS_OPEN_FDS, Family::Gauge, "Open file descriptors of the process, read at scrape time."),
    (PROCESS_RESIDENT_MEMORY, Family::Gauge, "Resident memory of the process in bytes, read at scrape time."),
];

/// Gives every exported family its help text; called once the recorder is installed.
pub fn describe() {
    describe_families(HELP);
}

/// Gives each `(name, family, help)` its help text (the load client's families use this too).
pub fn describe_families(families: &[(&'static str, Family, &'static str)]) {
    for &(name, family, help) in families {
        match family {
            Family::Counter => metrics::describe_counter!(name, help),
            Family::Gauge => metrics::describe_gauge!(name, help),
            Family::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}
