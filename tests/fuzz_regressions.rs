//! Inputs that once crashed a fuzz target (`fuzz/`, `scripts/fuzz.sh`), each replayed through
//! the same library path the target drives. Every test here failed before its fix.

use std::path::Path;
use std::time::Duration;

use prost_reflect::{DynamicMessage, Value};
use streamstorm::chaos::decide::ChaosEngine;
use streamstorm::config::load::compile_load;
use streamstorm::config::parse_profile;
use streamstorm::proto::json::{DefaultFields, FieldNames, message_from_json, message_to_json};
use streamstorm::proto::load_pool;

fn profile(text: &str) -> streamstorm::config::Profile {
    parse_profile(Path::new("fuzz-profile.yaml"), text).unwrap_or_else(|problems| panic!("{problems}"))
}

/// Phases as long as a duration can be: their cycle overflowed `Duration` when summed, a
/// panic on every new stream and every scrape of the phase gauge.
#[test]
fn phases_whose_total_overflows_a_duration() {
    let profile = profile(
        "chaos:\n  phases:\n    - { name: a, duration: 500000000000y }\n    - { name: b, duration: 500000000000y }\n",
    );
    let engine = ChaosEngine::new(profile.chaos.clone());
    assert_eq!(engine.current_phase(&profile.chaos), Some(0));
}

/// A `max_backoff` near the longest duration, jittered upwards after enough failures, no
/// longer fitted a `Duration`: the load client's slot panicked.
#[test]
fn reconnect_backoff_beyond_the_longest_duration() {
    let profile = profile(
        "load:\n  scenarios:\n    - method: myapp.UserService/GetUser\n      streams: 1\n      reconnect: { max_backoff: 500000000000y }\n",
    );
    let plan = compile_load(&profile).unwrap_or_else(|problems| panic!("{problems}"));
    let reconnect = plan.scenarios[0].reconnect;
    assert_eq!(reconnect.backoff(200, 1.0), Duration::MAX);
    assert!(reconnect.backoff(200, -1.0) < Duration::MAX);
    assert_eq!(reconnect.backoff(1, 0.0), Duration::from_secs(1));
}

/// A `FloatValue` or `DoubleValue` holding NaN or an infinity became JSON `null`, which does
/// not read back (and as a field reads back as unset): proto3 JSON spells them as strings.
#[test]
fn non_finite_float_wrappers_as_json() {
    let pool = load_pool(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codec.proto")], &[])
        .unwrap_or_else(|problems| panic!("{problems}"));
    let cases = [
        ("google.protobuf.FloatValue", Value::F32(f32::NAN), "NaN"),
        ("google.protobuf.FloatValue", Value::F32(f32::NEG_INFINITY), "-Infinity"),
        ("google.protobuf.DoubleValue", Value::F64(f64::INFINITY), "Infinity"),
    ];
    for (type_name, value, spelled) in cases {
        let descriptor = pool.get_message_by_name(type_name).unwrap();
        let mut message = DynamicMessage::new(descriptor.clone());
        message.set_field_by_number(1, value.clone());
        for names in [FieldNames::Proto, FieldNames::LowerCamel] {
            let json = message_to_json(&message, names, DefaultFields::Include).unwrap();
            assert_eq!(json, serde_json::json!(spelled), "{type_name}");
            let back = message_from_json(&descriptor, &json).unwrap_or_else(|error| panic!("{error}"));
            let read = back.get_field_by_number(1).unwrap().into_owned();
            assert_eq!(format!("{read:?}"), format!("{value:?}"), "{type_name}");
        }
    }
    // Finite values keep prost-reflect's bare numbers.
    let descriptor = pool.get_message_by_name("google.protobuf.DoubleValue").unwrap();
    let mut message = DynamicMessage::new(descriptor);
    message.set_field_by_number(1, Value::F64(1.5));
    assert_eq!(
        message_to_json(&message, FieldNames::Proto, DefaultFields::Include).unwrap(),
        serde_json::json!(1.5)
    );
}

/// A `FieldMask` whose paths JSON cannot keep apart (libFuzzer's input: a path, then an empty
/// one) was written as `"…,"`, which reads back as one path. Such a mask is now an error to
/// write; masks JSON can hold still round-trip.
#[test]
fn field_masks_that_json_cannot_hold() {
    let pool = load_pool(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/codec.proto")], &[])
        .unwrap_or_else(|problems| panic!("{problems}"));
    let descriptor = pool.get_message_by_name("google.protobuf.FieldMask").unwrap();
    // The fuzz input without its selector byte: paths "\n\n88\n\n\n\n88" and "", then unknown fields.
    let found: &[u8] = b"\x0a\x0a\x0a\x0a\x38\x38\x0a\x0a\x0a\x0a\x38\x38\x0a\x00\x1d\x00\xf5\x0a\x4f\x79\x38\x38\x38\x0a\x0a\x0a\x4f\x79";
    let decoded = DynamicMessage::decode(descriptor.clone(), found).unwrap();
    let error = message_to_json(&decoded, FieldNames::Proto, DefaultFields::Include).unwrap_err();
    assert!(error.reason.contains("cannot be written as JSON"), "{error}");
    let mask = |paths: &[&str]| {
        let mut message = DynamicMessage::new(descriptor.clone());
        let paths = paths.iter().map(|path| Value::String((*path).to_owned())).collect();
        message.set_field_by_number(1, Value::List(paths));
        message
    };
    for paths in [&["", "a"][..], &["a,b"]] {
        assert!(
            message_to_json(&mask(paths), FieldNames::LowerCamel, DefaultFields::Include).is_err(),
            "{paths:?}"
        );
    }
    let json = message_to_json(&mask(&["a.b_c", "d"]), FieldNames::Proto, DefaultFields::Include).unwrap();
    assert_eq!(json, serde_json::json!("a.bC,d"));
    let back = message_from_json(&descriptor, &json).unwrap();
    assert_eq!(back, mask(&["a.b_c", "d"]));
}
