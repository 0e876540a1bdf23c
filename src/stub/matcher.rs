//! Request matchers with GripMock's semantics, compiled once against the message type so that
//! matching compares typed protobuf values (no JSON per request):
//!
//! - `equals`: each declared field deep-equals the request's (extra request fields ignored;
//!   nested messages compared whole; arrays in order unless `ignoreArrayOrder`);
//! - `contains`: a recursive subset: nested messages need only the declared fields, arrays need
//!   each declared element (in any order), scalars must be equal;
//! - `matches`: a regex per field, searched (unanchored) in the value's text form; nested
//!   messages as subsets; on arrays a single pattern must match every element, a list of
//!   patterns must match the elements one to one in any order;
//! - `glob`: as `matches`, with shell globs matched against the whole text;
//! - `anyOf`: the base matcher AND at least one of the alternatives.
//!
//! `user_id` and `userId` name the same field. An empty matcher matches everything.

use globset::{Glob, GlobMatcher};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};
use regex::Regex;

use super::fields::{error, field_or_error, is_default, is_well_known, one_line, typed_value};
use crate::document::{Node, NodeValue};
use crate::proto::json;

/// How one field is constrained.
#[derive(Debug, Clone)]
enum Check {
    /// The request's value equals this one.
    Equal(Value),
    /// A repeated field holds the same elements in any order.
    EqualUnordered(Vec<Value>),
    /// A nested message satisfies these constraints.
    Subset(Box<MessageMatcher>),
    /// A repeated field holds each of these elements (in any order, one element each).
    ContainsElements(Vec<Element>),
    /// The text form matches the patterns (see the module docs for arrays).
    Patterns(Vec<Pattern>),
}

/// One expected element of a repeated field under `contains`.
#[derive(Debug, Clone)]
enum Element {
    Value(Value),
    Subset(MessageMatcher),
}

/// A `matches` regex or a `glob`.
#[derive(Debug, Clone)]
enum Pattern {
    Regex(Regex),
    Glob(GlobMatcher),
}

impl Pattern {
    fn is_match(&self, text: &str) -> bool {
        match self {
            Self::Regex(regex) => regex.is_match(text),
            Self::Glob(glob) => glob.is_match(text),
        }
    }
}

/// One constrained field.
#[derive(Debug, Clone)]
pub struct FieldConstraint {
    field: FieldDescriptor,
    check: Check,
    /// Dotted path for messages (`position.x`).
    path: String,
    /// The expected value is not the field's default: counts towards specificity.
    specific: bool,
}

/// A compiled `input` matcher.
#[derive(Debug, Clone, Default)]
pub struct MessageMatcher {
    constraints: Vec<FieldConstraint>,
    any_of: Vec<MessageMatcher>,
}

/// How well a request matched: the ranking inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Score {
    /// Matched constraints whose expected value is not a default.
    pub specificity: u32,
    /// Matched constraints in all.
    pub fields: u32,
}

impl Score {
    pub fn add(&mut self, other: Score) {
        self.specificity += other.specificity;
        self.fields += other.fields;
    }
}

/// Why a matcher could not be compiled, and where.
#[derive(Debug, Clone)]
pub struct MatcherError {
    pub at: crate::document::Position,
    pub path: String,
    pub message: String,
}

