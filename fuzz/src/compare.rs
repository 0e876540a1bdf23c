//! Message equality for round-trip checks: like `DynamicMessage`'s `==`, except that floats
//! compare by bits, so a NaN read from the wire equals itself after a round trip.

use prost_reflect::{DynamicMessage, Value};

/// True when both messages set the same fields to the same values and keep the same unknown
/// fields.
pub fn same_message(a: &DynamicMessage, b: &DynamicMessage) -> bool {
    let fields_a: Vec<_> = a.fields().collect();
    let fields_b: Vec<_> = b.fields().collect();
    fields_a.len() == fields_b.len()
        && fields_a.iter().zip(&fields_b).all(|((field_a, value_a), (field_b, value_b))| {
            field_a.number() == field_b.number() && same_value(value_a, value_b)
        })
        && a.unknown_fields().eq(b.unknown_fields())
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (Value::Message(x), Value::Message(y)) => same_message(x, y),
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(key, x)| y.get(key).is_some_and(|y| same_value(x, y)))
        }
        _ => a == b,
    }
}
