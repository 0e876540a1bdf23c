//! Live cuts as a profile or an admin request writes them: a phase's `on_enter`
//! (`{disconnect: MODE}` or `{fail: {code, message, details}}`, with `fraction` and `method`)
//! and the body of `POST /admin/disconnect` (the same, with `mode` for `disconnect`). One reader
//! for both, so both accept and refuse the same things with the same located messages.

use std::path::Path;

use tonic::Code;

use super::MethodReference;
use super::details::encode_details;
use super::reader::{Reader, join};
use super::{protocol, values};
use crate::chaos::plan::{DisconnectMode, LiveAction, LiveCut, MethodMatch};
use crate::diagnostic::{Problem, Problems};
use crate::document::{Node, read_documents};

/// The disconnect modes a live cut may use (a stall keeps a stream open, so it cuts nothing).
const LIVE_MODES: &[&str] = &["goaway", "tcp_reset", "reset_stream", "blackhole"];
/// HTTP/2 `CANCEL`, as for drawn resets.
const RESET_H2_CODE: u32 = 8;

impl Reader<'_> {
    /// A live cut at `node`; `mode_key` names the disconnect key (`disconnect` in a profile,
    /// `mode` in an admin request).
    pub(super) fn live_cut(
        &mut self,
        node: &Node,
        field: &str,
        mode_key: &str,
        methods: &mut Vec<MethodReference>,
    ) -> Option<LiveCut> {
        self.mapping(node, field, &[mode_key, "fail", "fraction", "method"])?;
        let action = match (node.get(mode_key), node.get("fail")) {
            (Some(mode), None) => self.live_mode(mode, &join(field, mode_key)).map(LiveAction::Disconnect),
            (None, Some(fail)) => self.live_fail(fail, &join(field, "fail")),
            (Some(_), Some(fail)) => {
                self.problem(
                    fail.at,
                    &join(field, "fail"),
                    format!("set either '{mode_key}' or 'fail', not both"),
                );
                None
            }
            (None, None) => {
                let example =
                    format!("e.g. {{ {mode_key}: tcp_reset }} or {{ fail: {{ code: UNAVAILABLE }} }}");
                self.problem(node.at, field, format!("set '{mode_key}' or 'fail' ({example})"));
                None
            }
        };
        let fraction = self.optional(node, field, "fraction", values::rate).unwrap_or(1.0);
        let matcher = match node.get("method") {
            None => Some(MethodMatch::All),
            Some(method) => {
                let field = join(field, "method");
                let matcher = self.parse(method, &field, protocol::method_match)?;
                methods.push(MethodReference { matcher: matcher.clone(), field, at: method.at });
                Some(matcher)
            }
        };
        Some(LiveCut { action: action?, fraction, matcher: matcher? })
    }

    fn live_mode(&mut self, node: &Node, field: &str) -> Option<DisconnectMode> {
        let name = self.parse(node, field, |mode| {
            let known = mode.as_str().and_then(|name| LIVE_MODES.iter().find(|known| **known == name));
            known.copied().ok_or_else(|| {
                format!("not a live cut mode: {mode} (expected one of: {})", LIVE_MODES.join(", "))
            })
        })?;
        Some(match name {
            "goaway" => DisconnectMode::Goaway { grace: None },
            "tcp_reset" => DisconnectMode::TcpReset,
            "blackhole" => DisconnectMode::Blackhole,
            _ => DisconnectMode::ResetStream { h2_code: RESET_H2_CODE },
        })
    }

    fn live_fail(&mut self, node: &Node, field: &str) -> Option<LiveAction> {
        self.mapping(node, field, &["code", "message", "details"])?;
        let code = self.optional(node, field, "code", values::code).unwrap_or(Code::Unavailable);
        let message =
            self.optional(node, field, "message", values::text).unwrap_or_else(|| "injected outage".into());
        let details = match node.get("details") {
            None => None,
            Some(details) => Some(self.parse(details, &join(field, "details"), |details| {
                encode_details(code, &message, details)
            })?),
        };
        Some(LiveAction::Fail { code, message, details })
    }
}

/// The body of `POST /admin/disconnect`, JSON: `{"mode": "tcp_reset", "method": "pkg.Svc/M",
/// "fraction": "50%"}` or `{"fail": {"code": "UNAVAILABLE", "message": "..."}}`. Problems are
/// located in the body (`request body:line:col`).
pub fn live_cut_request(body: &str) -> Result<LiveCut, Problems> {
    let source = Path::new("request body");
    let mut documents = read_documents(source, body)?;
    let Some(node) = documents.pop().filter(|_| documents.is_empty()) else {
        return Err(Problems::from(Problem::in_file(source, "expected one JSON object")));
    };
    let mut reader = Reader::new(source);
    let cut = reader.live_cut(&node, "", "mode", &mut Vec::new());
    match cut {
        Some(cut) if reader.problems.is_empty() => Ok(cut),
        _ => Err(reader.problems),
    }
}
