//! Reads a JSONL script into a [`Script`]: one JSON object per line, blank lines and `//`
//! comment lines allowed. Every line is checked — JSON, known fields, template syntax, the
//! fields templates read, what the method's call pattern allows — and every problem reported
//! with its line and column.

use std::path::Path;
use std::sync::Arc;

use prost_reflect::{Kind, MessageDescriptor};
use serde_json::Value as Json;

use super::model::{Due, Effects, InEntry, OutEntry, Script, TextPattern};
use crate::config::{StatusDetails, status_with_details};
use crate::diagnostic::{Problem, Problems};
use crate::document::{Node, NodeValue, Position, read_documents};
use crate::proto::status::code_from_node;
use crate::proto::{CallKind, MethodEntry};
use crate::stub::fields::{is_close, resolve_field, suggest};
use crate::stub::matcher::MessageMatcher;
use crate::template::{JsonTemplate, Template};

mod replies;

const FIELDS: &[&str] = &[
    "ts",
    "dir",
    "text",
    "response",
    "responses",
    "condition",
    "state",
    "close",
    "error",
    "code",
    "details",
];

/// The largest script accepted, in bytes: every script is held and compiled whole at load.
pub const MAX_SCRIPT_BYTES: usize = 8 << 20;
/// The most entries (lines other than blanks and comments) a script may have.
pub const MAX_SCRIPT_ENTRIES: usize = 10_000;

/// Compiles the script in `text` (the contents of `path`) for `method`.
pub fn parse_script(path: &Path, text: &str, method: Arc<MethodEntry>) -> Result<Script, Problems> {
    if text.len() > MAX_SCRIPT_BYTES {
        let message = format!("the script is {} bytes; the limit is {MAX_SCRIPT_BYTES} (8 MiB)", text.len());
        return Err(Problem::at(path, 1, 1, message).into());
    }
    let mut parser = ScriptParser { path, method: &method, problems: Problems::default() };
    let mut script = Script {
        file: path.to_path_buf(),
        method: method.clone(),
        outbound: Vec::new(),
        inbound: Vec::new(),
        fallbacks: Vec::new(),
    };
    let mut entries = 0;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("//") {
            continue;
        }
        entries += 1;
        if entries > MAX_SCRIPT_ENTRIES {
            let message =
                format!("more than {MAX_SCRIPT_ENTRIES} entries; the limit is {MAX_SCRIPT_ENTRIES}");
            parser.problem(index + 1, Position { line: index + 1, column: 1 }, "", message);
            break;
        }
        parser.entry(index + 1, line, &mut script);
    }
    parser.check_call_pattern(&script);
    parser.problems.into_result(script)
}

struct ScriptParser<'a> {
    path: &'a Path,
    method: &'a MethodEntry,
    problems: Problems,
}

