//! Plays a script against one call. Outbound entries form a timeline (`ts` milliseconds after
//! the stream opened, in file order; an entry whose time has passed goes at once); inbound
//! messages fire the first matching specific entry, else the first fallback whose condition
//! holds. Per-stream state lives here, and all randomness comes from an RNG seeded by the
//! server's seed and the stream id.
//!
//! Replies to an inbound message (`response` after the entry's `ts`, or each of `responses` at
//! its own `ts`) are rendered when the message arrives and wait in a queue merged with the
//! timeline, so a reply due later holds up neither the timeline nor later inbound messages.
//!
//! Endings: `close: true` ends the stream OK after its entry (an outbound `close` without
//! `text` ends it at its `ts` without sending); `error: true` ends it with the entry's code,
//! text and details. Otherwise a server stream ends after its last outbound entry, a bidi
//! stream once the client has half-closed, the timeline has run out and no reply is waiting,
//! and a client stream answers with the last kept response when the client half-closes (its
//! entries' `ts` is not used: it answers once).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_stream::try_stream;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor};
use rand::rngs::StdRng;
use serde_json::{Map, Value as Json};
use tokio::time::Instant;
use tonic::Status;

use super::model::{Due, Effects, InEntry, OutEntry, ReplyAction, Script, TextPattern};
use crate::chaos::stream_rng;
use crate::config::StatusDetails;
use crate::proto::json::{DefaultFields, FieldNames, message_from_json, message_to_json};
use crate::proto::{CallKind, OutboundMessage};
use crate::server::{Call, Inbound, OutboundStream};
use crate::template::{JsonTemplate, Scope, Template, truthy};

/// Distinguishes the scripts' random draws from other per-stream draws.
const SCRIPT_RNG: u64 = 1;

/// Starts playing `script` for `call`. `first` is the first inbound message when a stub has
/// already read it to choose this script.
pub async fn play(
    script: Arc<Script>,
    mut call: Call,
    first: Option<DynamicMessage>,
    seed: u64,
) -> Result<tonic::Response<OutboundStream>, Status> {
    // A bidi script starts its timeline at once; its first message, when it comes, becomes
    // `request`.
    let first = match (first, call.method.kind) {
        (Some(first), _) => Some(first),
        (None, CallKind::ServerStreaming) => Some(call.inbound.single().await?),
        (None, CallKind::ClientStreaming) => call.inbound.next().await?,
        (None, _) => None,
    };
    let request = first.as_ref().map(request_json);
    let mut player = Player {
        script: script.clone(),
        request: request.clone().unwrap_or(Json::Object(Map::new())),
        has_request: request.is_some(),
        state: Map::new(),
        connection_id: call.connection.id.to_string(),
        stream_id: call.stream_id,
        rng: stream_rng(seed, call.stream_id, SCRIPT_RNG),
        output: call.method.output(),
        // From when the call opened, not from when its first message came: a recording's
        // times count from the call's headers, and a client may send its request later.
        opened: Instant::from_std(call.opened),
    };
    let stream: OutboundStream = match call.method.kind {
        CallKind::ClientStreaming => {
            let answer = player.collect_client_stream(first, &mut call.inbound).await?;
            Box::pin(futures::stream::iter(answer.map(Ok)))
        }
        _ => Box::pin(player.converse(first, call.inbound)),
    };
    Ok(tonic::Response::new(stream))
}

/// The JSON templates see for a message: proto field names, every field present.
fn request_json(message: &DynamicMessage) -> Json {
    message_to_json(message, FieldNames::Proto, DefaultFields::Include).unwrap_or(Json::Null)
}

/// What happened while waiting: an outbound entry fell due, a reply fell due, or the client
/// spoke (or half-closed, or failed).
enum Event {
    Timeline,
    Reply,
    Inbound(Result<Option<DynamicMessage>, Status>),
}

/// What an entry or a reply does when its time comes.
enum Action {
    Send(OutboundMessage),
    Close,
    Fail(Status),
}

/// A reply to an inbound message, rendered when the message arrived, waiting for its time.
struct Scheduled {
    due: Instant,
    action: Action,
}

/// Replies waiting for their time, earliest first; replies due at the same time keep the
/// order they were scheduled in.
#[derive(Default)]
struct Replies(std::collections::VecDeque<Scheduled>);

