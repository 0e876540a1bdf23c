//! GripMock-format stubs: loading stub files unchanged ([`loader`], [`compile`]), matching
//! requests ([`matcher`], [`headers`]), ranking and indexing ([`set`]), and answering calls
//! from them ([`responder`]). Templates in outputs belong to the template engine, not here.

pub mod compile;
pub mod fields;
pub mod headers;
pub mod loader;
pub mod matcher;
pub mod model;
pub mod output;
pub mod reload;
pub mod render;
pub mod responder;
pub mod set;

pub use loader::{load_stubs, stub_files};
pub use model::Stub;
pub use responder::StubResponder;
pub use set::StubSet;
