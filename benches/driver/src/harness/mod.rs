//! What a benchmark needs around the measurement: the workspace's server binaries built and
//! found ([`workspace`]), stubs that make streamstorm send exactly the baseline's messages
//! ([`stubs`]), and server processes with their CPU time and memory read from `/proc`
//! ([`process`]). Shared by the end-to-end benchmark and the latency-fidelity benchmark.

pub mod process;
pub mod stubs;
pub mod workspace;
