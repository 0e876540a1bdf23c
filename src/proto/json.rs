//! The proto3 JSON mapping for dynamic messages (enum names, RFC 3339 timestamps, base64 bytes,
//! 64-bit integers as strings), so that stubs, scripts and reports speak JSON.
//!
//! prost-reflect implements the mapping; this module fixes the options streamstorm uses and
//! gives the conversions names.

use prost_reflect::{
    DeserializeOptions, DynamicMessage, MapKey, MessageDescriptor, ReflectMessage, SerializeOptions,
    Value as Field,
};
use serde_json::Value;

/// How field names are written when a message becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldNames {
    /// `user_id`: what stubs, scripts and templates (`request.ws.message.user_id`) use.
    Proto,
    /// `userId`: the canonical proto3 JSON form.
    LowerCamel,
}

/// Why JSON could not become a message of the wanted type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {type_name}: {reason}")]
pub struct JsonError {
    pub type_name: String,
    pub reason: String,
}

/// Builds a message of type `descriptor` from JSON. Both `user_id` and `userId` are accepted;
/// unknown fields are an error, so typos in stubs are caught at load.
pub fn message_from_json(descriptor: &MessageDescriptor, value: &Value) -> Result<DynamicMessage, JsonError> {
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    DynamicMessage::deserialize_with_options(descriptor.clone(), value, &options).map_err(|error| JsonError {
        type_name: descriptor.full_name().to_owned(),
        reason: error.to_string(),
    })
}

/// Which fields appear when a message becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultFields {
    /// Every field, defaults included, so templates and matchers see the same shape whatever
    /// the sender omitted.
    Include,
    /// Only the fields that are set, as a person would write the message.
    Skip,
}

/// Renders a message as JSON. Fails only for an `Any` whose type is not in the pool.
pub fn message_to_json(
    message: &DynamicMessage,
    names: FieldNames,
    defaults: DefaultFields,
) -> Result<Value, JsonError> {
    let options = SerializeOptions::new()
        .skip_default_fields(defaults == DefaultFields::Skip)
        .use_proto_field_name(names == FieldNames::Proto);
    let mut json =
        message.serialize_with_options(serde_json::value::Serializer, &options).map_err(|error| {
            JsonError { type_name: message.descriptor().full_name().to_owned(), reason: error.to_string() }
        })?;
    spell_non_finite_wrappers(message, &mut json, names);
    Ok(json)
}

/// prost-reflect writes a `FloatValue` or `DoubleValue` holding NaN or an infinity as a bare
/// float, which a JSON value can only hold as `null`: the field would read back as unset (or
/// not at all, at the top level). proto3 JSON spells them `"NaN"`, `"Infinity"` and
/// `"-Infinity"`, as for plain float fields; this puts those strings in.
fn spell_non_finite_wrappers(message: &DynamicMessage, json: &mut Value, names: FieldNames) {
    if let Some(text) = non_finite_wrapper(message) {
        *json = Value::String(text.to_owned());
        return;
    }
    let Value::Object(object) = json else { return };
    for (field, value) in message.fields() {
        let name = match names {
            FieldNames::Proto => field.name(),
            FieldNames::LowerCamel => field.json_name(),
        };
        if let Some(slot) = object.get_mut(name) {
            spell_in_field(value, slot, names);
        }
    }
}

fn spell_in_field(value: &Field, json: &mut Value, names: FieldNames) {
    match (value, json) {
        (Field::Message(message), json) => spell_non_finite_wrappers(message, json, names),
        (Field::List(items), Value::Array(slots)) => {
            for (item, slot) in items.iter().zip(slots) {
                spell_in_field(item, slot, names);
            }
        }
        (Field::Map(entries), Value::Object(slots)) => {
            for (key, item) in entries {
                let key = match key {
                    MapKey::String(key) => key.clone(),
                    MapKey::Bool(key) => key.to_string(),
                    MapKey::I32(key) => key.to_string(),
                    MapKey::I64(key) => key.to_string(),
                    MapKey::U32(key) => key.to_string(),
                    MapKey::U64(key) => key.to_string(),
                };
                if let Some(slot) = slots.get_mut(&key) {
                    spell_in_field(item, slot, names);
                }
            }
        }
        _ => {}
    }
}

/// The proto3 JSON text of a float wrapper holding NaN or an infinity.
fn non_finite_wrapper(message: &DynamicMessage) -> Option<&'static str> {
    let descriptor = message.descriptor();
    if !matches!(descriptor.full_name(), "google.protobuf.DoubleValue" | "google.protobuf.FloatValue") {
        return None;
    }
    let value = match message.get_field_by_number(1)?.as_ref() {
        Field::F64(value) => *value,
        Field::F32(value) => f64::from(*value),
        _ => return None,
    };
    match value {
        value if value.is_nan() => Some("NaN"),
        value if value == f64::INFINITY => Some("Infinity"),
        value if value == f64::NEG_INFINITY => Some("-Infinity"),
        _ => None,
    }
}
