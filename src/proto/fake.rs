//! Plausible data for any message type, for the default responder: each field filled by its
//! type and, for strings and numbers, by its name (`email` an e-mail, `user_id` an id,
//! `created_at` the time of sending, `city` a city), using the `fake` crate. Everything is
//! drawn from the caller's random generator, so the same seed gives the same data; only times
//! move with the clock.

use std::time::{SystemTime, UNIX_EPOCH};

use fake::Fake;
use fake::faker::address::en::{CityName, CountryName, StreetName, ZipCode};
use fake::faker::company::en::CompanyName;
use fake::faker::internet::en::{SafeEmail, Username};
use fake::faker::lorem::en::{Sentence, Word, Words};
use fake::faker::name::en::{FirstName, LastName, Name};
use fake::faker::phone_number::en::PhoneNumber;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};
use rand::Rng;

/// Nested messages deeper than this are left empty, so recursive types end.
const MAX_DEPTH: usize = 4;
/// Repeated fields and maps get between one and this many items.
const MAX_ITEMS: usize = 3;

/// Where in a stream the message goes, for fields that count (`sequence`).
#[derive(Debug, Clone, Copy)]
pub struct FakeContext {
    /// 1 for the first message of a call.
    pub sequence: u64,
    /// What time fields say: the message's sending time.
    pub now: SystemTime,
}

/// A message of type `descriptor` with every field filled (one field of each `oneof`).
pub fn fake_message(
    descriptor: &MessageDescriptor,
    context: FakeContext,
    rng: &mut impl Rng,
) -> DynamicMessage {
    fill(descriptor, context, rng, 0)
}

fn fill(
    descriptor: &MessageDescriptor,
    context: FakeContext,
    rng: &mut impl Rng,
    depth: usize,
) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    if let Some(special) = well_known(descriptor, context, rng) {
        return special;
    }
    if depth >= MAX_DEPTH {
        return message;
    }
    for field in descriptor.fields() {
        // One member of a oneof: the first, so the choice is stable for a type.
        if let Some(oneof) = field.containing_oneof().filter(|oneof| !oneof.is_synthetic()) {
            if oneof.fields().next().is_some_and(|first| first.number() != field.number()) {
                continue;
            }
        }
        let value = if field.is_map() {
            fake_map(&field, context, rng, depth)
        } else if field.is_list() {
            let count = rng.random_range(1..=MAX_ITEMS);
            Value::List((0..count).map(|_| fake_value(&field, context, rng, depth)).collect())
        } else {
            fake_value(&field, context, rng, depth)
        };
        message.set_field(&field, value);
    }
    message
}

/// `google.protobuf.Timestamp` near now, `Duration` of a few seconds; other well-known
/// types (`Struct`, `Any`, wrappers) are filled like any message, or left empty.
fn well_known(
    descriptor: &MessageDescriptor,
    context: FakeContext,
    rng: &mut impl Rng,
) -> Option<DynamicMessage> {
    let mut message = DynamicMessage::new(descriptor.clone());
    let (seconds, nanos) = match descriptor.full_name() {
        "google.protobuf.Timestamp" => {
            let at = context.now.duration_since(UNIX_EPOCH).unwrap_or_default();
            (at.as_secs() as i64, at.subsec_nanos() as i32)
        }
        "google.protobuf.Duration" => (rng.random_range(1..=60), 0),
        "google.protobuf.Struct"
        | "google.protobuf.Value"
        | "google.protobuf.ListValue"
        | "google.protobuf.Any" => {
            return Some(message);
        }
        _ => return None,
    };
    message.set_field_by_name("seconds", Value::I64(seconds));
    message.set_field_by_name("nanos", Value::I32(nanos));
    Some(message)
}

fn fake_map(field: &FieldDescriptor, context: FakeContext, rng: &mut impl Rng, depth: usize) -> Value {
    let Kind::Message(entry) = field.kind() else { return Value::Map(Default::default()) };
    let (key_field, value_field) = (entry.map_entry_key_field(), entry.map_entry_value_field());
    let count = rng.random_range(1..=MAX_ITEMS);
    let map = (0..count)
        .filter_map(|_| {
            let key = match fake_value(&key_field, context, rng, depth) {
                Value::String(text) => MapKey::String(text),
                Value::Bool(flag) => MapKey::Bool(flag),
                Value::I32(number) => MapKey::I32(number),
                Value::I64(number) => MapKey::I64(number),
                Value::U32(number) => MapKey::U32(number),
                Value::U64(number) => MapKey::U64(number),
                _ => return None,
            };
            Some((key, fake_value(&value_field, context, rng, depth)))
        })
        .collect();
    Value::Map(map)
}

