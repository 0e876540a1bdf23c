//! Evaluates a compiled expression against a [`Scope`]. Member access never fails: reading
//! through `undefined`, `null` or a missing field gives `undefined` (like JavaScript's `?.`),
//! so templates can probe optional fields.

use std::borrow::Cow;

use super::expr::{Expr, Root, Step};
use super::operators::BinaryOp;
use super::value::Value;
use super::{EvalError, Scope};

/// Evaluates `expr`. The result may borrow from the expression (string literals) and from the
/// scope's data (strings, arrays, objects), but not from the scope itself.
pub(super) fn evaluate<'v, 'a: 'v>(expr: &'v Expr, scope: &mut Scope<'a>) -> Result<Value<'v>, EvalError> {
    match expr {
        Expr::Constant(value) => Ok(value.reborrow()),
        Expr::Variable(root) => Ok(variable(*root, scope)),
        Expr::Member { base, steps } => {
            let mut value = evaluate(base, scope)?;
            for step in steps {
                value = match step {
                    Step::Field(name) => member(value, name),
                    Step::Index(index) => {
                        let key = evaluate(index, scope)?;
                        index_member(value, key)
                    }
                };
            }
            Ok(value)
        }
        Expr::Not(operand) => Ok(Value::Bool(!evaluate(operand, scope)?.truthy())),
        Expr::Negate(operand) => Ok(Value::Number(-evaluate(operand, scope)?.to_number())),
        // `&&` and `||` return an operand, evaluating the right one only when needed.
        Expr::Binary { op: BinaryOp::And, left, right } => {
            let left = evaluate(left, scope)?;
            if left.truthy() { evaluate(right, scope) } else { Ok(left) }
        }
        Expr::Binary { op: BinaryOp::Or, left, right } => {
            let left = evaluate(left, scope)?;
            if left.truthy() { Ok(left) } else { evaluate(right, scope) }
        }
        Expr::Binary { op, left, right } => {
            let left = evaluate(left, scope)?;
            let right = evaluate(right, scope)?;
            op.apply(left, right)
        }
        Expr::Call(call) => call.evaluate(scope),
    }
}

fn variable<'v, 'a: 'v>(root: Root, scope: &Scope<'a>) -> Value<'v> {
    match root {
        Root::Request => Value::from_json(scope.request),
        Root::Message => scope.message.map_or(Value::Undefined, Value::from_json),
        Root::State => Value::Object(scope.state),
        Root::ConnectionId => Value::String(Cow::Borrowed(scope.connection_id)),
        // Stream ids stay far below 2^53, where the conversion is exact.
        Root::StreamId => Value::Number(scope.stream_id as f64),
    }
}

/// `value.name` (and `value["name"]`): object fields; `length`, and element indexes written as
/// strings, on arrays and strings; `undefined` for anything else.
fn member<'v>(value: Value<'v>, name: &str) -> Value<'v> {
    match value {
        Value::Object(fields) => fields.get(name).map_or(Value::Undefined, Value::from_json),
        Value::Array(items) if name == "length" => Value::Number(items.len() as f64),
        Value::String(text) if name == "length" => Value::Number(text.encode_utf16().count() as f64),
        Value::Array(_) | Value::String(_) => match array_index(name) {
            Some(position) => element(value, position),
            None => Value::Undefined,
        },
        _ => Value::Undefined,
    }
}

/// `value[key]`: a number indexes arrays and strings directly; any other key is converted to
/// a string and read as a field.
fn index_member<'v>(value: Value<'v>, key: Value<'v>) -> Value<'v> {
    match (&value, key) {
        (Value::Array(_) | Value::String(_), Value::Number(number)) => {
            if number.fract() == 0.0 && (0.0..usize::MAX as f64).contains(&number) {
                // Exact: integral, non-negative and in range.
                element(value, number as usize)
            } else {
                // JavaScript reads `xs[1.5]` or `xs[-1]` as a (missing) property.
                Value::Undefined
            }
        }
        (_, key) => member(value, &key.into_string()),
    }
}

/// The element of an array, or the UTF-16 code unit of a string (as a one-character string),
/// at `position`; `undefined` past the end.
fn element(value: Value<'_>, position: usize) -> Value<'_> {
    match value {
        Value::Array(items) => items.get(position).map_or(Value::Undefined, Value::from_json),
        Value::String(text) => match text.encode_utf16().nth(position) {
            Some(unit) => {
                let character = char::decode_utf16([unit]).next().and_then(Result::ok);
                Value::String(Cow::Owned(character.unwrap_or(char::REPLACEMENT_CHARACTER).to_string()))
            }
            None => Value::Undefined,
        },
        _ => Value::Undefined,
    }
}

/// A canonical array index written as a string: `"0"`, `"12"`, not `"01"` or `"+1"`.
fn array_index(name: &str) -> Option<usize> {
    let canonical = name == "0" || (!name.starts_with('0') && name.bytes().all(|byte| byte.is_ascii_digit()));
    if canonical { name.parse().ok() } else { None }
}