impl Replies {
    fn schedule(&mut self, reply: Scheduled) {
        let at = self.0.partition_point(|waiting| waiting.due <= reply.due);
        self.0.insert(at, reply);
    }

    fn next_due(&self) -> Option<Instant> {
        self.0.front().map(|reply| reply.due)
    }
}

/// One stream's run of a script.
struct Player {
    script: Arc<Script>,
    /// `request`: the call's first message.
    request: Json,
    /// False until a bidi call's first message has arrived.
    has_request: bool,
    state: Map<String, Json>,
    connection_id: String,
    stream_id: u64,
    rng: StdRng,
    output: MessageDescriptor,
    opened: Instant,
}

impl Player {
    /// Server streaming and bidi: the timeline and, for bidi, the inbound rules. Replies to
    /// inbound messages wait in a queue merged with the timeline, so a reply due later holds
    /// up neither the timeline nor the messages after it.
    fn converse(
        mut self,
        first: Option<DynamicMessage>,
        mut inbound: Inbound,
    ) -> impl futures::Stream<Item = Result<OutboundMessage, Status>> + Send {
        let script = self.script.clone();
        let bidi = script.method.kind == CallKind::BidiStreaming;
        try_stream! {
            let mut pending = first.filter(|_| bidi);
            let mut client_open = bidi;
            let mut replies = Replies::default();
            let mut next = 0;
            let mut due_at = None;
            loop {
                let entry = script.outbound.get(next);
                if let (Some(entry), None) = (entry, due_at) {
                    due_at = Some(self.opened + Duration::from_millis(self.due_millis(entry)?));
                }
                let timeline = due_at.filter(|_| entry.is_some());
                // The earlier of the timeline's next entry and the first waiting reply; the
                // timeline first at the same time.
                let (due, due_event) = match (timeline, replies.next_due()) {
                    (Some(timeline), Some(reply)) if reply < timeline => (Some(reply), Event::Reply),
                    (Some(timeline), _) => (Some(timeline), Event::Timeline),
                    (None, Some(reply)) => (Some(reply), Event::Reply),
                    (None, None) => (None, Event::Timeline),
                };
                // What is already due goes first: a ts 0 welcome precedes the answer to the
                // client's first message.
                let event = match (due, pending.take()) {
                    (Some(due), pending_message) if due <= Instant::now() => {
                        pending = pending_message;
                        due_event
                    }
                    (_, Some(message)) => Event::Inbound(Ok(Some(message))),
                    (None, None) if !client_open => break,
                    _ => tokio::select! {
                        _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => due_event,
                        message = inbound.next(), if client_open => Event::Inbound(message),
                    },
                };
                let actions = match event {
                    Event::Inbound(received) => match received? {
                        Some(message) => {
                            let arrived = Instant::now();
                            for (after, action) in self.on_inbound(&message)? {
                                replies.schedule(Scheduled { due: arrived + after, action });
                            }
                            continue;
                        }
                        None => {
                            client_open = false;
                            continue;
                        }
                    },
                    Event::Reply => vec![replies.0.pop_front().expect("a due reply exists").action],
                    Event::Timeline => {
                        let entry = entry.expect("a due entry exists");
                        next += 1;
                        due_at = None;
                        self.on_outbound(entry)?
                    }
                };
                let mut ended = false;
                for action in actions {
                    match action {
                        Action::Send(message) => yield message,
                        Action::Close => {
                            ended = true;
                            break;
                        }
                        Action::Fail(status) => Err(status)?,
                    }
                }
                if ended {
                    break;
                }
            }
        }
    }

