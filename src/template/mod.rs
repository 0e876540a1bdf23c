//! Templates: text with `{{ expression }}` segments, compiled once into expression trees and
//! rendered many times by stream scripts, stub outputs and the load client. Rendering never
//! parses. This module owns the language; where templates appear and what their output means
//! belongs to their callers.
//!
//! # The language
//!
//! A bounded subset of JavaScript expressions (no loops, assignment, functions or object and
//! array literals) plus Handlebars-style helper calls:
//!
//! - **Literals**: numbers (`12`, `1.5`, `2e3`; `-3` is negation of `3`), strings in `'…'` or
//!   `"…"` with JavaScript's backslash escapes (`\n`, `\'`, `\\`, `\uXXXX`, …), `true`,
//!   `false`, `null`, `undefined`.
//! - **Variables**: `request.ws.message`, `request.ws.state` and `request.ws.connectionId` read
//!   the current inbound message, the per-stream state and the connection id; every other
//!   `request` path reads the call's first request (proto3 JSON with proto field names);
//!   `stream.id` is the load client's stream number. Any other name is a compile error.
//! - **Member access**: `a.b`, `a[expr]`, and `.length` of strings (in UTF-16 units, as in
//!   JavaScript) and arrays. A missing field, or any access through `undefined` or `null`,
//!   gives `undefined` rather than an error.
//! - **Operators**, loosest first: `||`; `&&`; `==` `!=` `===` `!==`; `<` `<=` `>` `>=`; `+`
//!   `-`; `*` `/` `%`; unary `!` and `-`; grouping with `( )`. Binary operators are
//!   left-associative. The semantics are JavaScript's: `||` and `&&` short-circuit and return
//!   an operand; `0`, `NaN`, `""`, `null`, `undefined` and `false` are falsy (empty arrays and
//!   objects are truthy); `+` concatenates when either side is a string and adds otherwise;
//!   `==`/`!=` are loose (`1 == "1"`, `null == undefined`), `===`/`!==` strict; comparisons
//!   are numeric unless both sides are strings. Numbers are f64. Where JavaScript would turn
//!   an array or object into a string, it becomes compact JSON here.
//! - **Helpers**, called by juxtaposition (`randInt 1 24`); an argument is a literal, a
//!   variable path, an argument-less helper or a parenthesized expression, and `-` glued to
//!   a number after a space is a negative argument (`randInt -5 5`):
//!   `uuid` (v4), `now` (RFC 3339 UTC with milliseconds; `now+1h`, `now-30m`, `now+10s`,
//!   `now+2d` shift it and are written without spaces), `randInt min max` (inclusive
//!   integers), `randFromArray items` (`undefined` for an empty array), `randSentence`,
//!   `randParagraph` (lorem text). All randomness comes from [`Scope::rng`].
//!
//! Unknown names, a wrong number of helper arguments, malformed syntax and nesting deeper
//! than 64 levels are compile errors with the byte offset where the problem starts. Type
//! errors in helper arguments are evaluation errors.
//!
//! # Rendering
//!
//! A template that is exactly one `{{ expr }}` (whitespace around it allowed) renders to the
//! expression's typed value: numbers (integral ones without a fraction), strings, booleans,
//! arrays and objects; `undefined`, `NaN` and the infinities become `null`. Any other
//! template renders to a string: its text with each value converted by JavaScript's
//! `String()` rules (arrays and objects as compact JSON), except that `undefined` and `null`
//! interpolate as nothing, as in Handlebars (`from message {{request.ws.state.missing}}`
//! renders `from message `); inside an expression, `+` still follows JavaScript. Output over
//! 64 KiB is an error.

mod eval;
mod expr;
mod helpers;
mod json;
mod lexer;
mod operators;
mod parser;
mod value;

#[cfg(test)]
mod tests;

use std::time::SystemTime;

use rand::rngs::StdRng;
use serde_json::{Map, Value as Json};

pub use json::{JsonTemplate, JsonTemplateError};
pub use value::OUTPUT_LIMIT;

/// JavaScript's `Boolean(value)` for a rendered value, as conditions use it.
pub fn truthy(value: &Json) -> bool {
    value::Value::from_json(value).truthy()
}

use expr::Expr;
use value::check_size;

