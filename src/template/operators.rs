//! The binary operators with JavaScript's semantics: `+` concatenating when either side is a
//! string, loose (`==`) and strict (`===`) equality, and comparisons that are numeric unless
//! both sides are strings. `&&` and `||` short-circuit, so they live in the evaluator.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::EvalError;
use super::value::{Value, check_size};

/// An operator of the expression language that evaluates both operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BinaryOp {
    Multiply,
    Divide,
    Remainder,
    Add,
    Subtract,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    LooseEqual,
    LooseNotEqual,
    StrictEqual,
    StrictNotEqual,
    And,
    Or,
}

impl BinaryOp {
    /// JavaScript's precedence: a higher number binds tighter. All are left-associative.
    pub(super) fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::LooseEqual
            | BinaryOp::LooseNotEqual
            | BinaryOp::StrictEqual
            | BinaryOp::StrictNotEqual => 3,
            BinaryOp::Less | BinaryOp::LessOrEqual | BinaryOp::Greater | BinaryOp::GreaterOrEqual => 4,
            BinaryOp::Add | BinaryOp::Subtract => 5,
            BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Remainder => 6,
        }
    }

    /// Applies an operator other than `&&` and `||` (which need their right side unevaluated).
    pub(super) fn apply<'v>(self, left: Value<'v>, right: Value<'v>) -> Result<Value<'v>, EvalError> {
        let number =
            |operation: fn(f64, f64) -> f64| Value::Number(operation(left.to_number(), right.to_number()));
        let value = match self {
            BinaryOp::Add => return add(left, right),
            BinaryOp::Subtract => number(|a, b| a - b),
            BinaryOp::Multiply => number(|a, b| a * b),
            BinaryOp::Divide => number(|a, b| a / b),
            // Rust's `%` on f64 is JavaScript's: truncated, with the sign of the dividend.
            BinaryOp::Remainder => number(|a, b| a % b),
            BinaryOp::Less => Value::Bool(compare(left, right) == Some(Ordering::Less)),
            BinaryOp::Greater => Value::Bool(compare(left, right) == Some(Ordering::Greater)),
            BinaryOp::LessOrEqual => {
                Value::Bool(matches!(compare(left, right), Some(Ordering::Less | Ordering::Equal)))
            }
            BinaryOp::GreaterOrEqual => {
                Value::Bool(matches!(compare(left, right), Some(Ordering::Greater | Ordering::Equal)))
            }
            BinaryOp::LooseEqual => Value::Bool(loose_equal(left, right)),
            BinaryOp::LooseNotEqual => Value::Bool(!loose_equal(left, right)),
            BinaryOp::StrictEqual => Value::Bool(strict_equal(&left, &right)),
            BinaryOp::StrictNotEqual => Value::Bool(!strict_equal(&left, &right)),
            BinaryOp::And | BinaryOp::Or => {
                return Err(EvalError { message: "internal: logical operator applied eagerly".to_string() });
            }
        };
        Ok(value)
    }
}

/// `+`: string concatenation when either primitive is a string, numeric addition otherwise.
fn add<'v>(left: Value<'v>, right: Value<'v>) -> Result<Value<'v>, EvalError> {
    let (left, right) = (left.into_primitive(), right.into_primitive());
    if !matches!(left, Value::String(_)) && !matches!(right, Value::String(_)) {
        return Ok(Value::Number(left.to_number() + right.to_number()));
    }
    let mut text = left.into_string().into_owned();
    right.write_string(&mut text);
    check_size(text.len())?;
    Ok(Value::String(Cow::Owned(text)))
}

/// `<` and friends: strings compare by UTF-16 code units as in JavaScript; anything else
/// numerically, with `None` when either side is `NaN` (every comparison is then false).
fn compare(left: Value<'_>, right: Value<'_>) -> Option<Ordering> {
    match (left.into_primitive(), right.into_primitive()) {
        (Value::String(a), Value::String(b)) => Some(a.encode_utf16().cmp(b.encode_utf16())),
        (a, b) => a.to_number().partial_cmp(&b.to_number()),
    }
}