    /// Client streaming: every message fires its entry; the last kept response answers.
    async fn collect_client_stream(
        &mut self,
        first: Option<DynamicMessage>,
        inbound: &mut Inbound,
    ) -> Result<Option<OutboundMessage>, Status> {
        let mut kept = None;
        let mut message = first;
        'messages: while let Some(current) = message {
            for (_, action) in self.on_inbound(&current)? {
                match action {
                    Action::Send(reply) => kept = Some(reply),
                    Action::Close => break 'messages,
                    Action::Fail(status) => return Err(status),
                }
            }
            message = inbound.next().await?;
        }
        Ok(Some(kept.unwrap_or(OutboundMessage::Encoded(bytes::Bytes::new()))))
    }

    fn due_millis(&mut self, entry: &OutEntry) -> Result<u64, Status> {
        self.due_millis_of(&entry.due, None, entry.line)
    }

    /// `due` in milliseconds; a template sees `message` (the inbound message it answers).
    fn due_millis_of(&mut self, due: &Due, message: Option<&Json>, line: usize) -> Result<u64, Status> {
        match due {
            Due::At(millis) => Ok(*millis),
            Due::Template(template) => {
                let value = self.evaluate(template, message, line)?;
                value.as_f64().filter(|ms| *ms >= 0.0).map(|ms| ms as u64).ok_or_else(|| {
                    self.failure(line, &format!("`ts` must evaluate to milliseconds, got {value}"))
                })
            }
        }
    }

    /// What a due outbound entry does, in order; nothing when its condition does not hold.
    fn on_outbound(&mut self, entry: &OutEntry) -> Result<Vec<Action>, Status> {
        if !self.holds(entry.condition.as_ref(), None, entry.line)? {
            return Ok(Vec::new());
        }
        let text = entry.text.as_ref().map(|text| self.render(text, None, entry.line)).transpose()?;
        self.apply(&entry.effects, None, entry.line)?;
        self.entry_actions(&entry.effects, text, entry.line)
    }

    /// What an entry does with its rendered `text` (if any): end with its error, or send the
    /// text and then close if it says so.
    fn entry_actions(
        &self,
        effects: &Effects,
        text: Option<Json>,
        line: usize,
    ) -> Result<Vec<Action>, Status> {
        if let Some(code) = effects.error {
            return Ok(vec![Action::Fail(status(code, text, effects.details.as_ref()))]);
        }
        let mut actions = Vec::new();
        if let Some(text) = text {
            actions.push(Action::Send(self.to_message(text, line)?));
        }
        if effects.close {
            actions.push(Action::Close);
        }
        Ok(actions)
    }

    /// What the message fires: the actions of the first matching entry, each with how long
    /// after the message's arrival it is due. Templates are rendered now, as the message
    /// arrives, and the entry's state updates apply after them.
    fn on_inbound(&mut self, message: &DynamicMessage) -> Result<Vec<(Duration, Action)>, Status> {
        let json = request_json(message);
        if !self.has_request {
            self.request = json.clone();
            self.has_request = true;
        }
        let script = self.script.clone();
        let Some(entry) = self.firing_entry(&script, message, &json)? else {
            return Ok(Vec::new());
        };
        let mut actions = Vec::new();
        for reply in &entry.replies {
            let after = Duration::from_millis(reply.after);
            let action = match &reply.action {
                ReplyAction::Send(body) => {
                    let text = self.render(body, Some(&json), entry.line)?;
                    Action::Send(self.to_message(text, entry.line)?)
                }
                ReplyAction::Fail { code, text, details } => {
                    let text =
                        text.as_ref().map(|text| self.render(text, Some(&json), entry.line)).transpose()?;
                    Action::Fail(status(*code, text, details.as_ref()))
                }
                ReplyAction::Close => Action::Close,
            };
            actions.push((after, action));
        }
        let response =
            entry.response.as_ref().map(|body| self.render(body, Some(&json), entry.line)).transpose()?;
        let after = Duration::from_millis(self.due_millis_of(&entry.delay, Some(&json), entry.line)?);
        let effects = &entry.effects;
        actions.extend(
            self.entry_actions(effects, response, entry.line)?.into_iter().map(|action| (after, action)),
        );
        self.apply(effects, Some(&json), entry.line)?;
        Ok(actions)
    }

    /// The first specific entry that matches; failing that, the first fallback whose
    /// condition holds.
    fn firing_entry<'s>(
        &mut self,
        script: &'s Script,
        message: &DynamicMessage,
        json: &Json,
    ) -> Result<Option<&'s InEntry>, Status> {
        // The message's text is made once, and only if some entry matches by regex.
        let mut text: Option<String> = None;
        for entry in &script.inbound {
            let matches = match &entry.pattern {
                TextPattern::Anything => true,
                TextPattern::Empty => prost::Message::encoded_len(message) == 0,
                TextPattern::Subset(matcher) => matcher.evaluate(message).is_some(),
                TextPattern::Regex(regex) => regex.is_match(text.get_or_insert_with(|| {
                    message_to_json(message, FieldNames::Proto, DefaultFields::Skip)
                        .map(|json| json.to_string())
                        .unwrap_or_default()
                })),
            };
            if matches && self.holds(entry.condition.as_ref(), Some(json), entry.line)? {
                return Ok(Some(entry));
            }
        }
        for entry in &script.fallbacks {
            if self.holds(entry.condition.as_ref(), Some(json), entry.line)? {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    fn apply(&mut self, effects: &Effects, message: Option<&Json>, line: usize) -> Result<(), Status> {
        if let Some(flag) = &effects.set_flag {
            self.state.insert(flag.clone(), Json::Bool(true));
        }
        for (key, body) in &effects.updates {
            let value = self.render(body, message, line)?;
            self.state.insert(key.clone(), value);
        }
        Ok(())
    }

    fn holds(
        &mut self,
        condition: Option<&Template>,
        message: Option<&Json>,
        line: usize,
    ) -> Result<bool, Status> {
        match condition {
            None => Ok(true),
            Some(condition) => Ok(truthy(&self.evaluate(condition, message, line)?)),
        }
    }

    fn render(&mut self, body: &JsonTemplate, message: Option<&Json>, line: usize) -> Result<Json, Status> {
        let mut scope = self.scope(message);
        body.render(&mut scope).map_err(|error| self.failure(line, &error.message))
    }

    fn evaluate(&mut self, template: &Template, message: Option<&Json>, line: usize) -> Result<Json, Status> {
        let mut scope = self.scope(message);
        template.render(&mut scope).map_err(|error| self.failure(line, &error.message))
    }

    fn scope<'s>(&'s mut self, message: Option<&'s Json>) -> Scope<'s> {
        Scope {
            request: &self.request,
            message,
            state: &self.state,
            connection_id: &self.connection_id,
            stream_id: self.stream_id,
            rng: &mut self.rng,
            now: SystemTime::now(),
        }
    }

    /// A rendered value as a message of the output type: JSON objects (or text holding one)
    /// as they are; other text fills the message's body field ([`text_field`]).
    fn to_message(&self, value: Json, line: usize) -> Result<OutboundMessage, Status> {
        let json = match value {
            Json::Object(_) => value,
            Json::String(text) => match serde_json::from_str::<Json>(&text) {
                Ok(object @ Json::Object(_)) => object,
                _ => self.text_message(Json::String(text), line)?,
            },
            other => self.text_message(Json::String(other.to_string()), line)?,
        };
        message_from_json(&self.output, &json)
            .map(OutboundMessage::Dynamic)
            .map_err(|error| self.failure(line, &error.to_string()))
    }

    fn text_message(&self, text: Json, line: usize) -> Result<Json, Status> {
        let field = text_field(&self.output).ok_or_else(|| {
            self.failure(
                line,
                &format!("{} has no string field for a text response", self.output.full_name()),
            )
        })?;
        Ok(Json::Object(Map::from_iter([(field, text)])))
    }

    /// A run-time failure ends only this stream, naming the script line.
    fn failure(&self, line: usize, message: &str) -> Status {
        Status::internal(format!("script {}:{line}: {message}", self.script.file.display()))
    }
}

/// The status an `error: true` entry or reply ends the stream with: its rendered text as the
/// message, and its details (carrying the same code and message) when it has them.
fn status(code: tonic::Code, text: Option<Json>, details: Option<&StatusDetails>) -> Status {
    let message = match text {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(text)) => text,
        Some(other) => other.to_string(),
    };
    match details {
        Some(details) => Status::with_details(code, message.clone(), details.encode_with(&message)),
        None => Status::new(code, message),
    }
}

/// Names of the field a plain-text response fills, in order of preference: what a message
/// body is usually called.
pub const TEXT_FIELD_NAMES: &[&str] = &["content", "message", "text", "body"];

/// The singular string field plain-text responses fill: the first of [`TEXT_FIELD_NAMES`] the
/// message type has, else its first singular string field.
pub fn text_field(message: &MessageDescriptor) -> Option<String> {
    let strings: Vec<_> =
        message.fields().filter(|field| matches!(field.kind(), Kind::String) && !field.is_list()).collect();
    TEXT_FIELD_NAMES
        .iter()
        .find_map(|name| strings.iter().find(|field| field.name() == *name))
        .or(strings.first())
        .map(|field| field.name().to_owned())
}
