//! Walking a profile's document tree: the one place that turns "this node is wrong" into a
//! located [`Problem`] with the field path, so the section compilers only say what is wrong.
//! Problems are collected, never returned early, so a user sees every mistake in one run.

use std::path::Path;

use super::values::Parsed;
use crate::diagnostic::{Problem, Problems};
use crate::document::{Key, Node, Position};

/// Reads one profile file, collecting its problems.
pub(super) struct Reader<'a> {
    file: &'a Path,
    pub(super) problems: Problems,
    /// Where faults that only a proxy can inject (`upstream`) were written.
    pub(super) proxy_only: Vec<(String, Position)>,
}

/// `parent.key`, or `key` at the top level.
pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

impl<'a> Reader<'a> {
    pub(super) fn new(file: &'a Path) -> Self {
        Self { file, problems: Problems::default(), proxy_only: Vec::new() }
    }

    pub(super) fn file(&self) -> &'a Path {
        self.file
    }

    pub(super) fn problem(&mut self, at: Position, field: &str, message: impl Into<String>) {
        let problem = Problem::at(self.file, at.line, at.column, message);
        self.problems.push(if field.is_empty() { problem } else { problem.with_field(field) });
    }

    /// The entries of `node` when it is a mapping, after reporting every key not in `allowed`;
    /// `None` (reported) when it is something else.
    pub(super) fn mapping<'n>(
        &mut self,
        node: &'n Node,
        field: &str,
        allowed: &[&str],
    ) -> Option<&'n [(Key, Node)]> {
        let Some(entries) = node.as_map() else {
            self.problem(node.at, field, format!("expected a mapping, found {}", node.kind()));
            return None;
        };
        for (key, _) in entries {
            if !allowed.contains(&key.name.as_str()) {
                self.problem(key.at, &join(field, &key.name), unknown_field(&key.name, allowed));
            }
        }
        Some(entries)
    }

    /// `parse(node)`, with a failure reported at the node.
    pub(super) fn parse<T>(
        &mut self,
        node: &Node,
        field: &str,
        parse: impl FnOnce(&Node) -> Parsed<T>,
    ) -> Option<T> {
        parse(node).map_err(|message| self.problem(node.at, field, message)).ok()
    }

    /// `map[key]` parsed, when present.
    pub(super) fn optional<T>(
        &mut self,
        map: &Node,
        field: &str,
        key: &str,
        parse: impl FnOnce(&Node) -> Parsed<T>,
    ) -> Option<T> {
        let value = map.get(key)?;
        self.parse(value, &join(field, key), parse)
    }

    /// `map[key]` parsed; its absence is reported at the mapping, with an example of the value.
    pub(super) fn required<T>(
        &mut self,
        map: &Node,
        field: &str,
        key: &str,
        example: &str,
        parse: impl FnOnce(&Node) -> Parsed<T>,
    ) -> Option<T> {
        if map.get(key).is_none() {
            self.problem(map.at, field, format!("missing field '{key}' (e.g. {key}: {example})"));
            return None;
        }
        self.optional(map, field, key, parse)
    }

    /// Each item of a list compiled by `item`; a missing list is empty.
    pub(super) fn list<T>(
        &mut self,
        node: Option<&Node>,
        field: &str,
        mut item: impl FnMut(&mut Self, &Node, &str) -> Option<T>,
    ) -> Vec<T> {
        let Some(node) = node else { return Vec::new() };
        let Some(items) = node.as_seq() else {
            self.problem(node.at, field, format!("expected a list, found {}", node.kind()));
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(index, value)| item(self, value, &format!("{field}[{index}]")))
            .collect()
    }

    /// Reports that `first` and `second` were both written where one is meant.
    pub(super) fn exclusive(&mut self, map: &Node, field: &str, first: &str, second: &str) -> bool {
        let (Some(_), Some(value)) = (map.get(first), map.get(second)) else { return true };
        self.problem(
            value.at,
            &join(field, second),
            format!("write either '{first}' or '{second}', not both"),
        );
        false
    }
}

/// `unknown field 'x' (expected one of: …)`, naming the closest known field when one is close.
fn unknown_field(name: &str, allowed: &[&str]) -> String {
    let closest = allowed
        .iter()
        .map(|known| (strsim::jaro_winkler(name, known), known))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let suggestion = closest.map(|(_, known)| format!(", did you mean '{known}'?")).unwrap_or_default();
    format!("unknown field '{name}'{suggestion} (expected one of: {})", allowed.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_name_the_closest_known_one() {
        assert_eq!(
            unknown_field("rte", &["rate", "code"]),
            "unknown field 'rte', did you mean 'rate'? (expected one of: rate, code)"
        );
        assert_eq!(
            unknown_field("zzz", &["rate", "code"]),
            "unknown field 'zzz' (expected one of: rate, code)"
        );
    }
}
