//! Compiling a stub's `output`: messages checked against the response type and encoded once
//! (or compiled as templates), GripMock's per-element `_gripmock` directives, statuses with
//! rich details, headers and trailers, delays in Go's duration syntax, and `script`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use serde_json::Value as Json;
use tonic::Code;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};

use super::compile::{ELEMENT_DIRECTIVE, FileCompiler, OUTPUT_FIELDS};
use super::fields::check_message;
use super::model::{OutputMessage, StubOutput, StubStatus};
use crate::document::Node;
use crate::proto::json::message_from_json;
use crate::proto::status::code_from_node;
use crate::proto::{CallKind, MethodEntry, OutboundMessage};
use crate::script::parse::unknown_request_paths;
use crate::script::{Script, parse_script};
use crate::template::{JsonTemplate, Template};

impl FileCompiler<'_> {
    pub(super) fn output(&mut self, node: &Node, path: &str, method: &Arc<MethodEntry>) -> StubOutput {
        self.known_keys(node, path, OUTPUT_FIELDS);
        let (headers, header_templates) = self.metadata(node.get("headers"), &format!("{path}.headers"));
        let (trailers, trailer_templates) = self.metadata(node.get("trailers"), &format!("{path}.trailers"));
        let mut output = StubOutput {
            headers,
            header_templates,
            trailers,
            trailer_templates,
            delay: node
                .get("delay")
                .and_then(|delay| self.delay(delay, &format!("{path}.delay")))
                .unwrap_or_default(),
            ..StubOutput::default()
        };
        match (node.get("data"), node.get("stream")) {
            (Some(_), Some(stream)) => self.problem(
                stream.at,
                &format!("{path}.stream"),
                "an output cannot have both `data` and `stream`",
            ),
            (Some(data), None) => output.messages.extend(self.message(data, &format!("{path}.data"), method)),
            (None, Some(stream)) => {
                output.streamed = true;
                match stream.as_seq() {
                    Some(items) => {
                        for (index, item) in items.iter().enumerate() {
                            output.messages.extend(self.stream_element(
                                item,
                                &format!("{path}.stream[{index}]"),
                                method,
                            ));
                        }
                    }
                    None => self.problem(
                        stream.at,
                        &format!("{path}.stream"),
                        format!("expected a list of messages, found {}", stream.kind()),
                    ),
                }
            }
            (None, None) => {}
        }
        output.status = self.status(node, path);
        output.script = node
            .get("script")
            .and_then(|script| self.script(script, &format!("{path}.script"), node, method));
        if ["data", "stream", "error", "code", "script"].iter().all(|key| node.get(key).is_none()) {
            self.problem(node.at, path, "an output needs `data`, `stream`, `error`/`code` or `script`");
        }
        output
    }

    /// `output.script: PATH`, relative to the stub file: the script plays the answer.
    fn script(
        &mut self,
        node: &Node,
        path: &str,
        output: &Node,
        method: &Arc<MethodEntry>,
    ) -> Option<Arc<Script>> {
        let Some(relative) = node.as_str() else {
            self.problem(
                node.at,
                path,
                format!("expected the path of a .jsonl script, found {}", node.kind()),
            );
            return None;
        };
        if output.get("data").is_some() || output.get("stream").is_some() {
            self.problem(node.at, path, "an output with a `script` cannot also have `data` or `stream`");
            return None;
        }
        if method.kind == CallKind::ClientStreaming {
            self.problem(
                node.at,
                path,
                "a client-streaming stub cannot choose a script: bind the script to the method by its path",
            );
            return None;
        }
        let file = self.path.parent().unwrap_or(Path::new(".")).join(relative);
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(error) => {
                self.problem(node.at, path, format!("cannot read {}: {error}", file.display()));
                return None;
            }
        };
        match parse_script(&file, &text, method.clone()) {
            Ok(script) => Some(Arc::new(script)),
            Err(problems) => {
                self.problems.extend(problems);
                None
            }
        }
    }

    fn message(&mut self, node: &Node, path: &str, method: &MethodEntry) -> Option<OutputMessage> {
        let output_type = method.output();
        let mut errors = Vec::new();
        check_message(node, &output_type, path, &mut errors);
        if !errors.is_empty() {
            self.matcher_errors(errors);
            return None;
        }
        let json = node.to_json();
        let template = match JsonTemplate::compile(&json) {
            Ok(template) if template.is_literal() => None,
            Ok(template) => {
                for message in unknown_request_paths(&template.paths(), &method.input()) {
                    self.problem(node.at, path, message);
                }
                Some(Arc::new(template))
            }
            Err(error) => {
                let field = format!("{path}{}", error.pointer.replace('/', "."));
                self.problem(node.at, &field, format!("template: {}", error.error.message));
                return None;
            }
        };
        if template.is_some() {
            // Rendered per call; value types are checked then.
            return Some(OutputMessage {
                message: OutboundMessage::Encoded(Bytes::new()),
                template,
                delay: None,
                status: None,
            });
        }
        match message_from_json(&output_type, &json) {
            Ok(message) => Some(OutputMessage {
                message: OutboundMessage::Encoded(Bytes::from(message.encode_to_vec())),
                template: None,
                delay: None,
                status: None,
            }),
            Err(error) => {
                self.problem(node.at, path, error.to_string());
                None
            }
        }
    }

    /// A `stream` element, with GripMock's `_gripmock: {delay, error, code, details}` stripped
    /// off and applied.
    fn stream_element(&mut self, node: &Node, path: &str, method: &MethodEntry) -> Option<OutputMessage> {
        let Some(directive) = node.get(ELEMENT_DIRECTIVE) else { return self.message(node, path, method) };
        let directive_path = format!("{path}.{ELEMENT_DIRECTIVE}");
        self.known_keys(directive, &directive_path, &["delay", "error", "code", "details"]);
        let delay =
            directive.get("delay").and_then(|delay| self.delay(delay, &format!("{directive_path}.delay")));
        let status = self.status(directive, &directive_path);
        let mut message = if status.is_some() {
            // The stream ends here; the element's own fields are not sent.
            OutputMessage {
                message: OutboundMessage::Encoded(Bytes::new()),
                template: None,
                delay: None,
                status: None,
            }
        } else {
            let mut stripped = node.clone();
            if let crate::document::NodeValue::Map(entries) = &mut stripped.value {
                entries.retain(|(key, _)| key.name != ELEMENT_DIRECTIVE);
            }
            self.message(&stripped, path, method)?
        };
        message.delay = delay;
        message.status = status;
        Some(message)
    }

    /// `error` + `code` + `details`, as GripMock reads them: `error` alone is `ABORTED`; `code`
    /// 0 (`OK`) is success.
    fn status(&mut self, node: &Node, path: &str) -> Option<StubStatus> {
        let message = node
            .get("error")
            .map(|error| error.as_str().map_or_else(|| error.to_json().to_string(), str::to_owned));
        let code = node.get("code").and_then(|code| {
            code_from_node(code)
                .map_err(|message| self.problem(code.at, &format!("{path}.code"), message))
                .ok()
        });
        let code = match (message.is_some(), code) {
            (_, Some(Code::Ok)) | (false, None) => return None,
            (_, Some(code)) => code,
            (true, None) => Code::Aborted,
        };
        let details = node
            .get("details")
            .and_then(|details| self.details(details, &format!("{path}.details"), code, message.as_deref()));
        Some(StubStatus { code, message: message.unwrap_or_default(), details })
    }

    /// `details` as an encoded `google.rpc.Status`; each detail is JSON with `@type` (or
    /// GripMock's `type`) naming a message in the pool.
    fn details(&mut self, node: &Node, path: &str, code: Code, message: Option<&str>) -> Option<Bytes> {
        let status_type = self.pool.get_message_by_name("google.rpc.Status")?;
        let Some(items) = node.as_seq() else {
            self.problem(node.at, path, format!("expected a list of details, found {}", node.kind()));
            return None;
        };
        let mut details = Vec::new();
        for item in items {
            let mut detail = item.to_json();
            if let Some(object) = detail.as_object_mut() {
                if let Some(type_url) = object.remove("type") {
                    object.entry("@type").or_insert(type_url);
                }
                if let Some(Json::String(type_url)) = object.get_mut("@type") {
                    if !type_url.contains('/') {
                        *type_url = format!("type.googleapis.com/{type_url}");
                    }
                }
            }
            details.push(detail);
        }
        let status = serde_json::json!({"code": code as i32, "message": message.unwrap_or_default(), "details": details});
        match message_from_json(&status_type, &status) {
            Ok(status) => Some(Bytes::from(status.encode_to_vec())),
            Err(error) => {
                self.problem(
                    node.at,
                    path,
                    format!("{} (each detail needs `@type` naming a known message)", error.reason),
                );
                None
            }
        }
    }

    /// Literal headers, and those whose values are templates (rendered per call).
    fn metadata(&mut self, node: Option<&Node>, path: &str) -> (MetadataMap, Vec<(String, Template)>) {
        let mut metadata = MetadataMap::new();
        let mut templates = Vec::new();
        for (key, value) in node.and_then(Node::as_map).unwrap_or_default() {
            let text = value.as_str().map_or_else(|| value.to_json().to_string(), str::to_owned);
            let name = key.name.to_ascii_lowercase();
            if text.contains("{{") {
                match Template::compile(&text) {
                    Ok(template) if name.parse::<MetadataKey<tonic::metadata::Ascii>>().is_ok() => {
                        templates.push((name, template))
                    }
                    Ok(_) => self.problem(key.at, &format!("{path}.{}", key.name), "not a valid header name"),
                    Err(error) => self.problem(
                        value.at,
                        &format!("{path}.{}", key.name),
                        format!("template: {}", error.message),
                    ),
                }
                continue;
            }
            // GripMock sends `a;b` as two values of one header.
            for part in text.split(';').map(str::trim) {
                let added = if name.ends_with("-bin") {
                    MetadataKey::from_bytes(name.as_bytes()).ok().map(|key| {
                        metadata.append_bin(key, tonic::metadata::MetadataValue::from_bytes(part.as_bytes()))
                    })
                } else {
                    match (name.parse::<MetadataKey<tonic::metadata::Ascii>>(), MetadataValue::try_from(part))
                    {
                        (Ok(key), Ok(value)) => Some(metadata.append(key, value)),
                        _ => None,
                    }
                };
                if added.is_none() {
                    self.problem(key.at, &format!("{path}.{}", key.name), "not a valid header name or value");
                }
            }
        }
        (metadata, templates)
    }

    fn delay(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let parsed = match node.to_json() {
            // GripMock reads bare numbers as nanoseconds (Go's time.Duration).
            Json::Number(number) => number.as_u64().map(Duration::from_nanos),
            Json::String(text) => parse_go_duration(&text),
            _ => None,
        };
        if parsed.is_none() {
            self.problem(
                node.at,
                path,
                format!("not a duration: {node} (write e.g. \"150ms\", \"1.5s\", \"1m30s\")"),
            );
        }
        parsed
    }
}

/// Parses Go's duration syntax: a sequence of decimal numbers with units, such as `150ms`,
/// `1.5s`, `1m30s`, `2h`; units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * seconds_per_unit;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("150ms"), Some(Duration::from_millis(150)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("5 parsecs"), None);
    }
}
