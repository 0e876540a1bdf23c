//! Values as expressions see them — JavaScript's primitive types plus arrays and objects borrowed
//! from the scope — and the conversions JavaScript applies to them (`String()`, `Number()`,
//! truthiness), which the operators are built on.

use std::borrow::Cow;
use std::fmt::Write as _;

use serde_json::{Map, Value as Json};

use super::EvalError;

/// Largest rendered value (and largest intermediate string), in bytes.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// One value during evaluation. Arrays and objects only ever come from the scope, so they are
/// borrowed: a path lookup copies nothing.
#[derive(Debug, Clone)]
pub(super) enum Value<'v> {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(Cow<'v, str>),
    /// Held as the `Vec` itself so that `===` can compare identity, as JavaScript does.
    Array(&'v Vec<Json>),
    Object(&'v Map<String, Json>),
}

impl<'v> Value<'v> {
    /// The value of a JSON node from the scope.
    pub(super) fn from_json(json: &'v Json) -> Value<'v> {
        match json {
            Json::Null => Value::Null,
            Json::Bool(flag) => Value::Bool(*flag),
            Json::Number(number) => Value::Number(number.as_f64().unwrap_or(f64::NAN)),
            Json::String(text) => Value::String(Cow::Borrowed(text)),
            Json::Array(items) => Value::Array(items),
            Json::Object(fields) => Value::Object(fields),
        }
    }

    /// The same value borrowing from `self` (constants in the expression tree are evaluated
    /// this way, without copying their text).
    pub(super) fn reborrow(&self) -> Value<'_> {
        match self {
            Value::String(text) => Value::String(Cow::Borrowed(text)),
            other => other.clone(),
        }
    }

    /// The type name used in error messages.
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Value::Undefined => "undefined",
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    /// JavaScript's `Boolean(value)`: arrays and objects are truthy even when empty.
    pub(super) fn truthy(&self) -> bool {
        match self {
            Value::Undefined | Value::Null => false,
            Value::Bool(flag) => *flag,
            Value::Number(number) => !(*number == 0.0 || number.is_nan()),
            Value::String(text) => !text.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// JavaScript's `Number(value)`, except that arrays and objects go through their JSON text
    /// (consistent with [`Value::write_string`]), which makes them `NaN`.
    pub(super) fn to_number(&self) -> f64 {
        match self {
            Value::Undefined => f64::NAN,
            Value::Null => 0.0,
            Value::Bool(flag) => f64::from(u8::from(*flag)),
            Value::Number(number) => *number,
            Value::String(text) => string_to_number(text),
            Value::Array(_) | Value::Object(_) => f64::NAN,
        }
    }

    /// JavaScript's `String(value)` appended to `out`, except that arrays and objects are
    /// written as compact JSON.
    /// Writes the value into template text: as [`Value::write_string`], but `undefined` and
    /// `null` leave no trace.
    pub(super) fn interpolate(&self, out: &mut String) {
        if !matches!(self, Value::Undefined | Value::Null) {
            self.write_string(out);
        }
    }

    pub(super) fn write_string(&self, out: &mut String) {
        match self {
            Value::Undefined => out.push_str("undefined"),
            Value::Null => out.push_str("null"),
            Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
            Value::Number(number) => write_number(*number, out),
            Value::String(text) => out.push_str(text),
            Value::Array(items) => out.push_str(&compact_json(items)),
            Value::Object(fields) => out.push_str(&compact_json(fields)),
        }
    }

    /// The value as a string, borrowing when it already is one.
    pub(super) fn into_string(self) -> Cow<'v, str> {
        match self {
            Value::String(text) => text,
            other => {
                let mut out = String::new();
                other.write_string(&mut out);
                Cow::Owned(out)
            }
        }
    }

    /// JavaScript's ToPrimitive: arrays and objects become their (JSON) text.
    pub(super) fn into_primitive(self) -> Value<'v> {
        match self {
            Value::Array(_) | Value::Object(_) => Value::String(self.into_string()),
            primitive => primitive,
        }
    }

    /// The typed result of a template: integral numbers without a fraction, `NaN` and the
    /// infinities as `null` (JSON has neither), `undefined` as `null`.
    pub(super) fn into_json(self) -> Result<Json, EvalError> {
        let json = match self {
            Value::Undefined | Value::Null => Json::Null,
            Value::Bool(flag) => Json::Bool(flag),
            Value::Number(number) => number_to_json(number),
            Value::String(text) => {
                check_size(text.len())?;
                Json::String(text.into_owned())
            }
            Value::Array(items) => {
                check_size(json_size(items))?;
                Json::Array(items.clone())
            }
            Value::Object(fields) => {
                check_size(json_size(fields))?;
                Json::Object(fields.clone())
            }
        };
        Ok(json)
    }
}

/// Fails when `size` bytes of output would exceed the limit.
pub(super) fn check_size(size: usize) -> Result<(), EvalError> {
    if size > OUTPUT_LIMIT {
        return Err(EvalError { message: "template output exceeds 64 KiB".to_string() });
    }
    Ok(())
}

/// A JavaScript number as JSON: integers exactly representable in an f64 become JSON integers.
fn number_to_json(number: f64) -> Json {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if number.fract() == 0.0 && number.abs() <= EXACT {
        // `as` is exact here (integral and within ±2^53); it also maps -0 to 0.
        Json::from(number as i64)
    } else {
        serde_json::Number::from_f64(number).map_or(Json::Null, Json::Number)
    }
}

/// JavaScript's `Number.prototype.toString()`: plain decimal for 1e-6 ≤ |x| < 1e21, exponent
/// form (`1e+21`, `1.5e-7`) outside it. Rust's shortest round-trip digits match JavaScript's.
pub(super) fn write_number(number: f64, out: &mut String) {
    if number.is_nan() {
        out.push_str("NaN");
    } else if number.is_infinite() {
        out.push_str(if number > 0.0 { "Infinity" } else { "-Infinity" });
    } else if number == 0.0 {
        out.push('0');
    } else if number.fract() == 0.0 && number.abs() < 1e15 {
        // The common case (counts, ids, randInt), printed as an integer: same text, faster.
        let _ = write!(out, "{}", number as i64);
    } else if (1e-6..1e21).contains(&number.abs()) {
        let _ = write!(out, "{number}");
    } else {
        let start = out.len();
        let _ = write!(out, "{number:e}");
        if let Some(e) = out[start..].find('e') {
            if !out[start + e + 1..].starts_with('-') {
                out.insert(start + e + 1, '+');
            }
        }
    }
}

/// JavaScript's StringToNumber: surrounding whitespace ignored, empty is 0, decimal literals
/// with optional sign and exponent, `0x`/`0o`/`0b` integers, `Infinity`; anything else is NaN.
pub(super) fn string_to_number(text: &str) -> f64 {
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if text.is_empty() {
        return 0.0;
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned == "Infinity" {
        return if text.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    for (prefix, radix) in [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)] {
        if let Some(digits) = text.strip_prefix(prefix) {
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return f64::NAN;
            }
            return digits
                .chars()
                .filter_map(|c| c.to_digit(radix))
                .fold(0.0, |total, digit| total * f64::from(radix) + f64::from(digit));
        }
    }
    // Rust's float syntax is a superset of JavaScript's decimal literal once words ("inf",
    // "NaN") are excluded.
    if !unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || !unsigned.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return f64::NAN;
    }
    text.parse().unwrap_or(f64::NAN)
}

