//! The chaos engine: a [`plan::FaultPlan`] compiled from a profile, the faults drawn for each
//! stream from it ([`decide`]), and their injection into the stream as it runs ([`inject`]).
//! Connection-level faults (GOAWAY, TCP reset, blackhole) are carried out by the server's
//! connection registry; this module only asks for them.

pub mod decide;
pub mod inject;
pub mod plan;
pub mod sample;
pub mod tally;

pub use decide::{ChaosEngine, StreamFaults};
pub use plan::FaultPlan;
pub use tally::{FaultCount, FaultKind, FaultTally, TallySummary};