fn fake_value(field: &FieldDescriptor, context: FakeContext, rng: &mut impl Rng, depth: usize) -> Value {
    let name = field.name().to_ascii_lowercase();
    match field.kind() {
        Kind::String => Value::String(fake_text(&name, context, rng)),
        Kind::Bytes => {
            Value::Bytes((0..rng.random_range(8..=32)).map(|_| rng.random::<u8>()).collect::<Vec<_>>().into())
        }
        Kind::Bool => Value::Bool(rng.random()),
        Kind::Double => Value::F64(fake_real(&name, rng)),
        Kind::Float => Value::F32(fake_real(&name, rng) as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(fake_integer(&name, context, rng).min(i32::MAX as u64) as i32)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(fake_integer(&name, context, rng) as i64),
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(fake_integer(&name, context, rng).min(u32::MAX as u64) as u32)
        }
        Kind::Uint64 | Kind::Fixed64 => Value::U64(fake_integer(&name, context, rng)),
        Kind::Enum(descriptor) => {
            // Value 0 is by convention UNSPECIFIED: draw among the others when there are any.
            let values: Vec<i32> = descriptor.values().map(|value| value.number()).collect();
            let named: Vec<i32> = values.iter().copied().filter(|number| *number != 0).collect();
            let pool = if named.is_empty() { &values } else { &named };
            Value::EnumNumber(pool.get(rng.random_range(0..pool.len().max(1))).copied().unwrap_or(0))
        }
        Kind::Message(descriptor) => Value::Message(fill(&descriptor, context, rng, depth + 1)),
    }
}

/// Text that fits a field's name.
fn fake_text(name: &str, context: FakeContext, rng: &mut impl Rng) -> String {
    let ends = |suffix: &str| name == suffix || name.ends_with(&format!("_{suffix}"));
    let has = |part: &str| name.contains(part);
    if has("email") {
        SafeEmail().fake_with_rng(rng)
    } else if ends("id") || has("uuid") {
        uuid::Builder::from_random_bytes(rng.random()).into_uuid().hyphenated().to_string()
    } else if has("first_name") || name == "given_name" {
        FirstName().fake_with_rng(rng)
    } else if has("last_name") || name == "family_name" || name == "surname" {
        LastName().fake_with_rng(rng)
    } else if has("user_name") || has("username") || has("login") || has("handle") {
        Username().fake_with_rng(rng)
    } else if has("company") || has("organization") {
        CompanyName().fake_with_rng(rng)
    } else if ends("name") || has("author") || has("sender") {
        Name().fake_with_rng(rng)
    } else if has("phone") || has("mobile") {
        PhoneNumber().fake_with_rng(rng)
    } else if has("street") || has("address") {
        format!("{} {}", rng.random_range(1..=999), StreetName().fake_with_rng::<String, _>(rng))
    } else if has("city") {
        CityName().fake_with_rng(rng)
    } else if has("country") {
        CountryName().fake_with_rng(rng)
    } else if has("zip") || has("postal") || has("postcode") {
        ZipCode().fake_with_rng(rng)
    } else if has("url") || has("uri") || has("link") || has("website") {
        format!("https://example.com/{}", Word().fake_with_rng::<String, _>(rng))
    } else if ends("at") || has("time") || has("date") {
        humantime::format_rfc3339_millis(context.now).to_string()
    } else if has("checksum") || has("hash") || has("token") || has("digest") {
        (0..16).map(|_| format!("{:02x}", rng.random::<u8>())).collect()
    } else if ["message", "content", "text", "body", "description", "comment", "summary", "note"]
        .iter()
        .any(|part| has(part))
    {
        Sentence(4..10).fake_with_rng(rng)
    } else if has("title") || has("subject") {
        Words(2..5).fake_with_rng::<Vec<String>, _>(rng).join(" ")
    } else {
        Word().fake_with_rng(rng)
    }
}

/// A whole number that fits a field's name: a counter for `sequence`, epoch milliseconds for
/// times, small counts otherwise.
fn fake_integer(name: &str, context: FakeContext, rng: &mut impl Rng) -> u64 {
    let has = |part: &str| name.contains(part);
    if has("sequence") || name == "seq" || has("offset") {
        context.sequence
    } else if has("time") || name.ends_with("_at") || name.ends_with("_ms") || has("date") {
        context.now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
    } else if has("age") {
        rng.random_range(18..=90)
    } else if has("year") {
        rng.random_range(1990..=2030)
    } else if has("port") {
        rng.random_range(1024..=65535)
    } else {
        rng.random_range(1..=1000)
    }
}

/// A number with two decimals in a range that fits the field's name.
fn fake_real(name: &str, rng: &mut impl Rng) -> f64 {
    let has = |part: &str| name.contains(part);
    let (low, high) = if has("lat") {
        (-90.0, 90.0)
    } else if has("lon") || has("lng") {
        (-180.0, 180.0)
    } else if ["ratio", "rate", "percent", "probability", "score"].iter().any(|part| has(part)) {
        (0.0, 1.0)
    } else {
        (1.0, 1000.0)
    };
    (rng.random_range(low..high) * 100.0_f64).round() / 100.0
}