/// `===`: same type and value; `NaN` differs from itself; arrays and objects by identity.
pub(super) fn strict_equal(left: &Value<'_>, right: &Value<'_>) -> bool {
    match (left, right) {
        (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a == b,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => std::ptr::eq(*a, *b),
        (Value::Object(a), Value::Object(b)) => std::ptr::eq(*a, *b),
        _ => false,
    }
}

/// `==`: JavaScript's IsLooselyEqual — `null == undefined`, numbers against numeric strings,
/// booleans as 0/1, arrays and objects through their text when compared with a primitive.
pub(super) fn loose_equal(left: Value<'_>, right: Value<'_>) -> bool {
    use Value::{Array, Bool, Null, Number, Object, String, Undefined};
    match (left, right) {
        (Undefined | Null, Undefined | Null) => true,
        (Undefined | Null, _) | (_, Undefined | Null) => false,
        (Number(a), String(b)) | (String(b), Number(a)) => a == super::value::string_to_number(&b),
        (Bool(a), other) | (other, Bool(a)) => loose_equal(Number(f64::from(u8::from(a))), other),
        (object @ (Array(_) | Object(_)), primitive @ (Number(_) | String(_)))
        | (primitive @ (Number(_) | String(_)), object @ (Array(_) | Object(_))) => {
            loose_equal(object.into_primitive(), primitive)
        }
        (a, b) => strict_equal(&a, &b),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use crate::template::tests::Fixture;

    fn check(table: &[(&str, Json)]) {
        let mut fixture = Fixture::new();
        for (expression, expected) in table {
            assert_eq!(&fixture.render(&format!("{{{{{expression}}}}}")), expected, "{expression}");
        }
    }

    #[test]
    fn precedence_and_associativity_follow_javascript() {
        check(&[
            ("1 + 2 * 3", json!(7)),
            ("(1 + 2) * 3", json!(9)),
            ("10 - 4 - 3", json!(3)),
            ("12 / 2 / 3", json!(2)),
            ("2 * 3 % 4", json!(2)),
            ("1 + 2 < 4", json!(true)),
            ("1 < 2 == true", json!(true)),
            ("!0 + 1", json!(2)),
            ("-2 * 3", json!(-6)),
            ("- -2", json!(2)),
            ("-(1 + 2)", json!(-3)),
            ("1 || 0 && 0", json!(1)),
            ("0 && 1 || 2", json!(2)),
            ("1 == 1 && 2 < 3", json!(true)),
            ("'a' + 1 + 2", json!("a12")),
            ("1 + 2 + 'a'", json!("3a")),
            ("!request.missing", json!(true)),
            ("!!request.topics.length", json!(true)),
        ]);
    }

    #[test]
    fn logical_operators_return_an_operand() {
        check(&[
            ("0 || 'x'", json!("x")),
            ("'' || 5", json!(5)),
            ("'a' || 5", json!("a")),
            ("1 && 'y'", json!("y")),
            ("0 && 'y'", json!(0)),
            ("null && request.missing.deeper", Json::Null),
            ("request.topics || 1", json!(["user", "payment"])),
            ("request.empty_list || 1", json!([])),
        ]);
    }

    #[test]
    fn truthiness_follows_javascript() {
        check(&[
            ("!!request.empty_list", json!(true)),
            ("!!request.empty_object", json!(true)),
            ("!!''", json!(false)),
            ("!!'0'", json!(true)),
            ("!!'false'", json!(true)),
            ("!!(0 / 0)", json!(false)),
            ("!!-1", json!(true)),
            ("!!null", json!(false)),
            ("!!undefined", json!(false)),
        ]);
    }

    #[test]
    fn arithmetic_converts_like_javascript() {
        check(&[
            ("'5' * '2'", json!(10)),
            ("'5' - 2", json!(3)),
            ("'5' + 2", json!("52")),
            ("' 12 ' * 1", json!(12)),
            ("'0x10' * 1", json!(16)),
            ("'' * 1", json!(0)),
            ("'1e3' - 0", json!(1000)),
            ("'abc' * 1", Json::Null),
            ("true + 1", json!(2)),
            ("null + 1", json!(1)),
            ("undefined + 1", Json::Null),
            ("7 % -3", json!(1)),
            ("-7 % 3", json!(-1)),
            ("5.5 % 2", json!(1.5)),
            ("-'3'", json!(-3)),
            ("request.topics + 1", json!(r#"["user","payment"]1"#)),
            ("'n=' + null + undefined + true", json!("n=nullundefinedtrue")),
        ]);
    }

    #[test]
    fn equality_and_comparison_follow_javascript() {
        check(&[
            ("1 == '1'", json!(true)),
            ("1 === '1'", json!(false)),
            ("1 != '1'", json!(false)),
            ("1 !== '1'", json!(true)),
            ("null == undefined", json!(true)),
            ("null === undefined", json!(false)),
            ("0 == ''", json!(true)),
            ("0 == null", json!(false)),
            ("undefined == 0", json!(false)),
            ("true == 1", json!(true)),
            ("'1' == true", json!(true)),
            ("'2' == true", json!(false)),
            ("(0 / 0) == (0 / 0)", json!(false)),
            ("(0 / 0) != (0 / 0)", json!(true)),
            ("'abc' === 'abc'", json!(true)),
            ("request.topics === request.topics", json!(true)),
            ("request.topics == request.empty_list", json!(false)),
            ("request.empty_object == request.nested", json!(false)),
            ("request.topics == '[\"user\",\"payment\"]'", json!(true)),
            ("'2' > '10'", json!(true)),
            ("2 > '10'", json!(false)),
            ("'a' < 'b'", json!(true)),
            ("'B' < 'a'", json!(true)),
            ("'abc' <= 'abc'", json!(true)),
            ("undefined < 1", json!(false)),
            ("undefined >= 1", json!(false)),
            ("null >= 0", json!(true)),
            ("'x' < 1", json!(false)),
            ("'x' >= 1", json!(false)),
            ("true > false", json!(true)),
        ]);
    }
}
