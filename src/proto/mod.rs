//! Service definitions at run time: loading `.proto` files and descriptor sets into a pool
//! ([`loader`]), moving dynamic messages through tonic ([`codec`]), the proto3 JSON mapping
//! ([`json`]), the catalog of methods the server answers ([`catalog`]), and plausible data for
//! any message type ([`fake`]).
//!
//! Nothing here knows about stubs, chaos or the network.

pub mod catalog;
pub mod codec;
pub mod fake;
pub mod json;
pub mod loader;
pub mod status;

pub use catalog::{CallKind, MethodCatalog, MethodEntry};
pub use codec::{DynamicCodec, OutboundMessage};
pub use loader::load_pool;
