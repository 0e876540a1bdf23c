//! streamstorm: a load-and-chaos simulator for gRPC streaming.
//!
//! # Layout
//!
//! - [`proto`]: service definitions loaded at run time (protox, descriptor sets), the dynamic
//!   codec, the proto3 JSON mapping, the method catalog and plausible data for any message
//!   type (the default responder's).
//! - [`server`]: the mock server — our own accept loop and connection registry, routing to
//!   reflection, health and the dynamic service, which hands each call to a responder and its
//!   outbound stream to the driver.
//!
//! - [`proxy`]: `streamstorm proxy` — the same accept loop and registry in front of a real
//!   server: a relay service that forwards every call to the upstream frame by frame, through
//!   the same stream driver as the mock's calls, and turns upstream failures into statuses.
//!
//! Layers point one way: `config` compiles into `chaos` types; `chaos` decides and imports no
//! server or driver; `driver` uses `chaos`; `server` uses `driver` and `chaos`; `proxy` uses
//! `server` (its accept loop, registries and response body) and `driver`; `telemetry` reads
//! them all and is read by none of them.
//! - [`record`]: `proxy --record` — taps on the relay's calls, written as stubs and stream
//!   scripts that `serve` replays (the proxy uses it; it knows nothing of the proxy).
//! - [`stub`]: GripMock-format stubs — compiled against the protos, matched, ranked, indexed,
//!   answering calls, reloaded when their files change.
//! - [`script`]: MockForge-style JSONL stream scripts — timelines, inbound rules, per-stream
//!   state — played against a call.
//! - [`template`]: the `{{ … }}` expression language, compiled once and rendered per message.
//! - [`client`]: the built-in load client — scenarios resolved against the protos, stream
//!   slots with ramps and reconnect policy, calls of every kind, sharded HdrHistogram stats,
//!   a shard's share of a run, and connections spread over target lists and DNS names.
//! - [`report`]: the simulator's results — summary tables, JSON report, thresholds, live
//!   progress and the latency-over-time plot, and the exact merge of shard reports.
//! - [`chaos`]: decides — the fault plan (rules, phases, the base layer of stream limits), the
//!   faults drawn for each stream, sampling, and the tally of what was injected.
//! - [`driver`]: applies — one stream driver carries out a stream's drawn faults on any
//!   outbound stream, the mock responder's or the proxy's relay (delays on an absolute
//!   schedule, cuts after delivery, caps, timeouts, upstream cuts), and holds inbound messages
//!   for request latency.
//! - [`judge`]: how each client under test copes — reconnect delays, backoff, hot loops,
//!   `RetryInfo`, recovery, resume positions, dead-peer detection — and verdicts against the
//!   profile's `expect` section.
//! - [`telemetry`]: Prometheus metrics (names, recording, exporter) and the HTTP listener
//!   for `/metrics`, `/streams` and the admin endpoint.
//! - [`config`]: profiles — the server's inputs and limits, the chaos plan, metrics and load —
//!   compiled with every problem located by `file:line:col` and field path.
//! - [`tls`]: PEM certificates, keys and trust roots for the server's TLS and the client's.
//! - [`document`]: YAML/JSON read with the position of every key and value.
//! - [`validate`]: `streamstorm validate`, every input problem at once.
//! - [`diagnostic`]: located problems (`file:line:col`, field path) shared by every loader.
//! - [`watch`]: file watching for hot reload of stubs, scripts and profiles.
//! - [`cli`]: flags turned into typed settings; the only place that prints.

pub mod chaos;
pub mod cli;
pub mod client;
pub mod config;
pub mod diagnostic;
pub mod document;
pub mod driver;
pub mod judge;
pub mod proto;
pub mod proxy;
pub mod record;
pub mod report;
pub mod script;
pub mod server;
pub mod stub;
pub mod telemetry;
pub mod template;
pub mod tls;
pub mod validate;
pub mod watch;
