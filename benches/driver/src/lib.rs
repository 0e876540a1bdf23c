//! The driver: a neutral measuring instrument for streamstorm's benchmarks. A static tonic
//! client with the prost types generated for `protos/myapp` (the baseline server's generated
//! module, shared rather than generated twice), so what it measures is the server, not a
//! dynamic client. Nothing in the measuring path uses streamstorm's code.
//!
//! A load composes independent choices ([`plan::LoadPlan`]): the call (`Subscribe` or
//! `GetUser`), connections × slots per connection, the opening (burst or ramp), the stop (end
//! of the window, or a token) and, optionally, gap measurement. Server-streaming load, unary
//! load and idle streams are three plans run by the same slot loop.
//!
//! # Layout
//!
//! - [`plan`]: the choices a load is made of.
//! - [`codec`]: responses counted without being decoded, for measuring a server's rate.
//! - [`connect`]: tonic channels over loopback, one HTTP/2 connection each; the open-files limit.
//! - [`slot`]: one slot's loop — make the call, count its messages, time their gaps, repeat.
//! - [`run`]: a run — spawn the slots, wait for the stop, sum what they counted.
//! - [`gaps`]: the gap between consecutive messages minus the expected gap, in a signed
//!   HdrHistogram.
//! - [`harness`]: around the measurement — binaries built and found, stubs matching the
//!   baseline's messages, server processes and their `/proc` CPU and memory.
//!
//! The latency-fidelity benchmark (`src/bin/fidelity/`) is built on these.

pub mod codec;
pub mod connect;
pub mod gaps;
pub mod harness;
pub mod plan;
pub mod run;
pub mod slot;

pub use plan::{Call, Decoding, LoadPlan, Opening, Stop, Window};
pub use run::{Outcome, RunningLoad, run, start};

/// The runtime a driver runs on: multi-threaded, I/O and timers enabled, like the servers'.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}
