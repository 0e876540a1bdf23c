//! The proto3 JSON mapping for dynamic messages (enum names, RFC 3339 timestamps, base64 bytes,
//! 64-bit integers as strings), so that stubs, scripts and reports speak JSON.
//!
//! prost-reflect implements the mapping; this module fixes the options streamstorm uses and
//! gives the conversions names.

use prost_reflect::{
    DeserializeOptions, DynamicMessage, MessageDescriptor, ReflectMessage, SerializeOptions,
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
    message.serialize_with_options(serde_json::value::Serializer, &options).map_err(|error| JsonError {
        type_name: message.descriptor().full_name().to_owned(),
        reason: error.to_string(),
    })
}
