//! YAML and JSON documents read into a tree that remembers where every value and key came from,
//! so that loaders can check meaning (does this field exist on that message?) after parsing
//! and still report `file:line:col` and the field path for each problem.
//!
//! JSON is read by the YAML parser too (YAML 1.2 is a superset), so both formats report
//! positions the same way. A file may hold several `---` documents.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;
use serde_saphyr::Spanned;

use crate::diagnostic::{Problem, Problems};

/// A position in a source file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// A value with the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub at: Position,
}

/// A mapping key with its own position (where "unknown field" errors point).
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub at: Position,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

impl Node {
    /// The plain JSON value, positions dropped.
    pub fn to_json(&self) -> Json {
        match &self.value {
            NodeValue::Null => Json::Null,
            NodeValue::Bool(b) => Json::Bool(*b),
            NodeValue::Number(n) => Json::Number(n.clone()),
            NodeValue::String(s) => Json::String(s.clone()),
            NodeValue::Seq(items) => Json::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => {
                Json::Object(entries.iter().map(|(key, value)| (key.name.clone(), value.to_json())).collect())
            }
        }
    }

    /// What kind of value this is, for messages like "expected a list, found a string".
    pub fn kind(&self) -> &'static str {
        match self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a boolean",
            NodeValue::Number(_) => "a number",
            NodeValue::String(_) => "a string",
            NodeValue::Seq(_) => "a list",
            NodeValue::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            NodeValue::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            NodeValue::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(_, value)| value)
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// Nodes one file may hold: room for 100,000+ stubs in a single file, while still refusing
/// YAML that expands without bound (alias bombs stay capped by the parser's other limits).
const MAX_NODES: usize = 20_000_000;
const MAX_EVENTS: usize = 60_000_000;

fn parse_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_nodes = MAX_NODES;
    budget.max_events = MAX_EVENTS;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Reads every document of a YAML or JSON file.
pub fn read_documents(path: &Path, text: &str) -> Result<Vec<Node>, Problems> {
    let documents: Vec<Spanned<NodeValue>> = serde_saphyr::from_multiple_with_options(text, parse_options())
        .map_err(|error| {
            let (line, column) = error
                .location()
                .map_or((0, 0), |location| (location.line() as usize, location.column() as usize));
            Problems::from(Problem::at(path, line, column, first_line(&error.to_string())))
        })?;
    Ok(documents.into_iter().map(node).collect())
}

/// serde-saphyr's messages repeat the source snippet after the first line; we print our own
/// position instead.
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).to_owned()
}

fn position(spanned_at: &serde_saphyr::Location) -> Position {
    Position { line: spanned_at.line() as usize, column: spanned_at.column() as usize }
}

fn node(spanned: Spanned<NodeValue>) -> Node {
    Node { at: position(&spanned.referenced), value: spanned.value }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = NodeValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML or JSON value")
    }

    fn visit_unit<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_none<E>(self) -> Result<NodeValue, E> {
        Ok(NodeValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<NodeValue, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E>(self, value: bool) -> Result<NodeValue, E> {
        Ok(NodeValue::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<NodeValue, E> {
        Ok(NodeValue::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<NodeValue, E> {
        serde_json::Number::from_f64(value)
            .map(NodeValue::Number)
            .ok_or_else(|| E::custom("NaN and infinity are not valid here; write them as strings"))
    }

    fn visit_str<E>(self, value: &str) -> Result<NodeValue, E> {
        Ok(NodeValue::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<NodeValue, E> {
        Ok(NodeValue::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<NodeValue>>()? {
            items.push(node(item));
        }
        Ok(NodeValue::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let value: Spanned<NodeValue> = map.next_value()?;
            entries.push((Key { at: position(&key.referenced), name: key.value }, node(value)));
        }
        Ok(NodeValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let text = "- service: ChatService\n  input:\n    equals:\n      user_id: alice\n";
        let documents = read_documents(Path::new("s.yaml"), text).unwrap();
        let stub = &documents[0].as_seq().unwrap()[0];
        let (key, value) = &stub.as_map().unwrap()[0];
        assert_eq!((key.name.as_str(), key.at), ("service", Position { line: 1, column: 3 }));
        assert_eq!(value.at, Position { line: 1, column: 12 });
        let user = stub.get("input").unwrap().get("equals").unwrap().get("user_id").unwrap();
        assert_eq!((user.as_str(), user.at), (Some("alice"), Position { line: 4, column: 16 }));
    }

    #[test]
    fn reads_json_and_multiple_documents() {
        let documents = read_documents(Path::new("a.yaml"), "a: 1\n---\nb: [true, null, 2.5]\n").unwrap();
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[1].to_json(), serde_json::json!({"b": [true, null, 2.5]}));
        let json = read_documents(Path::new("a.json"), "[{\"service\": \"S\",\n \"priority\": 3}]").unwrap();
        assert_eq!(
            json[0].as_seq().unwrap()[0].get("priority").unwrap().at,
            Position { line: 2, column: 14 }
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let problems = read_documents(Path::new("bad.yaml"), "a: [1, 2\nb: 3\n").unwrap_err();
        let problem = &problems.0[0];
        assert_eq!(problem.file, Path::new("bad.yaml"));
        assert!(problem.line >= 1, "{problem}");
    }
}