/// A compiled template: literal text and compiled expressions, in order.
#[derive(Debug, Clone)]
pub struct Template {
    /// The template's pieces; adjacent text is never split.
    parts: Vec<Part>,
    /// Index in `parts` of the only expression when every other part is whitespace: the
    /// template then renders to that expression's typed value.
    sole_expression: Option<usize>,
    /// Starting capacity for string output: the text plus a little per expression.
    capacity_hint: usize,
}

#[derive(Debug, Clone)]
enum Part {
    Text(Box<str>),
    Expression(Expr),
}

/// A template that does not compile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    /// Byte offset in the source where the problem starts.
    pub offset: usize,
    /// What is wrong, for a person.
    pub message: String,
}

/// A template that compiled but could not be rendered with this scope.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// What went wrong, for a person.
    pub message: String,
}

/// What an evaluation can see. Borrowed so that evaluating allocates little.
pub struct Scope<'a> {
    /// `request.<path>`: the call's first request as proto3 JSON with proto field names and all
    /// fields present.
    pub request: &'a Json,
    /// `request.ws.message`: the current inbound message (None when there is none).
    pub message: Option<&'a Json>,
    /// `request.ws.state`: per-stream state.
    pub state: &'a Map<String, Json>,
    /// `request.ws.connectionId`.
    pub connection_id: &'a str,
    /// `stream.id` (load client) — a number.
    pub stream_id: u64,
    /// All randomness comes from here (seeded per stream by the caller).
    pub rng: &'a mut StdRng,
    /// The time `now` renders (the caller passes `SystemTime::now()`; tests pass a fixed time).
    pub now: SystemTime,
}

impl Template {
    /// Compiles text containing zero or more `{{ expr }}` segments.
    pub fn compile(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut text_start = 0;
        while let Some(found) = source[text_start..].find("{{") {
            let open = text_start + found;
            if open > text_start {
                parts.push(Part::Text(source[text_start..open].into()));
            }
            let (expression, end) = parser::parse_segment(source, open)?;
            parts.push(Part::Expression(expression));
            text_start = end;
        }
        if text_start < source.len() || parts.is_empty() {
            parts.push(Part::Text(source[text_start..].into()));
        }
        let expressions: Vec<usize> = parts
            .iter()
            .enumerate()
            .filter(|(_, part)| matches!(part, Part::Expression(_)))
            .map(|(i, _)| i)
            .collect();
        let only_whitespace_besides = parts.iter().all(|part| match part {
            Part::Text(text) => text.trim().is_empty(),
            Part::Expression(_) => true,
        });
        let sole_expression = match expressions[..] {
            [index] if only_whitespace_besides => Some(index),
            _ => None,
        };
        let capacity_hint = parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => text.len(),
                Part::Expression(_) => 16,
            })
            .sum();
        Ok(Template { parts, sole_expression, capacity_hint })
    }

    /// True when the template has no `{{ }}` at all.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|part| matches!(part, Part::Text(_)))
    }

    /// Renders. A template that is exactly one `{{ expr }}` (surrounding whitespace allowed)
    /// yields the expression's typed value; otherwise the parts are concatenated into a string
    /// (values converted with JS `String()` rules, `undefined`/`null` as nothing; objects and
    /// arrays as compact JSON).
    pub fn render(&self, scope: &mut Scope<'_>) -> Result<Json, EvalError> {
        if let Some(Part::Expression(expression)) =
            self.sole_expression.and_then(|index| self.parts.get(index))
        {
            return eval::evaluate(expression, scope)?.into_json();
        }
        let mut out = String::with_capacity(self.capacity_hint);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Expression(expression) => eval::evaluate(expression, scope)?.interpolate(&mut out),
            }
            check_size(out.len())?;
        }
        Ok(Json::String(out))
    }

    /// Every variable path the template reads, e.g. `["request", "topics"]` for
    /// `request.topics[0]` and `request.topics.length` (a path stops at the first index or
    /// `.length`), for load-time validation. Each path appears once, in order of first use.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut paths = Vec::new();
        for part in &self.parts {
            if let Part::Expression(expression) = part {
                expression.collect_paths(&mut paths);
            }
        }
        paths
    }
}
