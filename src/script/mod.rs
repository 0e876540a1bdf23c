//! Stream scripts: MockForge-style JSONL timelines with templates, conditions and per-stream
//! state ([`parse`] into the [`model`], played by the [`runner`]). A script binds to a method
//! by its path, `<stubs-dir>/<package.Service>/<Method>.jsonl`, or from a stub's
//! `output.script`; binding is the stub loader's job.

pub mod model;
pub mod parse;
pub mod runner;

pub use model::Script;
pub use parse::parse_script;
pub use runner::play;
