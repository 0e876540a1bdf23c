//! Compiled stream scripts: each JSONL entry checked and its templates compiled once, ready to
//! be played against a call.

use std::path::PathBuf;
use std::sync::Arc;

use tonic::Code;

use crate::config::StatusDetails;
use crate::proto::MethodEntry;
use crate::stub::matcher::MessageMatcher;
use crate::template::{JsonTemplate, Template};

/// One script: a timeline of outbound entries and the rules for inbound messages.
#[derive(Debug)]
pub struct Script {
    pub file: PathBuf,
    pub method: Arc<MethodEntry>,
    /// `dir: "out"` entries, in file order.
    pub outbound: Vec<OutEntry>,
    /// `dir: "in"` entries that match something specific, in file order.
    pub inbound: Vec<InEntry>,
    /// `dir: "in"` catch-alls (`text` of `".*"` or absent): tried only when no specific entry
    /// fired.
    pub fallbacks: Vec<InEntry>,
}

/// When an outbound entry is due, in milliseconds after the stream opened.
#[derive(Debug)]
pub enum Due {
    At(u64),
    /// `"ts": "{{randInt 1000 5000}}"`: evaluated when the entry's turn comes.
    Template(Template),
}

/// What an entry does besides sending.
#[derive(Debug, Default)]
pub struct Effects {
    /// `state: NAME` sets `state.NAME = true`.
    pub set_flag: Option<String>,
    /// Extra keys: `state.KEY = value` (templated; numbers stay numbers).
    pub updates: Vec<(String, JsonTemplate)>,
    /// `close: true`: the stream ends after this entry.
    pub close: bool,
    /// `error: true`: the stream ends with this status, the entry's text as its message.
    pub error: Option<Code>,
    /// `details` of an `error: true` entry: sent as `grpc-status-details-bin`.
    pub details: Option<StatusDetails>,
}

/// A `dir: "out"` entry.
#[derive(Debug)]
pub struct OutEntry {
    pub line: usize,
    pub due: Due,
    pub condition: Option<Template>,
    /// Absent only on `close: true` (ends the stream OK without sending) and `error: true`
    /// (an empty status message) entries.
    pub text: Option<JsonTemplate>,
    pub effects: Effects,
}

/// A `dir: "in"` entry.
#[derive(Debug)]
pub struct InEntry {
    pub line: usize,
    pub pattern: TextPattern,
    pub condition: Option<Template>,
    /// Sent `delay` after the message arrived (bidi) or kept as the final answer (client
    /// streaming).
    pub response: Option<JsonTemplate>,
    /// `ts`: milliseconds after the matched message arrived before `response` goes (and the
    /// entry's `close` or `error` ends the stream).
    pub delay: Due,
    /// `responses`: replies to one message, each at its own time after the message arrived,
    /// in order (their times never decrease).
    pub replies: Vec<Reply>,
    pub effects: Effects,
}

/// One element of an inbound entry's `responses`.
#[derive(Debug)]
pub struct Reply {
    /// Milliseconds after the matched message arrived.
    pub after: u64,
    pub action: ReplyAction,
}

/// What a reply does when its time comes.
#[derive(Debug)]
pub enum ReplyAction {
    /// `text`: a message, templated like `response`.
    Send(JsonTemplate),
    /// `error: true`: ends the stream with `code`, `text` as the status message.
    Fail { code: Code, text: Option<JsonTemplate>, details: Option<StatusDetails> },
    /// `close: true`: ends the stream OK.
    Close,
}

/// How an inbound entry's `text` matches a message.
#[derive(Debug)]
pub enum TextPattern {
    /// `".*"` or no `text`.
    Anything,
    /// `""`: only a message with every field at its default.
    Empty,
    /// A JSON object: a subset match where absent fields count as their defaults.
    Subset(Box<MessageMatcher>),
    /// Any other string: a regex searched in the message's JSON.
    Regex(regex::Regex),
}
