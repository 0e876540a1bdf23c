//! Resume positions (`clients.resume`): the request field a reconnecting client sets, the
//! response field whose last delivered value it should carry, read from messages, and the
//! class of each resume.

use bytes::Bytes;
use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};
use serde::Serialize;

use crate::chaos::plan::MethodMatch;
use crate::config::Profile;
use crate::config::clients::ResumeFields;
use crate::diagnostic::{Problem, Problems};
use crate::proto::{MethodCatalog, MethodEntry, OutboundMessage};

/// A position in a stream, as a resume field holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Position {
    Number(i128),
    Text(String),
}

impl Position {
    /// The field's zero value: a client that sends it starts over.
    fn is_start(&self) -> bool {
        match self {
            Self::Number(number) => *number == 0,
            Self::Text(text) => text.is_empty(),
        }
    }
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(number) => write!(f, "{number}"),
            Self::Text(text) => write!(f, "{text:?}"),
        }
    }
}

/// How a call after a cut picked up the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResumeClass {
    /// From the last position delivered.
    Resumed,
    /// From the start.
    Restarted,
    /// From past the last position delivered: messages lost.
    Skipped,
    /// From before the last position delivered: messages seen twice.
    Duplicated,
}

impl ResumeClass {
    pub const ALL: [ResumeClass; 4] = [Self::Resumed, Self::Restarted, Self::Skipped, Self::Duplicated];

    pub fn name(self) -> &'static str {
        match self {
            Self::Resumed => "resumed",
            Self::Restarted => "restarted",
            Self::Skipped => "skipped",
            Self::Duplicated => "duplicated",
        }
    }

    /// Classes the position `asked` for against the `delivered` one. Text positions (cursors)
    /// are ordered as strings.
    pub fn of(asked: &Position, delivered: &Position) -> Self {
        if asked == delivered {
            Self::Resumed
        } else if asked.is_start() {
            Self::Restarted
        } else if asked > delivered {
            Self::Skipped
        } else {
            Self::Duplicated
        }
    }
}

/// Where one method carries its resume position.
#[derive(Debug, Clone)]
pub struct ResumeProbe {
    request: FieldDescriptor,
    response: FieldDescriptor,
    output: MessageDescriptor,
}

impl ResumeProbe {
    /// The probe for `method`, when `fields` applies to it and both messages have the fields
    /// with a scalar type that can hold a position.
    pub fn for_method(fields: &ResumeFields, method: &MethodEntry) -> Option<Self> {
        if !fields.method.matches(&method.service, &method.method) {
            return None;
        }
        let request = position_field(&method.input(), &fields.request_field)?;
        let response = position_field(&method.output(), &fields.response_field)?;
        Some(Self { request, response, output: method.output() })
    }

    /// The position a request asks for.
    pub fn asked(&self, request: &DynamicMessage) -> Option<Position> {
        position(&request.get_field(&self.request))
    }

    /// The position an outbound message carries (decoded when it was sent pre-encoded).
    pub fn carried(&self, message: &OutboundMessage) -> Option<Position> {
        match message {
            OutboundMessage::Dynamic(message) => position(&message.get_field(&self.response)),
            OutboundMessage::Encoded(bytes) => self.carried_in(bytes),
        }
    }

    fn carried_in(&self, bytes: &Bytes) -> Option<Position> {
        let mut message = DynamicMessage::new(self.output.clone());
        message.merge(bytes.clone()).ok()?;
        position(&message.get_field(&self.response))
    }
}

/// `name` in `message`, when it is a singular integer or string field.
fn position_field(message: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    let field = message.get_field_by_name(name)?;
    let scalar = matches!(
        field.kind(),
        Kind::Int32
            | Kind::Int64
            | Kind::Uint32
            | Kind::Uint64
            | Kind::Sint32
            | Kind::Sint64
            | Kind::Fixed32
            | Kind::Fixed64
            | Kind::Sfixed32
            | Kind::Sfixed64
            | Kind::String
    );
    (scalar && !field.is_list() && !field.is_map()).then_some(field)
}

fn position(value: &Value) -> Option<Position> {
    Some(match value {
        Value::I32(number) => Position::Number(i128::from(*number)),
        Value::I64(number) => Position::Number(i128::from(*number)),
        Value::U32(number) => Position::Number(i128::from(*number)),
        Value::U64(number) => Position::Number(i128::from(*number)),
        Value::String(text) => Position::Text(text.clone()),
        _ => return None,
    })
}

/// A problem when the profile's `clients.resume` fits no method of `catalog`: no method it
/// matches has the request field and the response field, each a singular integer or string.
pub fn check(profile: &Profile, catalog: &MethodCatalog) -> Problems {
    let Some(fields) = &profile.clients.resume else { return Problems::default() };
    if catalog.methods().any(|method| ResumeProbe::for_method(fields, method).is_some()) {
        return Problems::default();
    }
    let message = format!(
        "no method has both a request field '{}' and a response field '{}' (each a singular integer or string field){}",
        fields.request_field,
        fields.response_field,
        match &fields.method {
            MethodMatch::All => String::new(),
            _ => " among the methods clients.resume.method matches".to_owned(),
        }
    );
    let at = fields.at;
    Problem::at(&profile.file, at.line, at.column, message).with_field("clients.resume").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resumes_are_classed_by_position() {
        let number = Position::Number;
        assert_eq!(ResumeClass::of(&number(7), &number(7)), ResumeClass::Resumed);
        assert_eq!(ResumeClass::of(&number(0), &number(7)), ResumeClass::Restarted);
        assert_eq!(ResumeClass::of(&number(9), &number(7)), ResumeClass::Skipped);
        assert_eq!(ResumeClass::of(&number(3), &number(7)), ResumeClass::Duplicated);
        let text = |text: &str| Position::Text(text.to_owned());
        assert_eq!(ResumeClass::of(&text(""), &text("c-17")), ResumeClass::Restarted);
        assert_eq!(ResumeClass::of(&text("c-17"), &text("c-17")), ResumeClass::Resumed);
    }
}
