//! The helpers templates can call (Handlebars style: `randInt 1 24`), with their arity checked
//! at compile time and their randomness drawn from the scope's generator only, so a fixed seed
//! gives fixed output.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake::Fake;
use fake::faker::lorem::en::Sentence;
use rand::Rng;
use rand::rngs::StdRng;

use super::eval::evaluate;
use super::expr::Expr;
use super::value::Value;
use super::{EvalError, Scope};

/// Helper names and how many arguments each takes.
pub(super) const HELPERS: &[(&str, usize)] = &[
    ("uuid", 0),
    ("now", 0),
    ("randInt", 2),
    ("randFromArray", 1),
    ("randSentence", 0),
    ("randParagraph", 0),
];

/// Largest magnitude `randInt` accepts: integers beyond it are not exact as numbers.
const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_991.0;
/// `randSentence` draws this many words, `randParagraph` this many sentences.
const SENTENCE_WORDS: std::ops::Range<usize> = 4..10;
const PARAGRAPH_SENTENCES: std::ops::Range<usize> = 3..6;

/// A helper call with its arguments compiled.
#[derive(Debug, Clone)]
pub(super) enum Call {
    Uuid,
    /// `now`, or `now+1h` style: shifted by this many seconds.
    Now {
        offset_seconds: i64,
    },
    RandInt {
        min: Box<Expr>,
        max: Box<Expr>,
    },
    RandFromArray(Box<Expr>),
    RandSentence,
    RandParagraph,
}

impl Call {
    /// Builds the call for a helper listed in [`HELPERS`], given exactly its arity.
    pub(super) fn new(name: &str, arguments: Vec<Expr>) -> Option<Call> {
        let mut arguments = arguments.into_iter().map(Box::new);
        let call = match name {
            "uuid" => Call::Uuid,
            "now" => Call::Now { offset_seconds: 0 },
            "randInt" => Call::RandInt { min: arguments.next()?, max: arguments.next()? },
            "randFromArray" => Call::RandFromArray(arguments.next()?),
            "randSentence" => Call::RandSentence,
            "randParagraph" => Call::RandParagraph,
            _ => return None,
        };
        Some(call)
    }

    /// The argument expressions, in order.
    pub(super) fn arguments(&self) -> Vec<&Expr> {
        match self {
            Call::RandInt { min, max } => vec![min, max],
            Call::RandFromArray(items) => vec![items],
            Call::Uuid | Call::Now { .. } | Call::RandSentence | Call::RandParagraph => Vec::new(),
        }
    }

    pub(super) fn evaluate<'v, 'a: 'v>(&'v self, scope: &mut Scope<'a>) -> Result<Value<'v>, EvalError> {
        let text = match self {
            Call::Uuid => uuid(scope.rng),
            Call::Now { offset_seconds } => now(scope.now, *offset_seconds)?,
            Call::RandInt { min, max } => {
                let min = integer_argument(evaluate(min, scope)?, "min")?;
                let max = integer_argument(evaluate(max, scope)?, "max")?;
                if min > max {
                    return Err(EvalError {
                        message: format!("randInt: min {min} is greater than max {max}"),
                    });
                }
                // Exact: both bounds are within ±2^53.
                return Ok(Value::Number(scope.rng.random_range(min..=max) as f64));
            }
            Call::RandFromArray(items) => {
                return match evaluate(items, scope)? {
                    Value::Array(items) if items.is_empty() => Ok(Value::Undefined),
                    Value::Array(items) => {
                        Ok(Value::from_json(&items[scope.rng.random_range(0..items.len())]))
                    }
                    other => Err(EvalError {
                        message: format!("randFromArray expects an array, got {}", other.type_name()),
                    }),
                };
            }
            Call::RandSentence => sentence(scope.rng),
            Call::RandParagraph => {
                let count = scope.rng.random_range(PARAGRAPH_SENTENCES);
                let sentences: Vec<String> = (0..count).map(|_| sentence(scope.rng)).collect();
                sentences.join(" ")
            }
        };
        Ok(Value::String(Cow::Owned(text)))
    }
}

/// A version 4 UUID from the generator's bytes.
fn uuid(rng: &mut StdRng) -> String {
    uuid::Builder::from_random_bytes(rng.random()).into_uuid().hyphenated().to_string()
}

