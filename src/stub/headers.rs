//! Matchers on request metadata (`headers:` in a stub), with the same operators as message
//! matchers. Header names are case-insensitive; a header sent several times is matched as its
//! values joined with `;`, as GripMock does.

use globset::{Glob, GlobMatcher};
use regex::Regex;
use tonic::metadata::{KeyAndValueRef, MetadataMap};

use super::matcher::MatcherError;
use crate::document::Node;

#[derive(Debug, Clone)]
enum HeaderCheck {
    Equal(String),
    Regex(Regex),
    Glob(GlobMatcher),
}

/// A compiled `headers` matcher.
#[derive(Debug, Clone, Default)]
pub struct HeaderMatcher {
    checks: Vec<(String, HeaderCheck)>,
    any_of: Vec<HeaderMatcher>,
}

impl HeaderMatcher {
    pub fn compile(node: &Node, path: &str, errors: &mut Vec<MatcherError>) -> Self {
        let mut matcher = Self::default();
        let Some(entries) = node.as_map() else {
            errors.push(MatcherError {
                at: node.at,
                path: path.into(),
                message: format!("expected a matcher mapping, found {}", node.kind()),
            });
            return matcher;
        };
        for (operator, rules) in entries {
            let here = format!("{path}.{}", operator.name);
            if operator.name == "anyOf" {
                for (index, alternative) in rules.as_seq().unwrap_or_default().iter().enumerate() {
                    matcher.any_of.push(Self::compile(alternative, &format!("{here}[{index}]"), errors));
                }
                continue;
            }
            if !["equals", "contains", "matches", "glob"].contains(&operator.name.as_str()) {
                errors.push(MatcherError {
                    at: operator.at,
                    path: here,
                    message: format!(
                        "unknown matcher '{}' (expected equals, contains, matches, glob, anyOf)",
                        operator.name
                    ),
                });
                continue;
            }
            for (name, value) in rules.as_map().unwrap_or_default() {
                let text = match value.to_json() {
                    serde_json::Value::String(text) => text,
                    other => other.to_string(),
                };
                let check = match operator.name.as_str() {
                    "matches" => Regex::new(&text)
                        .map(HeaderCheck::Regex)
                        .map_err(|e| format!("bad regex: {}", super::fields::one_line(&e.to_string()))),
                    "glob" => Glob::new(&text)
                        .map(|g| HeaderCheck::Glob(g.compile_matcher()))
                        .map_err(|e| format!("bad glob: {e}")),
                    _ => Ok(HeaderCheck::Equal(text)),
                };
                match check {
                    Ok(check) => matcher.checks.push((name.name.to_ascii_lowercase(), check)),
                    Err(message) => errors.push(MatcherError {
                        at: value.at,
                        path: format!("{here}.{}", name.name),
                        message,
                    }),
                }
            }
        }
        matcher
    }

    /// True when `metadata` satisfies every check and, if any, one alternative.
    pub fn matches(&self, metadata: &MetadataMap) -> bool {
        let all = self.checks.iter().all(|(name, check)| {
            let Some(value) = joined_value(metadata, name) else { return false };
            match check {
                HeaderCheck::Equal(expected) => value == *expected,
                HeaderCheck::Regex(regex) => regex.is_match(&value),
                HeaderCheck::Glob(glob) => glob.is_match(&value),
            }
        });
        all && (self.any_of.is_empty() || self.any_of.iter().any(|alternative| alternative.matches(metadata)))
    }

    /// Checks in all, counted into a stub's field count for ranking.
    pub fn field_count(&self) -> usize {
        self.checks.len() + self.any_of.iter().map(HeaderMatcher::field_count).sum::<usize>()
    }
}

/// All ASCII values of header `name`, joined with `;`.
fn joined_value(metadata: &MetadataMap, name: &str) -> Option<String> {
    let values: Vec<&str> = metadata
        .iter()
        .filter_map(|entry| match entry {
            KeyAndValueRef::Ascii(key, value) if key.as_str() == name => value.to_str().ok(),
            _ => None,
        })
        .collect();
    (!values.is_empty()).then(|| values.join(";"))
}