/// Compact JSON text of a borrowed array or object. Serializing a `serde_json` value cannot
/// fail (its map keys are strings), so the error arm is unreachable.
fn compact_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Length of the compact JSON text, counted without building it (stops early past the limit).
fn json_size(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            if self.0 > OUTPUT_LIMIT {
                return Err(std::io::Error::other("over the limit"));
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::template::tests::Fixture;

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        let mut fixture = Fixture::new();
        let table = [
            ("3 * 1024", "3072"),
            ("1 / 3", "0.3333333333333333"),
            ("0.1 + 0.2", "0.30000000000000004"),
            ("1e21", "1e+21"),
            ("123456789012345680000", "123456789012345680000"),
            ("1e-7", "1e-7"),
            ("1.5e-9", "1.5e-9"),
            ("0.000001", "0.000001"),
            ("-0", "0"),
            ("-2.5", "-2.5"),
            ("-1 / 0", "-Infinity"),
        ];
        for (expression, expected) in table {
            assert_eq!(
                fixture.render(&format!("={{{{{expression}}}}}")),
                json!(format!("={expected}")),
                "{expression}"
            );
        }
        assert_eq!(fixture.render("{{ 9007199254740993 }}").to_string(), "9007199254740992");
        assert_eq!(fixture.render("{{ 1e300 }}"), json!(1e300));
    }

    #[test]
    fn strings_index_and_measure_in_utf16_units() {
        let mut fixture = Fixture::new();
        let table = [
            ("'héllo'.length", json!(5)),
            ("'😀'.length", json!(2)),
            ("'abc'[1]", json!("b")),
            ("'abc'['2']", json!("c")),
            ("'abc'[3]", json!(null)),
            ("request.topics['0']", json!("user")),
            ("request.topics['01']", json!(null)),
            ("request.topics[5]", json!(null)),
            ("request.topics[-1]", json!(null)),
            ("request.topics[1.5]", json!(null)),
            ("request.topics['length']", json!(2)),
            ("request.nested['a b']", json!(1)),
            ("request.nested.list[0].name", json!("first")),
            ("request.nested.list[0].name.length", json!(5)),
            ("request.missing.deeper[0].length", json!(null)),
            ("request.stream_enabled.length", json!(null)),
            ("request.ws.connectionId.length", json!(7)),
            ("request['type']", json!("REALTIME")),
        ];
        for (expression, expected) in table {
            assert_eq!(fixture.render(&format!("{{{{{expression}}}}}")), expected, "{expression}");
        }
    }

    #[test]
    fn string_literals_take_javascript_escapes() {
        let mut fixture = Fixture::new();
        let table = [
            (r"{{'it\'s'}}", "it's"),
            (r#"{{"say \"hi\""}}"#, "say \"hi\""),
            (r"{{'a\\b'}}", "a\\b"),
            (r"{{'a\nb\tc'}}", "a\nb\tc"),
            (r"{{'\u00e9\ud83d\ude00'}}", "é😀"),
            ("{{'}}'}}", "}}"),
            ("{{ \"{{\" }}", "{{"),
        ];
        for (source, expected) in table {
            assert_eq!(fixture.render(source), json!(expected), "{source}");
        }
    }
}
