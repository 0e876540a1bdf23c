//! The chaos engine decides: a [`plan::FaultPlan`] compiled from a profile (rules, phases and
//! the base layer of stream limits), the faults drawn for each stream from it ([`decide`]),
//! sampling ([`sample`]), the count of what was injected ([`tally`]) and the phase
//! timeline ([`timeline`]). It carries nothing
//! out: the stream driver ([`crate::driver`]) applies a stream's drawn faults, and the server
//! acts on connections when the driver asks. Nothing here imports the server.

pub mod decide;
pub mod plan;
pub mod sample;
pub mod tally;
pub mod timeline;

pub use decide::{ChaosEngine, StreamFaults, Trigger};
pub use plan::FaultPlan;
pub use sample::stream_rng;
pub use tally::{FaultCount, FaultKind, FaultTally, TallySummary};
pub use timeline::{PhaseInForce, run_timeline};