impl MessageMatcher {
    /// Compiles a matcher node (`{equals: …, contains: …, anyOf: […]}`) for `descriptor`.
    /// `path` prefixes field paths in errors.
    pub fn compile(
        node: &Node,
        descriptor: &MessageDescriptor,
        path: &str,
        errors: &mut Vec<MatcherError>,
    ) -> Self {
        let mut matcher = MessageMatcher::default();
        let Some(entries) = node.as_map() else {
            errors.push(error(node, path, format!("expected a matcher mapping, found {}", node.kind())));
            return matcher;
        };
        let ignore_order = node.get("ignoreArrayOrder").and_then(|n| n.to_json().as_bool()).unwrap_or(false);
        for (key, value) in entries {
            let here = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "equals" => matcher.add_fields(value, descriptor, &here, Operator::Equals { ignore_order }, errors),
                "contains" => matcher.add_fields(value, descriptor, &here, Operator::Contains, errors),
                "matches" => matcher.add_fields(value, descriptor, &here, Operator::Matches, errors),
                "glob" => matcher.add_fields(value, descriptor, &here, Operator::Glob, errors),
                "anyOf" => match value.as_seq() {
                    Some(alternatives) => {
                        for (index, alternative) in alternatives.iter().enumerate() {
                            let alternative_path = format!("{here}[{index}]");
                            matcher.any_of.push(MessageMatcher::compile(alternative, descriptor, &alternative_path, errors));
                        }
                    }
                    None => errors.push(error(value, &here, format!("expected a list of matchers, found {}", value.kind()))),
                },
                "ignoreArrayOrder" => {
                    if value.to_json().as_bool().is_none() {
                        errors.push(error(value, &here, "expected true or false".into()));
                    }
                }
                other => errors.push(MatcherError {
                    at: key.at,
                    path: here.clone(),
                    message: format!(
                        "unknown matcher '{other}' (expected equals, contains, matches, glob, anyOf, ignoreArrayOrder)"
                    ),
                }),
            }
        }
        matcher
    }

    fn add_fields(
        &mut self,
        node: &Node,
        descriptor: &MessageDescriptor,
        path: &str,
        operator: Operator,
        errors: &mut Vec<MatcherError>,
    ) {
        let Some(entries) = node.as_map() else {
            errors.push(error(
                node,
                path,
                format!("expected a mapping of field names, found {}", node.kind()),
            ));
            return;
        };
        for (key, value) in entries {
            let here = format!("{path}.{}", key.name);
            let Some(field) = field_or_error(descriptor, key, &here, errors) else { continue };
            match compile_check(descriptor, &field, value, operator, &here, errors) {
                Ok(Some((check, specific))) => {
                    self.constraints.push(FieldConstraint { path: key.name.clone(), field, check, specific })
                }
                Ok(None) => {}
                Err(message) => errors.push(error(value, &here, message)),
            }
        }
    }

    /// The score when `message` satisfies every constraint and some alternative, else `None`.
    pub fn evaluate(&self, message: &DynamicMessage) -> Option<Score> {
        let mut score = Score::default();
        for constraint in &self.constraints {
            score.add(constraint.evaluate(message)?);
        }
        if !self.any_of.is_empty() {
            // The best-scoring alternative that matches counts.
            let best = self
                .any_of
                .iter()
                .filter_map(|alternative| alternative.evaluate(message))
                .max_by_key(|s| (s.specificity, s.fields))?;
            score.add(best);
        }
        Some(score)
    }

    /// The field paths that kept `message` from matching (for NOT_FOUND explanations).
    pub fn mismatches(&self, message: &DynamicMessage) -> Vec<String> {
        let mut failed: Vec<String> = self
            .constraints
            .iter()
            .filter(|c| c.evaluate(message).is_none())
            .map(|c| c.path.clone())
            .collect();
        if !self.any_of.is_empty()
            && self.any_of.iter().all(|alternative| alternative.evaluate(message).is_none())
        {
            failed.push("anyOf".to_owned());
        }
        failed
    }

    /// Constraints in all (for ranking equal matches).
    pub fn field_count(&self) -> usize {
        self.constraints.len() + self.any_of.iter().map(MessageMatcher::field_count).sum::<usize>()
    }

    /// A top-level `equals` on a scalar field, usable as an exact index key.
    pub fn index_key(&self) -> Option<(u32, IndexValue)> {
        self.constraints.iter().find_map(|constraint| match &constraint.check {
            Check::Equal(value) if !constraint.field.is_list() && !constraint.field.is_map() => {
                IndexValue::of(value).map(|key| (constraint.field.number(), key))
            }
            _ => None,
        })
    }
}