/// RFC 3339 UTC with milliseconds. The formatter covers years 1970 to 9999 only, so times
/// outside it are an error rather than a panic.
fn now(time: SystemTime, offset_seconds: i64) -> Result<String, EvalError> {
    const YEAR_10000: u64 = 253_402_300_800;
    let offset = Duration::from_secs(offset_seconds.unsigned_abs());
    let shifted = if offset_seconds >= 0 { time.checked_add(offset) } else { time.checked_sub(offset) };
    let out_of_range = || EvalError { message: "now: time is outside the years 1970 to 9999".to_string() };
    let shifted = shifted.ok_or_else(out_of_range)?;
    match shifted.duration_since(UNIX_EPOCH) {
        Ok(since_epoch) if since_epoch.as_secs() < YEAR_10000 => {}
        _ => return Err(out_of_range()),
    }
    let mut text = String::with_capacity(24);
    write!(text, "{}", humantime::format_rfc3339_millis(shifted)).map_err(|_| out_of_range())?;
    Ok(text)
}

/// One lorem sentence, capitalized, ending in a period.
fn sentence(rng: &mut StdRng) -> String {
    let text: String = Sentence(SENTENCE_WORDS).fake_with_rng(rng);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// A `randInt` bound: a number (or numeric string) that is an exact integer.
fn integer_argument(value: Value<'_>, name: &str) -> Result<i64, EvalError> {
    let number = value.to_number();
    let kind = value.type_name();
    if number.fract() != 0.0 || number.abs() > MAX_EXACT_INTEGER || number.is_nan() {
        let shown: String = value.into_string().chars().take(40).collect();
        return Err(EvalError {
            message: format!("randInt expects integer bounds, got {kind} {shown:?} for {name}"),
        });
    }
    // Exact: integral and within ±2^53.
    Ok(number as i64)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use serde_json::{Value as Json, json};

    use crate::template::tests::Fixture;

    const RANDOM: &[&str] = &[
        "{{uuid}}",
        "{{randInt 1 1000000000}}",
        "{{randFromArray request.ws.state.items}}",
        "{{randSentence}}",
        "{{randParagraph}}",
    ];

    fn renders(source: &str, seed: u64) -> Vec<Json> {
        let mut fixture = Fixture::new().with_state(json!({"items": (0..1000).collect::<Vec<_>>()}));
        fixture.rng = StdRng::seed_from_u64(seed);
        (0..5).map(|_| fixture.render(source)).collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_output() {
        for source in RANDOM {
            assert_eq!(renders(source, 11), renders(source, 11), "{source}");
            assert_ne!(renders(source, 11), renders(source, 12), "{source}");
        }
    }

    #[test]
    fn now_renders_rfc3339_milliseconds_with_offsets() {
        let mut fixture = Fixture::new();
        fixture.now += Duration::from_millis(250);
        let table = [
            ("{{now}}", "2024-01-01T12:00:00.250Z"),
            ("{{now+1h}}", "2024-01-01T13:00:00.250Z"),
            ("{{now-30m}}", "2024-01-01T11:30:00.250Z"),
            ("{{now+10s}}", "2024-01-01T12:00:10.250Z"),
            ("{{now+2d}}", "2024-01-03T12:00:00.250Z"),
            ("{{ now + 1 }}", "2024-01-01T12:00:00.250Z1"),
        ];
        for (source, expected) in table {
            assert_eq!(fixture.render(source), json!(expected), "{source}");
        }
        let error = fixture.try_render("{{now-20000d}}").unwrap_err();
        assert_eq!(error.message, "now: time is outside the years 1970 to 9999");
        assert!(fixture.try_render("{{now+9999999999d}}").is_err());
    }

    #[test]
    fn rand_int_is_inclusive() {
        let mut fixture = Fixture::new();
        let seen: BTreeSet<i64> =
            (0..200).map(|_| fixture.render("{{randInt 1 3}}").as_i64().unwrap()).collect();
        assert_eq!(seen, BTreeSet::from([1, 2, 3]));
        assert_eq!(fixture.render("{{randInt '4' 4}}"), json!(4));
    }

    #[test]
    fn wrong_argument_types_are_evaluation_errors() {
        let mut fixture = Fixture::new();
        let table = [
            ("{{randInt 'a' 3}}", "randInt expects integer bounds, got string \"a\" for min"),
            ("{{randInt 1 1.5}}", "randInt expects integer bounds, got number \"1.5\" for max"),
            (
                "{{randInt 1 request.missing}}",
                "randInt expects integer bounds, got undefined \"undefined\" for max",
            ),
            ("{{randInt 5 1}}", "randInt: min 5 is greater than max 1"),
            ("{{randFromArray 'abc'}}", "randFromArray expects an array, got string"),
            ("{{randFromArray request.missing}}", "randFromArray expects an array, got undefined"),
        ];
        for (source, message) in table {
            assert_eq!(fixture.try_render(source).unwrap_err().message, message, "{source}");
        }
        assert_eq!(fixture.render("{{randFromArray request.empty_list}}"), Json::Null);
        assert_eq!(fixture.render("[{{randFromArray request.empty_list}}]"), json!("[]"));
    }
}
