//! Fields of messages written by hand in stubs and scripts: finding a field by either of its
//! names (with a suggestion when it does not exist), converting a written value to the field's
//! protobuf type, and checking a whole written message field by field with positions.

use prost::Message;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};

use super::matcher::MatcherError;
use crate::document::{Key, Node, NodeValue};
use crate::proto::json::message_from_json;

/// An error about `node`, at its position.
pub(super) fn error(node: &Node, path: &str, message: String) -> MatcherError {
    MatcherError { at: node.at, path: path.to_owned(), message }
}

/// True when a name `distance` edits away from `written` is plausibly what was meant.
pub fn is_close(distance: usize, written: &str) -> bool {
    distance <= 2 && distance * 2 < written.len()
}

/// The field `key` names, or an error at the key suggesting the field meant.
pub(super) fn field_or_error(
    descriptor: &MessageDescriptor,
    key: &Key,
    path: &str,
    errors: &mut Vec<MatcherError>,
) -> Option<FieldDescriptor> {
    let field = resolve_field(descriptor, &key.name);
    if field.is_none() {
        let message = format!(
            "{} has no field '{}'{}",
            descriptor.full_name(),
            key.name,
            suggest(descriptor, &key.name)
        );
        errors.push(MatcherError { at: key.at, path: path.to_owned(), message });
    }
    field
}

/// Finds a field by its proto name or its JSON (lowerCamelCase) name.
pub fn resolve_field(descriptor: &MessageDescriptor, name: &str) -> Option<FieldDescriptor> {
    descriptor.get_field_by_name(name).or_else(|| descriptor.get_field_by_json_name(name))
}

/// ", did you mean 'x'?" when a field name is close to the one written; otherwise the list of
/// fields.
pub fn suggest(descriptor: &MessageDescriptor, name: &str) -> String {
    let normalized = |text: &str| text.replace('_', "").to_lowercase();
    let closest = descriptor
        .fields()
        .map(|field| (strsim::levenshtein(&normalized(field.name()), &normalized(name)), field))
        .min_by_key(|(distance, _)| *distance)
        .filter(|(distance, _)| is_close(*distance, name));
    match closest {
        Some((_, field)) => format!(", did you mean '{}'?", field.name()),
        None => {
            let names: Vec<_> = descriptor.fields().map(|f| f.name().to_owned()).collect();
            format!(" (fields: {})", names.join(", "))
        }
    }
}

/// The gist of a multi-line error message (the regex crate draws a caret diagram).
pub(super) fn one_line(message: &str) -> String {
    let last = message.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or(message);
    last.trim().trim_start_matches("error: ").to_owned()
}

/// Checks a message written as a mapping (a stub's `data` or `stream` element) field by field,
/// so that each unknown field or wrong value is reported at its own position.
pub fn check_message(
    node: &Node,
    descriptor: &MessageDescriptor,
    path: &str,
    errors: &mut Vec<MatcherError>,
) {
    let Some(entries) = node.as_map() else {
        errors.push(error(
            node,
            path,
            format!("expected a {} message (a mapping), found {}", descriptor.full_name(), node.kind()),
        ));
        return;
    };
    if is_well_known(descriptor) {
        return;
    }
    for (key, value) in entries {
        let here = format!("{path}.{}", key.name);
        let Some(field) = field_or_error(descriptor, key, &here, errors) else { continue };
        match (field.kind(), &value.value) {
            (Kind::Message(nested), NodeValue::Map(_)) if !field.is_map() && !field.is_list() => {
                check_message(value, &nested, &here, errors)
            }
            (Kind::Message(nested), NodeValue::Seq(items)) if field.is_list() => {
                for (index, item) in items.iter().enumerate() {
                    check_message(item, &nested, &format!("{here}[{index}]"), errors);
                }
            }
            // A template's value is known only when it renders.
            (_, NodeValue::String(text)) if text.contains("{{") => {}
            _ => {
                if let Err(message) = typed_value(descriptor, &field, value) {
                    errors.push(error(value, &here, message));
                }
            }
        }
    }
}

/// The stub's JSON value converted to the field's protobuf type, through the proto3 JSON
/// mapping (enum names, RFC 3339 timestamps, int64 strings…), in its wire-normal form.
pub fn typed_value(
    parent: &MessageDescriptor,
    field: &FieldDescriptor,
    node: &Node,
) -> Result<Value, String> {
    let wrapper = serde_json::json!({ field.name(): node.to_json() });
    let message = message_from_json(parent, &wrapper).map_err(|e| e.reason)?;
    let normal = DynamicMessage::decode(parent.clone(), message.encode_to_vec().as_slice())
        .map_err(|e| e.to_string())?;
    Ok(normal.get_field(field).into_owned())
}

pub(super) fn is_default(field: &FieldDescriptor, value: &Value) -> bool {
    match value {
        Value::List(items) => items.is_empty(),
        Value::Map(entries) => entries.is_empty(),
        Value::Message(message) => message.encoded_len() == 0,
        value => *value == field.default_value(),
    }
}

pub(super) fn is_well_known(descriptor: &MessageDescriptor) -> bool {
    descriptor.package_name() == "google.protobuf"
}