impl ScriptParser<'_> {
    fn problem(&mut self, line: usize, at: Position, field: &str, message: impl Into<String>) {
        let problem = Problem::at(self.path, line, at.column, message);
        self.problems.push(if field.is_empty() { problem } else { problem.with_field(field) });
    }

    fn entry(&mut self, line: usize, source: &str, script: &mut Script) {
        if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(source) {
            let at = Position { line, column: error.column() };
            return self.problem(line, at, "", format!("not valid JSON: {error}"));
        }
        let node = match read_documents(self.path, source) {
            Ok(mut documents) if documents.len() == 1 => documents.remove(0),
            Ok(_) => {
                return self.problem(
                    line,
                    Position { line, column: 1 },
                    "",
                    "expected one JSON object per line",
                );
            }
            Err(problems) => {
                for found in problems.iter() {
                    let at = Position { line, column: found.column };
                    self.problem(line, at, "", format!("not valid JSON: {}", found.message));
                }
                return;
            }
        };
        let Some(entries) = node.as_map() else {
            return self.problem(line, node.at, "", format!("expected a JSON object, found {}", node.kind()));
        };
        let mut effects = Effects::default();
        for (key, value) in entries {
            if FIELDS.contains(&key.name.as_str()) {
                continue;
            }
            if let Some(known) =
                FIELDS.iter().find(|known| is_close(strsim::levenshtein(known, &key.name), &key.name))
            {
                let message = format!(
                    "unknown field '{}', did you mean '{known}'? (other keys update per-stream state)",
                    key.name
                );
                self.problem(line, key.at, &key.name, message);
                continue;
            }
            let body = self.body(line, value, &key.name);
            effects.updates.push((key.name.clone(), body));
        }
        effects.set_flag = node.get("state").and_then(|state| match state.as_str() {
            Some(name) => Some(name.to_owned()),
            None => {
                self.problem(line, state.at, "state", "expected the name of a state flag");
                None
            }
        });
        effects.close = self.flag(line, &node, "close", "close");
        if self.flag(line, &node, "error", "error") {
            let code = self.code(line, &node, "code");
            effects.error = Some(code);
            effects.details =
                node.get("details").and_then(|details| self.details(line, details, code, "details"));
        } else {
            self.needs_error(line, &node, "");
        }
        let condition =
            node.get("condition").and_then(|condition| self.template(line, condition, "condition"));
        match node.get("dir").and_then(Node::as_str) {
            Some("out") => {
                let due = self.due(line, node.get("ts"));
                let text = match node.get("text") {
                    Some(text) => Some(self.body(line, text, "text")),
                    None if effects.close || effects.error.is_some() => None,
                    None => {
                        let message = "an outbound entry needs `text` (or `close: true` to end the stream OK, or `error: true`)";
                        self.problem(line, node.at, "text", message);
                        None
                    }
                };
                script.outbound.push(OutEntry { line, due, condition, text, effects });
            }
            Some("in") => {
                let pattern = self.pattern(line, node.get("text"));
                let response = node.get("response").map(|response| self.body(line, response, "response"));
                let delay = self.due(line, node.get("ts"));
                let replies = match node.get("responses") {
                    Some(responses) => {
                        self.replies_alone(line, &node, responses);
                        self.replies(line, responses)
                    }
                    None => Vec::new(),
                };
                let entry = InEntry { line, pattern, condition, response, delay, replies, effects };
                if matches!(entry.pattern, TextPattern::Anything) {
                    script.fallbacks.push(entry);
                } else {
                    script.inbound.push(entry);
                }
            }
            _ => {
                let at = node.get("dir").map_or(node.at, |dir| dir.at);
                self.problem(line, at, "dir", "expected \"in\" or \"out\"");
            }
        }
    }

    /// `name` in `node` as a boolean, reported as `field` when it is not one.
    fn flag(&mut self, line: usize, node: &Node, name: &str, field: &str) -> bool {
        match node.get(name).map(|value| &value.value) {
            None => false,
            Some(NodeValue::Bool(flag)) => *flag,
            Some(_) => {
                let at = node.get(name).map_or(node.at, |value| value.at);
                self.problem(line, at, field, "expected true or false");
                false
            }
        }
    }

    /// `code` for `error: true` entries; `UNAVAILABLE` when absent.
    fn code(&mut self, line: usize, node: &Node, field: &str) -> tonic::Code {
        let Some(code) = node.get("code") else { return tonic::Code::Unavailable };
        code_from_node(code).unwrap_or_else(|message| {
            self.problem(line, code.at, field, message);
            tonic::Code::Unavailable
        })
    }

    /// `details` of an `error: true` entry: rich error details, as a stub's output has them.
    fn details(&mut self, line: usize, node: &Node, code: tonic::Code, field: &str) -> Option<StatusDetails> {
        let pool = self.method.input().parent_pool().clone();
        status_with_details(code, node, Some(&pool))
            .map_err(|message| self.problem(line, node.at, field, message))
            .ok()
    }

    /// `code` and `details` describe an error: without `error: true` they would do nothing.
    fn needs_error(&mut self, line: usize, node: &Node, prefix: &str) {
        for key in ["code", "details"] {
            if let Some(value) = node.get(key) {
                let message = format!("`{key}` belongs to an `error: true` entry; this one is not an error");
                self.problem(line, value.at, &format!("{prefix}{key}"), message);
            }
        }
    }

    fn due(&mut self, line: usize, ts: Option<&Node>) -> Due {
        let Some(ts) = ts else { return Due::At(0) };
        match &ts.value {
            NodeValue::Number(number) => match number.as_u64() {
                Some(millis) => Due::At(millis),
                None => {
                    self.problem(line, ts.at, "ts", "expected milliseconds from 0 up");
                    Due::At(0)
                }
            },
            NodeValue::String(_) => match self.template(line, ts, "ts") {
                Some(template) => Due::Template(template),
                None => Due::At(0),
            },
            _ => {
                self.problem(line, ts.at, "ts", "expected milliseconds or a template");
                Due::At(0)
            }
        }
    }

    fn pattern(&mut self, line: usize, text: Option<&Node>) -> TextPattern {
        let Some(text) = text else { return TextPattern::Anything };
        let Some(source) = text.as_str() else {
            return self.subset(line, text);
        };
        match source {
            ".*" => TextPattern::Anything,
            "" => TextPattern::Empty,
            _ => match serde_json::from_str::<Json>(source) {
                Ok(Json::Object(_)) => match read_documents(self.path, source) {
                    Ok(documents) => self.subset(line, &Node { at: text.at, ..documents[0].clone() }),
                    Err(_) => TextPattern::Anything,
                },
                _ => match regex::Regex::new(source) {
                    Ok(regex) => TextPattern::Regex(regex),
                    Err(error) => {
                        self.problem(line, text.at, "text", format!("bad regex: {error}"));
                        TextPattern::Anything
                    }
                },
            },
        }
    }

    /// `{"type":"JOIN"}`: matched like a stub's `contains`, where absent fields are defaults.
    fn subset(&mut self, line: usize, pattern: &Node) -> TextPattern {
        let contains = Node {
            at: pattern.at,
            value: NodeValue::Map(vec![(
                crate::document::Key { name: "contains".into(), at: pattern.at },
                pattern.clone(),
            )]),
        };
        let mut errors = Vec::new();
        let matcher = MessageMatcher::compile(&contains, &self.method.input(), "text", &mut errors);
        for error in errors {
            let at = Position { line, column: pattern.at.column };
            self.problem(line, at, &error.path.replacen("text.contains", "text", 1), error.message);
        }
        TextPattern::Subset(Box::new(matcher))
    }

    fn template(&mut self, line: usize, node: &Node, field: &str) -> Option<Template> {
        let source = node.as_str().map_or_else(|| node.to_json().to_string(), str::to_owned);
        match Template::compile(&source) {
            Ok(template) => {
                self.check_paths(line, node, field, &template);
                Some(template)
            }
            Err(error) => {
                let at = Position { line, column: node.at.column + 1 + error.offset };
                self.problem(line, at, field, format!("template: {}", error.message));
                None
            }
        }
    }

    /// A value an entry produces: embedded JSON text is parsed so templates sit in its string
    /// values; any other text is one template.
    fn body(&mut self, line: usize, node: &Node, field: &str) -> JsonTemplate {
        let json = match &node.value {
            NodeValue::String(text) => match serde_json::from_str::<Json>(text) {
                Ok(json @ (Json::Object(_) | Json::Array(_))) => json,
                _ => node.to_json(),
            },
            _ => node.to_json(),
        };
        match JsonTemplate::compile(&json) {
            Ok(body) => {
                for message in unknown_request_paths(&body.paths(), &self.method.input()) {
                    self.problem(line, node.at, field, message);
                }
                body
            }
            Err(error) => {
                let path = format!("{field}{}", error.pointer.replace('/', "."));
                self.problem(line, node.at, &path, format!("template: {}", error.error.message));
                JsonTemplate::Literal(Json::Null)
            }
        }
    }

    /// Reports template paths into `request` that name no field of the request type.
    fn check_paths(&mut self, line: usize, node: &Node, field: &str, template: &Template) {
        for message in unknown_request_paths(&template.paths(), &self.method.input()) {
            self.problem(line, node.at, field, message);
        }
    }

    /// Entries that the method's call pattern can never use are mistakes.
    fn check_call_pattern(&mut self, script: &Script) {
        let kind = self.method.kind;
        let unused = match kind {
            CallKind::Unary => Some("scripts drive streaming methods; answer unary methods with a stub"),
            CallKind::ServerStreaming if !script.inbound.is_empty() || !script.fallbacks.is_empty() => Some(
                "a server-streaming call receives no messages after its request: `dir: \"in\"` entries never fire",
            ),
            CallKind::ClientStreaming if !script.outbound.is_empty() => {
                Some("a client-streaming call answers once: use `dir: \"in\"` entries with a `response`")
            }
            CallKind::ClientStreaming
                if script.inbound.iter().chain(&script.fallbacks).any(|entry| !entry.replies.is_empty()) =>
            {
                Some("a client-streaming call answers once: use `response`, not `responses`")
            }
            _ => None,
        };
        if let Some(message) = unused {
            let with_replies = script.inbound.iter().chain(&script.fallbacks).find(|e| !e.replies.is_empty());
            let line = script
                .outbound
                .first()
                .map(|e| e.line)
                .or(with_replies.map(|e| e.line))
                .or(script.inbound.first().map(|e| e.line))
                .unwrap_or(1);
            self.problem(
                line,
                Position::default(),
                "dir",
                format!("{message} ({} is {kind})", self.method.path.trim_start_matches('/')),
            );
        }
    }
}

/// What is wrong with each template path into `request` that names no field of `input`
/// (`request.ws.state.…` and `stream.…` are free-form).
pub fn unknown_request_paths(paths: &[Vec<String>], input: &MessageDescriptor) -> Vec<String> {
    let mut problems = Vec::new();
    for path in paths {
        let segments: Vec<&str> = path.iter().map(String::as_str).collect();
        let fields = match segments.as_slice() {
            ["request", "ws", "message", rest @ ..] => rest,
            ["request", "ws", ..] | ["stream", ..] => continue,
            ["request", rest @ ..] => rest,
            _ => continue,
        };
        if let Some(message) = missing_field(input, fields) {
            problems.push(format!("template reads {}: {message}", segments.join(".")));
        }
    }
    problems
}

/// Why `fields` is not a path of fields in `message`, if it is not.
fn missing_field(message: &MessageDescriptor, fields: &[&str]) -> Option<String> {
    let (first, rest) = fields.split_first()?;
    let Some(field) = resolve_field(message, first) else {
        return Some(format!("{} has no field '{first}'{}", message.full_name(), suggest(message, first)));
    };
    match field.kind() {
        Kind::Message(nested) if !field.is_list() && !field.is_map() => missing_field(&nested, rest),
        _ => None,
    }
}
