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

/// Renders a message as JSON. Fails for an `Any` whose type is not in the pool, and for a
/// `FieldMask` with a path that proto3 JSON cannot write (empty, or holding a comma).
pub fn message_to_json(
    message: &DynamicMessage,
    names: FieldNames,
    defaults: DefaultFields,
) -> Result<Value, JsonError> {
    let options = SerializeOptions::new()
        .skip_default_fields(defaults == DefaultFields::Skip)
        .use_proto_field_name(names == FieldNames::Proto);
    let failed =
        |reason: String| JsonError { type_name: message.descriptor().full_name().to_owned(), reason };
    let mut json = message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|error| failed(error.to_string()))?;
    mend(message, &mut json, names).map_err(failed)?;
    Ok(json)
}

/// Where prost-reflect's JSON would not read back as the same message, fixes or refuses it:
///
/// - a `FloatValue` or `DoubleValue` holding NaN or an infinity is written as a bare float,
///   which a JSON value holds as `null` (read back as unset, or not at all at the top level);
///   proto3 JSON spells them `"NaN"`, `"Infinity"` and `"-Infinity"`, put in here;
/// - a `FieldMask` is one comma-separated string, so an empty path, or one holding a comma,
///   would read back as other paths: an error, as in other proto3 JSON writers.
fn mend(message: &DynamicMessage, json: &mut Value, names: FieldNames) -> Result<(), String> {
    if let Some(text) = non_finite_wrapper(message) {
        *json = Value::String(text.to_owned());
        return Ok(());
    }
    if message.descriptor().full_name() == "google.protobuf.FieldMask" {
        return check_field_mask(message);
    }
    let Value::Object(object) = json else { return Ok(()) };
    for (field, value) in message.fields() {
        let name = match names {
            FieldNames::Proto => field.name(),
            FieldNames::LowerCamel => field.json_name(),
        };
        if let Some(slot) = object.get_mut(name) {
            mend_field(value, slot, names)?;
        }
    }
    Ok(())
}

fn mend_field(value: &Field, json: &mut Value, names: FieldNames) -> Result<(), String> {
    match (value, json) {
        (Field::Message(message), json) => mend(message, json, names)?,
        (Field::List(items), Value::Array(slots)) => {
            for (item, slot) in items.iter().zip(slots) {
                mend_field(item, slot, names)?;
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
                    mend_field(item, slot, names)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn check_field_mask(mask: &DynamicMessage) -> Result<(), String> {
    let Some(paths) = mask.get_field_by_number(1) else { return Ok(()) };
    let Field::List(paths) = paths.as_ref() else { return Ok(()) };
    for path in paths.iter().filter_map(Field::as_str) {
        if path.is_empty() || path.contains(',') {
            return Err(format!("FieldMask path {path:?} cannot be written as JSON"));
        }
    }
    Ok(())
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
