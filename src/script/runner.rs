//! Plays a script against one call. Outbound entries form a timeline (`ts` milliseconds after
//! the stream opened, in file order; an entry whose time has passed goes at once); inbound
//! messages fire the first matching specific entry, else the first fallback whose condition
//! holds. Per-stream state lives here, and all randomness comes from an RNG seeded by the
//! server's seed and the stream id.
//!
//! Endings: `close: true` ends the stream OK after its entry; `error: true` ends it with the
//! entry's code and text. Otherwise a server stream ends after its last outbound entry, a bidi
//! stream once the client has half-closed and the timeline has run out, and a client stream
//! answers with the last kept response when the client half-closes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_stream::try_stream;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor};
use rand::rngs::StdRng;
use serde_json::{Map, Value as Json};
use tokio::time::Instant;
use tonic::Status;

use super::model::{Due, Effects, InEntry, OutEntry, Script, TextPattern};
use crate::chaos::stream_rng;
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
        opened: Instant::now(),
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

/// What happened while waiting: an outbound entry fell due, or the client spoke (or
/// half-closed, or failed).
enum Event {
    Due,
    Inbound(Result<Option<DynamicMessage>, Status>),
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

/// What an entry asks for once it has fired.
enum Outcome {
    Continue,
    Close,
    Fail(Status),
}

impl Player {
    /// Server streaming and bidi: the timeline and, for bidi, the inbound rules.
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
            let mut next = 0;
            let mut due_at = None;
            loop {
                let entry = script.outbound.get(next);
                if let (Some(entry), None) = (entry, due_at) {
                    due_at = Some(self.opened + Duration::from_millis(self.due_millis(entry)?));
                }
                // What is already due goes first: a ts 0 welcome precedes the answer to the
                // client's first message.
                let event = match (entry, pending.take()) {
                    (Some(_), pending_message) if due_at.is_some_and(|due| due <= Instant::now()) => {
                        pending = pending_message;
                        Event::Due
                    }
                    (_, Some(message)) => Event::Inbound(Ok(Some(message))),
                    (None, None) if !client_open => break,
                    _ => tokio::select! {
                        _ = tokio::time::sleep_until(due_at.unwrap_or_else(Instant::now)), if entry.is_some() => Event::Due,
                        message = inbound.next(), if client_open => Event::Inbound(message),
                    },
                };
                let (message, outcome) = match event {
                    Event::Inbound(received) => match received? {
                        Some(message) => self.on_inbound(&message)?,
                        None => {
                            client_open = false;
                            continue;
                        }
                    },
                    Event::Due => {
                        let entry = entry.expect("a due entry exists");
                        next += 1;
                        due_at = None;
                        self.on_outbound(entry)?
                    }
                };
                if let Some(message) = message {
                    yield message;
                }
                match outcome {
                    Outcome::Continue => {}
                    Outcome::Close => break,
                    Outcome::Fail(status) => Err(status)?,
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
        while let Some(current) = message {
            let (reply, outcome) = self.on_inbound(&current)?;
            kept = reply.or(kept);
            match outcome {
                Outcome::Continue => {}
                Outcome::Close => break,
                Outcome::Fail(status) => return Err(status),
            }
            message = inbound.next().await?;
        }
        Ok(Some(kept.unwrap_or(OutboundMessage::Encoded(bytes::Bytes::new()))))
    }

    fn due_millis(&mut self, entry: &OutEntry) -> Result<u64, Status> {
        match &entry.due {
            Due::At(millis) => Ok(*millis),
            Due::Template(template) => {
                let value = self.evaluate(template, None, entry.line)?;
                value.as_f64().filter(|ms| *ms >= 0.0).map(|ms| ms as u64).ok_or_else(|| {
                    self.failure(entry.line, &format!("`ts` must evaluate to milliseconds, got {value}"))
                })
            }
        }
    }

    fn on_outbound(&mut self, entry: &OutEntry) -> Result<(Option<OutboundMessage>, Outcome), Status> {
        if !self.holds(entry.condition.as_ref(), None, entry.line)? {
            return Ok((None, Outcome::Continue));
        }
        let text = self.render(&entry.text, None, entry.line)?;
        self.finish_entry(&entry.effects, text, None, entry.line)
    }

    fn on_inbound(&mut self, message: &DynamicMessage) -> Result<(Option<OutboundMessage>, Outcome), Status> {
        let json = request_json(message);
        if !self.has_request {
            self.request = json.clone();
            self.has_request = true;
        }
        let script = self.script.clone();
        let Some(entry) = self.firing_entry(&script, message, &json)? else {
            return Ok((None, Outcome::Continue));
        };
        let response = match &entry.response {
            Some(body) => Some(self.render(body, Some(&json), entry.line)?),
            None => None,
        };
        match response {
            Some(text) => self.finish_entry(&entry.effects, text, Some(&json), entry.line),
            None => {
                self.apply(&entry.effects, Some(&json), entry.line)?;
                Ok((None, if entry.effects.close { Outcome::Close } else { Outcome::Continue }))
            }
        }
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

    /// Sends `text` (or ends with it, for `error: true`), then applies the entry's effects.
    fn finish_entry(
        &mut self,
        effects: &Effects,
        text: Json,
        message: Option<&Json>,
        line: usize,
    ) -> Result<(Option<OutboundMessage>, Outcome), Status> {
        self.apply(effects, message, line)?;
        if let Some(code) = effects.error {
            let description = match text {
                Json::String(text) => text,
                other => other.to_string(),
            };
            return Ok((None, Outcome::Fail(Status::new(code, description))));
        }
        let outbound = self.to_message(text, line)?;
        Ok((Some(outbound), if effects.close { Outcome::Close } else { Outcome::Continue }))
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