/// Scalar values that can key an index of stubs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IndexValue {
    String(String),
    Integer(i128),
    Bool(bool),
    Bytes(Vec<u8>),
}

impl IndexValue {
    pub fn of(value: &Value) -> Option<Self> {
        Some(match value {
            Value::String(s) => Self::String(s.clone()),
            Value::Bool(b) => Self::Bool(*b),
            Value::I32(n) | Value::EnumNumber(n) => Self::Integer(i128::from(*n)),
            Value::I64(n) => Self::Integer(i128::from(*n)),
            Value::U32(n) => Self::Integer(i128::from(*n)),
            Value::U64(n) => Self::Integer(i128::from(*n)),
            Value::Bytes(b) => Self::Bytes(b.to_vec()),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum Operator {
    Equals { ignore_order: bool },
    Contains,
    Matches,
    Glob,
}

/// Compiles one field's constraint; `Ok(None)` when nothing is constrained.
fn compile_check(
    parent: &MessageDescriptor,
    field: &FieldDescriptor,
    node: &Node,
    operator: Operator,
    path: &str,
    errors: &mut Vec<MatcherError>,
) -> Result<Option<(Check, bool)>, String> {
    let nested = match field.kind() {
        Kind::Message(nested) if !field.is_map() && !is_well_known(&nested) => Some(nested),
        _ => None,
    };
    // Under everything but `equals`, a mapping for a message field is a nested subset.
    if let (Some(nested), Some(_), false, false) =
        (&nested, node.as_map(), field.is_list(), matches!(operator, Operator::Equals { .. }))
    {
        let mut subset = MessageMatcher::default();
        subset.add_fields(node, nested, path, operator, errors);
        let specific = subset.constraints.iter().any(|c| c.specific);
        return Ok(Some((Check::Subset(Box::new(subset)), specific)));
    }
    match operator {
        Operator::Equals { ignore_order } => equal_check(parent, field, node, ignore_order).map(Some),
        Operator::Contains if field.is_list() => {
            let items = node
                .as_seq()
                .ok_or_else(|| format!("expected a list for repeated field, found {}", node.kind()))?;
            let mut elements = Vec::new();
            for (index, item) in items.iter().enumerate() {
                match (&nested, item.as_map()) {
                    (Some(nested), Some(_)) => {
                        let mut subset = MessageMatcher::default();
                        subset.add_fields(item, nested, &format!("{path}[{index}]"), operator, errors);
                        elements.push(Element::Subset(subset));
                    }
                    _ => {
                        let wrapped = Node { value: NodeValue::Seq(vec![item.clone()]), at: item.at };
                        match typed_value(parent, field, &wrapped)? {
                            Value::List(mut values) if values.len() == 1 => {
                                elements.push(Element::Value(values.remove(0)))
                            }
                            _ => return Err("expected a single element".into()),
                        }
                    }
                }
            }
            let specific = !elements.is_empty();
            Ok(Some((Check::ContainsElements(elements), specific)))
        }
        Operator::Contains => equal_check(parent, field, node, false).map(Some),
        Operator::Matches | Operator::Glob => {
            let patterns = match node.as_seq() {
                Some(items) => items.iter().collect(),
                None => vec![node],
            };
            let compiled = patterns
                .into_iter()
                .map(|pattern| compile_pattern(pattern, operator))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some((Check::Patterns(compiled), true)))
        }
    }
}

fn compile_pattern(node: &Node, operator: Operator) -> Result<Pattern, String> {
    let text = match &node.value {
        NodeValue::String(text) => text.clone(),
        NodeValue::Number(number) => number.to_string(),
        _ => return Err(format!("expected a pattern string, found {}", node.kind())),
    };
    match operator {
        Operator::Glob => Glob::new(&text)
            .map(|glob| Pattern::Glob(glob.compile_matcher()))
            .map_err(|e| format!("bad glob: {e}")),
        _ => Regex::new(&text)
            .map(Pattern::Regex)
            .map_err(|e| format!("bad regex: {}", one_line(&e.to_string()))),
    }
}

fn equal_check(
    parent: &MessageDescriptor,
    field: &FieldDescriptor,
    node: &Node,
    ignore_order: bool,
) -> Result<(Check, bool), String> {
    let value = typed_value(parent, field, node)?;
    let specific = !is_default(field, &value);
    let check = match value {
        Value::List(items) if ignore_order => Check::EqualUnordered(items),
        value => Check::Equal(value),
    };
    Ok((check, specific))
}

impl FieldConstraint {
    fn evaluate(&self, message: &DynamicMessage) -> Option<Score> {
        let actual = message.get_field(&self.field);
        let matched = match &self.check {
            Check::Equal(expected) => *actual == *expected,
            Check::EqualUnordered(expected) => {
                unordered_equal(expected, actual.as_list().unwrap_or_default())
            }
            Check::Subset(subset) => {
                let nested = actual.as_message()?;
                return subset.evaluate(nested).map(|mut score| {
                    score.fields += 1;
                    score
                });
            }
            Check::ContainsElements(elements) => {
                let items = actual.as_list().unwrap_or_default();
                assign_one_to_one(elements, items, |element, item| match (element, item) {
                    (Element::Value(expected), item) => expected == item,
                    (Element::Subset(subset), Value::Message(nested)) => subset.evaluate(nested).is_some(),
                    (Element::Subset(_), _) => false,
                })
            }
            Check::Patterns(patterns) => match (actual.as_ref(), patterns.as_slice()) {
                (Value::List(items), [single]) => {
                    !items.is_empty() && items.iter().all(|item| single.is_match(&self.text(item)))
                }
                (Value::List(items), patterns) => {
                    items.len() == patterns.len()
                        && assign_one_to_one(patterns, items, |pattern, item| {
                            pattern.is_match(&self.text(item))
                        })
                }
                (value, patterns) => patterns.iter().all(|pattern| pattern.is_match(&self.text(value))),
            },
        };
        matched.then_some(Score { specificity: u32::from(self.specific), fields: 1 })
    }

    /// The text a pattern is matched against: strings as they are, enums by name, numbers and
    /// booleans as written in JSON, bytes as UTF-8, messages as compact JSON.
    fn text(&self, value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::EnumNumber(number) => match self.field.kind() {
                Kind::Enum(enumeration) => {
                    enumeration.get_value(*number).map_or_else(|| number.to_string(), |v| v.name().to_owned())
                }
                _ => number.to_string(),
            },
            Value::Bool(b) => b.to_string(),
            Value::I32(n) => n.to_string(),
            Value::I64(n) => n.to_string(),
            Value::U32(n) => n.to_string(),
            Value::U64(n) => n.to_string(),
            Value::F32(n) => n.to_string(),
            Value::F64(n) => n.to_string(),
            Value::Bytes(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Value::Message(message) => {
                json::message_to_json(message, json::FieldNames::Proto, json::DefaultFields::Skip)
                    .map(|json| json.to_string())
                    .unwrap_or_default()
            }
            Value::List(_) | Value::Map(_) => String::new(),
        }
    }
}

/// True when every expected item can be paired with a different actual item it accepts
/// (greedy, first fit).
fn assign_one_to_one<E>(expected: &[E], actual: &[Value], accepts: impl Fn(&E, &Value) -> bool) -> bool {
    let mut used = vec![false; actual.len()];
    expected.iter().all(|wanted| {
        let found =
            actual.iter().enumerate().position(|(index, value)| !used[index] && accepts(wanted, value));
        found.map(|index| used[index] = true).is_some()
    })
}

fn unordered_equal(expected: &[Value], actual: &[Value]) -> bool {
    expected.len() == actual.len() && assign_one_to_one(expected, actual, |wanted, value| wanted == value)
}
