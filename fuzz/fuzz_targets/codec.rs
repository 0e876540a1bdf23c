//! The protobuf and JSON codecs against the example protos' real descriptors. The first byte
//! picks a message type; the rest is decoded as that type's wire form (as the server's codec
//! decodes requests) and, when it is UTF-8, read as that type's proto3 JSON (as stubs,
//! scripts and the load client write messages). Whatever decodes must survive
//! encode → decode, and message → JSON → message in both field-name forms, unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, ReflectMessage};
use streamstorm::proto::json::{DefaultFields, FieldNames, message_from_json, message_to_json};
use streamstorm_fuzz::DESCRIPTORS;
use streamstorm_fuzz::compare::same_message;

fuzz_target!(
    init: {
        // `STREAMSTORM_FUZZ_TYPES=1`: print which selector byte picks which type (for seeds).
        if std::env::var_os("STREAMSTORM_FUZZ_TYPES").is_some() {
            for (index, message) in DESCRIPTORS.messages.iter().enumerate() {
                eprintln!("{index:3} {}", message.full_name());
            }
        }
    },
    |data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let messages = &DESCRIPTORS.messages;
    let descriptor = &messages[usize::from(selector) % messages.len()];
    if let Ok(message) = DynamicMessage::decode(descriptor.clone(), body) {
        check_wire_round_trip(&message);
        check_json_round_trip(&message);
    }
    if let Ok(text) = std::str::from_utf8(body)
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(text)
        && let Ok(message) = message_from_json(descriptor, &json)
    {
        check_wire_round_trip(&message);
        check_json_round_trip(&message);
    }
}
);

fn check_wire_round_trip(message: &DynamicMessage) {
    let bytes = message.encode_to_vec();
    let again = DynamicMessage::decode(message.descriptor(), bytes.as_slice())
        .unwrap_or_else(|error| panic!("re-decoding {}: {error}", message.descriptor().full_name()));
    assert!(same_message(message, &again), "wire round trip changed {message:?} into {again:?}");
}

fn check_json_round_trip(message: &DynamicMessage) {
    let descriptor: MessageDescriptor = message.descriptor();
    for names in [FieldNames::Proto, FieldNames::LowerCamel] {
        // An `Any` naming a type outside the pool cannot become JSON; that is an error, not a bug.
        let Ok(json) = message_to_json(message, names, DefaultFields::Include) else { continue };
        let back = message_from_json(&descriptor, &json)
            .unwrap_or_else(|error| panic!("JSON we wrote does not read back: {error}\n{json}"));
        let json_again = message_to_json(&back, names, DefaultFields::Include)
            .unwrap_or_else(|error| panic!("re-encoding as JSON: {error}"));
        assert_eq!(json, json_again, "JSON round trip changed the message");
    }
}
