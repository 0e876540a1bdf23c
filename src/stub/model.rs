//! Compiled stubs: what a stub file says, checked against the protos and turned into typed
//! matchers and pre-encoded responses, ready to answer calls without further parsing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use prost_reflect::DynamicMessage;
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use super::headers::HeaderMatcher;
use super::matcher::{MessageMatcher, Score};
use crate::proto::{MethodEntry, OutboundMessage};
use crate::script::Script;
use crate::template::{JsonTemplate, Template};

/// One stub, compiled.
#[derive(Debug)]
pub struct Stub {
    /// The stub's `id`, or `file:line` when it has none.
    pub id: String,
    /// Where the stub was written.
    pub file: PathBuf,
    pub line: usize,
    pub method: Arc<MethodEntry>,
    pub priority: i64,
    pub headers: Option<HeaderMatcher>,
    pub input: InputPattern,
    /// How many calls the stub may answer; 0 is unlimited.
    pub times: u32,
    /// Calls answered so far (counts against `times`).
    pub used: AtomicU32,
    pub output: StubOutput,
    /// Position among all loaded stubs: the final, stable tie-break.
    pub order: usize,
}

/// The request side of a stub.
#[derive(Debug)]
pub enum InputPattern {
    /// v1 `input`: one matcher for every inbound message.
    Single(MessageMatcher),
    /// v2 `inputs`: the i-th matcher for the i-th inbound message; a single matcher applies to
    /// every message.
    PerMessage(Vec<MessageMatcher>),
}

impl InputPattern {
    /// The matcher for the inbound message at `index`, if the pattern has one.
    pub fn at(&self, index: usize) -> Option<&MessageMatcher> {
        match self {
            Self::Single(matcher) => Some(matcher),
            Self::PerMessage(matchers) if matchers.len() == 1 => matchers.first(),
            Self::PerMessage(matchers) => matchers.get(index),
        }
    }

    /// How many messages the pattern describes, when it describes a fixed sequence.
    pub fn sequence_len(&self) -> Option<usize> {
        match self {
            Self::PerMessage(matchers) if matchers.len() > 1 => Some(matchers.len()),
            _ => None,
        }
    }

    /// The length of a v2 `inputs` list (however long), `None` for v1 `input`.
    pub fn inputs_len(&self) -> Option<usize> {
        match self {
            Self::Single(_) => None,
            Self::PerMessage(matchers) => Some(matchers.len()),
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Self::PerMessage(_))
    }

    /// The first message's matcher, which the stub index keys on.
    pub fn first(&self) -> Option<&MessageMatcher> {
        self.at(0)
    }

    pub fn field_count(&self) -> usize {
        match self {
            Self::Single(matcher) => matcher.field_count(),
            Self::PerMessage(matchers) => matchers.iter().map(MessageMatcher::field_count).sum(),
        }
    }
}

impl Stub {
    /// Scores the inbound message at `index` against this stub.
    pub fn evaluate(&self, index: usize, message: &DynamicMessage) -> Option<Score> {
        self.input.at(index)?.evaluate(message)
    }

    /// True while the stub may still answer.
    pub fn available(&self) -> bool {
        self.times == 0 || self.used.load(Ordering::Relaxed) < self.times
    }

    /// Takes one use; false when another call took the last one first.
    pub fn claim(&self) -> bool {
        if self.times == 0 {
            self.used.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| (used < self.times).then_some(used + 1))
            .is_ok()
    }
}

/// The response side of a stub.
#[derive(Debug, Default)]
pub struct StubOutput {
    /// Response headers.
    pub headers: MetadataMap,
    /// Response headers whose values are templates, rendered per call.
    pub header_templates: Vec<(String, Template)>,
    /// Trailers, sent with the final status whatever it is.
    pub trailers: MetadataMap,
    /// Trailers whose values are templates, rendered per call.
    pub trailer_templates: Vec<(String, Template)>,
    /// Wait before each message.
    pub delay: Duration,
    /// `data` as one message, or the `stream` elements.
    pub messages: Vec<OutputMessage>,
    /// True when the messages came from `stream` (v1 `data` answers bidi ping-pong style).
    pub streamed: bool,
    /// `error`/`code`/`details`: how the call ends after the messages.
    pub status: Option<StubStatus>,
    /// `script`: a stream script plays the answer instead of the messages above.
    pub script: Option<Arc<Script>>,
}

/// One message a stub sends.
#[derive(Debug, Clone)]
pub struct OutputMessage {
    pub message: OutboundMessage,
    /// When the message holds templates: rendered per call instead of `message`.
    pub template: Option<Arc<JsonTemplate>>,
    /// Overrides the stub's `delay` for this message (`_gripmock.delay`).
    pub delay: Option<Duration>,
    /// Ends the stream with this status instead of sending the message (`_gripmock.error`).
    pub status: Option<StubStatus>,
}

/// A status a stub ends a call with.
#[derive(Debug, Clone)]
pub struct StubStatus {
    pub code: Code,
    pub message: String,
    /// An encoded `google.rpc.Status` carrying `details`, for `grpc-status-details-bin`.
    pub details: Option<Bytes>,
}

impl StubOutput {
    /// True when anything in the output is rendered per call.
    pub fn has_templates(&self) -> bool {
        !self.header_templates.is_empty()
            || !self.trailer_templates.is_empty()
            || self.messages.iter().any(|message| message.template.is_some())
    }
}

impl StubStatus {
    /// The tonic status, with `trailers` as its trailing metadata.
    pub fn to_status(&self, trailers: &MetadataMap) -> Status {
        match &self.details {
            Some(details) => Status::with_details_and_metadata(
                self.code,
                self.message.clone(),
                details.clone(),
                trailers.clone(),
            ),
            None => Status::with_metadata(self.code, self.message.clone(), trailers.clone()),
        }
    }
}
