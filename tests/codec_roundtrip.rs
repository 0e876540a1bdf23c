//! Property tests: random messages covering every field kind (nested, repeated, maps, oneofs,
//! enums, bytes, 64-bit integers, well-known types) survive protobuf bytes and both JSON forms.

mod common;

use proptest::prelude::*;
use prost::Message;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage, Value,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use streamstorm::proto::json::{DefaultFields, FieldNames, message_from_json, message_to_json};

fn everything() -> MessageDescriptor {
    let pool = streamstorm::proto::load_pool(&[common::repo_root().join("tests/fixtures/codec.proto")], &[])
        .unwrap();
    common::message_type(&pool, "codec.test.Everything")
}

/// Decoding what was encoded drops fields set to their implicit defaults: compare that form.
fn normalized(message: &DynamicMessage) -> DynamicMessage {
    DynamicMessage::decode(message.descriptor(), message.encode_to_vec().as_slice()).unwrap()
}

fn random_message(rng: &mut StdRng, descriptor: &MessageDescriptor, depth: u32) -> DynamicMessage {
    if let Some(message) = random_well_known(rng, descriptor) {
        return message;
    }
    let mut message = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        let is_message = matches!(field.kind(), Kind::Message(_));
        if !rng.random_bool(0.6) || (is_message && depth >= 3) {
            continue;
        }
        let value = if field.is_map() {
            random_map(rng, &field, depth)
        } else if field.is_list() {
            Value::List(
                (0..rng.random_range(0..4)).map(|_| random_value(rng, &field.kind(), depth)).collect(),
            )
        } else {
            random_value(rng, &field.kind(), depth)
        };
        message.set_field(&field, value);
    }
    message
}

fn random_map(rng: &mut StdRng, field: &FieldDescriptor, depth: u32) -> Value {
    let Kind::Message(entry) = field.kind() else { unreachable!("map fields are messages") };
    let (key_kind, value_kind) = (entry.map_entry_key_field().kind(), entry.map_entry_value_field().kind());
    let map = (0..rng.random_range(0..4))
        .map(|_| {
            let key = match random_value(rng, &key_kind, depth) {
                Value::String(s) => MapKey::String(s),
                Value::I64(n) => MapKey::I64(n),
                Value::Bool(b) => MapKey::Bool(b),
                other => panic!("unexpected map key {other:?}"),
            };
            (key, random_value(rng, &value_kind, depth))
        })
        .collect();
    Value::Map(map)
}

fn random_value(rng: &mut StdRng, kind: &Kind, depth: u32) -> Value {
    match kind {
        Kind::Double => Value::F64(rng.random_range(-1e12..1e12)),
        Kind::Float => Value::F32(rng.random_range(-1e6f32..1e6)),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(rng.random()),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(rng.random()),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(rng.random()),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(rng.random()),
        Kind::Bool => Value::Bool(rng.random()),
        Kind::String => Value::String(random_text(rng)),
        Kind::Bytes => {
            Value::Bytes((0..rng.random_range(0..16)).map(|_| rng.random::<u8>()).collect::<Vec<_>>().into())
        }
        Kind::Enum(enumeration) => {
            let values: Vec<_> = enumeration.values().collect();
            Value::EnumNumber(values[rng.random_range(0..values.len())].number())
        }
        Kind::Message(descriptor) => Value::Message(random_message(rng, descriptor, depth + 1)),
    }
}

fn random_text(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &["a", "Zz", " ", "é", "日本", "\"", "\\", "\n", "🦀", "{{x}}", "0"];
    (0..rng.random_range(0..5)).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect()
}

/// Well-known types whose JSON form constrains their values.
fn random_well_known(rng: &mut StdRng, descriptor: &MessageDescriptor) -> Option<DynamicMessage> {
    let mut message = DynamicMessage::new(descriptor.clone());
    match descriptor.full_name() {
        // Years 0001..9999, as RFC 3339 allows.
        "google.protobuf.Timestamp" => {
            message
                .set_field_by_name("seconds", Value::I64(rng.random_range(-62_135_596_800..253_402_300_799)));
            message.set_field_by_name("nanos", Value::I32(rng.random_range(0..1_000_000_000)));
        }
        "google.protobuf.Duration" => {
            let seconds: i64 = rng.random_range(-315_576_000_000..315_576_000_000);
            message.set_field_by_name("seconds", Value::I64(seconds));
            message.set_field_by_name(
                "nanos",
                Value::I32(rng.random_range(0..1_000_000_000) * seconds.signum() as i32),
            );
        }
        "google.protobuf.FieldMask" => {
            let paths = (0..rng.random_range(0..3))
                .map(|i| Value::String(format!("field_{}.sub", ["a", "bc"][i % 2])));
            message.set_field_by_name("paths", Value::List(paths.collect()));
        }
        // Struct and Value take their JSON-mapped form: any JSON with finite numbers.
        "google.protobuf.Struct" | "google.protobuf.Value" => {
            let json = serde_json::json!({"n": rng.random_range(-1e6..1e6), "s": random_text(rng), "l": [true, null, {"x": []}]});
            message = message_from_json(descriptor, &json).unwrap();
        }
        _ => return None,
    }
    Some(message)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn survives_the_wire(seed in any::<u64>()) {
        let descriptor = everything();
        let message = random_message(&mut StdRng::seed_from_u64(seed), &descriptor, 0);
        let decoded = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice()).unwrap();
        prop_assert_eq!(normalized(&message), decoded);
    }

    #[test]
    fn survives_json_in_both_name_styles(seed in any::<u64>()) {
        let descriptor = everything();
        let message = normalized(&random_message(&mut StdRng::seed_from_u64(seed), &descriptor, 0));
        for (names, defaults) in [(FieldNames::Proto, DefaultFields::Include), (FieldNames::LowerCamel, DefaultFields::Skip)] {
            let json = message_to_json(&message, names, defaults).unwrap();
            let back = message_from_json(&descriptor, &json).unwrap_or_else(|e| panic!("{e}: {json}"));
            prop_assert_eq!(&message, &normalized(&back), "via {}", json);
        }
    }
}

#[test]
fn json_mapping_follows_proto3_conventions() {
    let descriptor = everything();
    let json = serde_json::json!({
        "i64": "-9007199254740993", "u64": "18446744073709551615", "by": "AAEC/w==", "color": "GREEN",
        "at": "2024-01-01T12:00:00.5Z", "took": "1.5s", "wrapped": "7", "maybe_name": "x",
        "mask": "a.b,cD", "byId": {"-1": "minus"}, "text": "chosen"
    });
    let message = message_from_json(&descriptor, &json).unwrap();
    let rendered = message_to_json(&message, FieldNames::LowerCamel, DefaultFields::Skip).unwrap();
    assert_eq!(
        rendered,
        serde_json::json!({
            "i64": "-9007199254740993", "u64": "18446744073709551615", "by": "AAEC/w==", "color": "GREEN",
            "at": "2024-01-01T12:00:00.500Z", "took": "1.500s", "wrapped": "7", "maybeName": "x",
            "mask": "a.b,cD", "byId": {"-1": "minus"}, "text": "chosen"
        })
    );
    let unknown = message_from_json(&descriptor, &serde_json::json!({"nope": 1})).unwrap_err();
    assert!(unknown.to_string().contains("nope"), "{unknown}");
}
