//! The `responses` list of an inbound entry: replies to one message, each at its own time.

use super::ScriptParser;
use crate::document::{Node, NodeValue};
use crate::script::model::{Reply, ReplyAction};

/// The keys of one element of an inbound entry's `responses`.
const REPLY_FIELDS: &[&str] = &["ts", "text", "error", "code", "details", "close"];

impl ScriptParser<'_> {
    /// `responses` replaces `response`, and its elements carry their own times and endings.
    pub(super) fn replies_alone(&mut self, line: usize, node: &Node, responses: &Node) {
        if node.get("response").is_some() {
            let message = "an entry has either `response` or `responses`, not both";
            self.problem(line, responses.at, "responses", message);
        }
        for (key, why) in [
            ("close", "end with a `{\"close\": true}` element in `responses`"),
            ("error", "end with an `{\"error\": true, ...}` element in `responses`"),
        ] {
            if let Some(value) = node.get(key) {
                let message = format!("`{key}` does not go with `responses`: {why}");
                self.problem(line, value.at, key, message);
            }
        }
        if let Some(ts) = node.get("ts") {
            if !matches!(&ts.value, NodeValue::Number(number) if number.as_u64() == Some(0)) {
                let message = "with `responses`, each reply has its own `ts` (after the message arrived); the entry's `ts` must be 0 or absent";
                self.problem(line, ts.at, "ts", message);
            }
        }
    }

    /// The elements of `responses`, each `{"ts", "text"}`, `{"ts", "error": true, "code",
    /// "text", "details"}` or `{"ts", "close": true}`, in non-decreasing time order.
    pub(super) fn replies(&mut self, line: usize, node: &Node) -> Vec<Reply> {
        let Some(items) = node.as_seq() else {
            let message = format!("expected a list of replies, found {}", node.kind());
            self.problem(line, node.at, "responses", message);
            return Vec::new();
        };
        let mut replies = Vec::new();
        let mut latest = 0;
        let mut ended: Option<usize> = None;
        for (index, item) in items.iter().enumerate() {
            let field = format!("responses[{index}]");
            let Some(keys) = item.as_map() else {
                let message = format!(
                    "expected a reply such as {{\"ts\": 10, \"text\": ...}}, {{\"ts\": 10, \"error\": true, ...}} or {{\"ts\": 10, \"close\": true}}, found {}",
                    item.kind()
                );
                self.problem(line, item.at, &field, message);
                continue;
            };
            for (key, _) in keys {
                if !REPLY_FIELDS.contains(&key.name.as_str()) {
                    let message = format!(
                        "unknown field '{}' in a reply (a reply has {})",
                        key.name,
                        REPLY_FIELDS.join(", ")
                    );
                    self.problem(line, key.at, &format!("{field}.{}", key.name), message);
                }
            }
            let after = match item.get("ts") {
                None => latest,
                Some(ts) => match &ts.value {
                    NodeValue::Number(number) if number.as_u64().is_some() => {
                        number.as_u64().expect("checked")
                    }
                    _ => {
                        let message = "expected milliseconds after the message arrived, from 0 up";
                        self.problem(line, ts.at, &format!("{field}.ts"), message);
                        latest
                    }
                },
            };
            if after < latest {
                let at = item.get("ts").map_or(item.at, |ts| ts.at);
                let message =
                    format!("replies go in time order: ts {after} comes after a reply at ts {latest}");
                self.problem(line, at, &format!("{field}.ts"), message);
            }
            latest = latest.max(after);
            if let Some(end) = ended {
                let message = format!("never sent: responses[{end}] already ends the stream");
                self.problem(line, item.at, &field, message);
            }
            let close = self.flag(line, item, "close", &format!("{field}.close"));
            let error = self.flag(line, item, "error", &format!("{field}.error"));
            let text = item.get("text").map(|text| self.body(line, text, &format!("{field}.text")));
            let action = if error {
                if close {
                    let message = "a reply either closes the stream OK or ends it with an error, not both";
                    self.problem(line, item.at, &format!("{field}.close"), message);
                }
                let code = self.code(line, item, &format!("{field}.code"));
                let details = item
                    .get("details")
                    .and_then(|details| self.details(line, details, code, &format!("{field}.details")));
                ReplyAction::Fail { code, text, details }
            } else {
                self.needs_error(line, item, &format!("{field}."));
                if close {
                    if let Some(text) = item.get("text") {
                        let message = "a `close` reply sends nothing: put the message in a reply before it";
                        self.problem(line, text.at, &format!("{field}.text"), message);
                    }
                    ReplyAction::Close
                } else {
                    match text {
                        Some(text) => ReplyAction::Send(text),
                        None => {
                            let message = "a reply needs `text`, `error: true` or `close: true`";
                            self.problem(line, item.at, &field, message);
                            continue;
                        }
                    }
                }
            };
            if close || error {
                ended = ended.or(Some(index));
            }
            replies.push(Reply { after, action });
        }
        replies
    }
}
