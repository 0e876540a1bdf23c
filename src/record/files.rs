//! A method's recorded exchanges as files `serve --stubs DIR` loads unchanged:
//!
//! - `<package.Service>/<Method>.yaml`: one GripMock stub per distinct exchange, each after a
//!   `# Seen N times.` comment. Matchers are `equals` on the request headers kept and on the
//!   request as recorded (`input` for unary, server streaming and bidi — the first message —,
//!   `inputs` for client streaming), with the recorded response headers and trailers.
//! - unary and client streaming answer with `output.data`, or `error`/`code`/`details`;
//! - server streaming and bidi answer with `output.script: <Method>-<n>.jsonl`, a stream script
//!   replaying the messages at their recorded times ([`script`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::{Value as Json, json};
use tonic::Code;

use super::exchange::{Exchange, RecordedStatus, Timed};
use crate::proto::status::code_name;
use crate::proto::{CallKind, MethodEntry};

/// One distinct exchange and how often it was seen.
pub struct Recorded {
    pub exchange: Exchange,
    pub seen: u64,
}

/// The stub file of `method`, relative to the recording directory.
pub fn stub_path(method: &MethodEntry) -> PathBuf {
    PathBuf::from(&method.service).join(format!("{}.yaml", method.method))
}

/// The name of the `n`-th (from 1) script of `method`, beside its stub file.
pub fn script_name(method: &MethodEntry, n: usize) -> String {
    format!("{}-{n}.jsonl", method.method)
}

/// Whether `method`'s exchanges are replayed by scripts.
pub fn has_scripts(method: &MethodEntry) -> bool {
    matches!(method.kind, CallKind::ServerStreaming | CallKind::BidiStreaming)
}

#[derive(Serialize)]
struct StubDocument<'a> {
    service: &'a str,
    method: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    headers: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inputs: Option<Vec<Json>>,
    output: OutputDocument,
}

#[derive(Serialize, Default)]
struct OutputDocument {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    script: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    details: Vec<Json>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    trailers: BTreeMap<String, String>,
}

/// The stub file for `method`'s exchanges (scripts named by [`script_name`] in the same order).
pub fn stub_file(method: &MethodEntry, recorded: &[Recorded]) -> Result<String, String> {
    let mut text = format!(
        "# {}: {} distinct call{} recorded by streamstorm through its proxy.\n",
        method.path.trim_start_matches('/'),
        recorded.len(),
        if recorded.len() == 1 { "" } else { "s" }
    );
    for (index, entry) in recorded.iter().enumerate() {
        let document = stub_document(method, &entry.exchange, index + 1);
        let yaml = serde_saphyr::to_string(&document).map_err(|error| error.to_string())?;
        text.push_str(&match entry.seen {
            1 => "# Seen once.\n".to_owned(),
            seen => format!("# Seen {seen} times.\n"),
        });
        for (line_index, line) in yaml.lines().enumerate() {
            text.push_str(if line_index == 0 { "- " } else { "  " });
            text.push_str(line);
            text.push('\n');
        }
    }
    Ok(text)
}

fn stub_document<'a>(method: &'a MethodEntry, exchange: &Exchange, n: usize) -> StubDocument<'a> {
    let equals = |message: &Json| json!({ "equals": message });
    let first = exchange.requests.first().map(|timed| equals(&timed.message));
    let (input, inputs) = match method.kind {
        CallKind::ClientStreaming if !exchange.requests.is_empty() => {
            (None, Some(exchange.requests.iter().map(|timed| equals(&timed.message)).collect()))
        }
        CallKind::ClientStreaming => (None, None),
        _ => (first, None),
    };
    let headers = (!exchange.request_headers.is_empty())
        .then(|| json!({ "equals": Json::Object(joined(&exchange.request_headers).into_iter().map(|(k, v)| (k, Json::String(v))).collect()) }));
    let mut output = OutputDocument {
        headers: joined(&exchange.response_headers),
        trailers: joined(&exchange.trailers),
        ..OutputDocument::default()
    };
    if has_scripts(method) {
        output.script = Some(script_name(method, n));
    } else if exchange.status.code != Code::Ok {
        let status = &exchange.status;
        output.error = Some(status.message.clone());
        output.code = Some(code_name(status.code));
        output.details = status.details.clone();
    } else {
        output.data =
            Some(exchange.responses.first().map_or_else(|| json!({}), |timed| timed.message.clone()));
    }
    StubDocument { service: &method.service, method: &method.method, headers, input, inputs, output }
}

/// Headers sent several times joined with `;`, as stubs write them.
fn joined(headers: &[(String, String)]) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        map.entry(name.clone())
            .and_modify(|joined| *joined = format!("{joined};{value}"))
            .or_insert(value.clone());
    }
    map
}

/// The stream script replaying `exchange` (server streaming or bidi): one JSON object a line.
///
/// Server streaming: each response an outbound entry at its own `ts` (ms since the call
/// opened), then the end where it came: an `error` entry with the status, or a `close`.
///
/// Bidi: responses sent before the client's first message are outbound entries; then each
/// client message, in order, is an inbound entry (the `received` state counter keeps the
/// order, so identical messages get their own replies) whose `responses` are what the
/// upstream sent after it and before the next, each `ts` ms after that message arrived; the
/// end goes where it came.
pub fn script(method: &MethodEntry, exchange: &Exchange) -> String {
    let mut lines = vec![format!(
        "// {}, recorded by streamstorm through its proxy: {} message{} in, {} out, ended {}.",
        method.path.trim_start_matches('/'),
        exchange.requests.len(),
        if exchange.requests.len() == 1 { "" } else { "s" },
        exchange.responses.len(),
        code_name(exchange.status.code)
    )];
    let bidi = method.kind == CallKind::BidiStreaming;
    let mut responses = exchange.responses.iter();
    let mut requests = exchange.requests.iter().enumerate();
    // The inbound entry being filled: its line without `responses`, its arrival, its replies.
    let mut open: Option<Inbound> = None;
    for &from_client in &exchange.sequence {
        if from_client {
            let Some((index, request)) = requests.next() else { continue };
            if bidi {
                flush(open.take(), &mut lines);
                lines.push(format!("// Client message {} arrived at {} ms.", index + 1, request.at));
                open = Some((inbound_entry(index, request), request.at, Vec::new()));
            }
            continue;
        }
        let Some(response) = responses.next() else { continue };
        match &mut open {
            Some((_, arrived, replies)) => replies.push(format!(
                "{{\"ts\":{},\"text\":{}}}",
                response.at.saturating_sub(*arrived),
                response.message
            )),
            None => lines
                .push(format!("{{\"ts\":{},\"dir\":\"out\",\"text\":{}}}", response.at, response.message)),
        }
    }
    let status = &exchange.status;
    match &mut open {
        Some((_, arrived, replies)) => {
            replies.push(ending(status, status.at.saturating_sub(*arrived), false))
        }
        None => lines.push(ending(status, status.at, true)),
    }
    flush(open, &mut lines);
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// A bidi script's inbound entry in the making: its line without `responses` (nor its closing
/// brace), when its message arrived, and its replies.
type Inbound = (String, u64, Vec<String>);

/// Writes out the inbound entry `open`, with its replies.
fn flush(open: Option<Inbound>, lines: &mut Vec<String>) {
    if let Some((entry, _, replies)) = open {
        lines.push(match replies.is_empty() {
            true => format!("{entry}}}"),
            false => format!("{entry},\"responses\":[{}]}}", replies.join(",")),
        });
    }
}

/// The inbound entry for the client's `index`-th (from 0) message.
fn inbound_entry(index: usize, request: &Timed) -> String {
    format!(
        "{{\"ts\":0,\"dir\":\"in\",\"text\":{},\"condition\":\"{{{{(request.ws.state.received || 0) == {index}}}}}\",\"received\":\"{{{{(request.ws.state.received || 0) + 1}}}}\"",
        request.message
    )
}

/// How the call ended, `ts` ms after what it is timed from: an outbound entry (`out`) or an
/// element of an inbound entry's `responses`.
fn ending(status: &RecordedStatus, ts: u64, out: bool) -> String {
    let dir = if out { ",\"dir\":\"out\"" } else { "" };
    if status.code == Code::Ok {
        return format!("{{\"ts\":{ts}{dir},\"close\":true}}");
    }
    let details = match status.details.is_empty() {
        true => String::new(),
        false => format!(",\"details\":{}", Json::Array(status.details.clone())),
    };
    format!(
        "{{\"ts\":{ts}{dir},\"error\":true,\"code\":\"{}\",\"text\":{}{details}}}",
        code_name(status.code),
        Json::String(status.message.clone())
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::proto::{MethodCatalog, load_pool};
    use crate::server::introspection::add_builtin_descriptors;
    use crate::stub::compile::compile_file;

    fn catalog() -> (MethodCatalog, prost_reflect::DescriptorPool) {
        let mut pool = load_pool(&[PathBuf::from("protos/myapp")], &[]).unwrap();
        add_builtin_descriptors(&mut pool).unwrap();
        (MethodCatalog::new(&pool, &[]), pool)
    }

    fn method(catalog: &MethodCatalog, path: &str) -> Arc<MethodEntry> {
        catalog.by_path(path).unwrap().clone()
    }

    fn timed(at: u64, message: Json) -> Timed {
        Timed { at, message }
    }

    fn exchange(
        method: Arc<MethodEntry>,
        requests: Vec<Timed>,
        responses: Vec<Timed>,
        sequence: &str,
    ) -> Exchange {
        Exchange {
            method,
            request_headers: vec![("x-tag".into(), "a".into())],
            response_headers: vec![("x-echo".into(), "1".into()), ("x-echo".into(), "2".into())],
            trailers: vec![("x-count".into(), "2".into())],
            requests,
            responses,
            sequence: sequence.chars().map(|side| side == 'c').collect(),
            status: RecordedStatus { at: 300, code: Code::Ok, message: String::new(), details: Vec::new() },
        }
    }

    #[test]
    fn a_bidi_script_answers_each_client_message_in_order_with_its_replies() {
        let (catalog, _) = catalog();
        let chat = method(&catalog, "/myapp.ChatService/Chat");
        let hello = json!({"content": "hello"});
        let mut recorded = exchange(
            chat.clone(),
            vec![timed(10, hello.clone()), timed(210, hello)],
            vec![
                timed(5, json!({"content": "welcome"})),
                timed(60, json!({"content": "#1"})),
                timed(140, json!({"content": "#1 +1"})),
                timed(260, json!({"content": "#2"})),
            ],
            "scsscs",
        );
        recorded.status = RecordedStatus {
            at: 290,
            code: Code::Aborted,
            message: "gone".into(),
            details: vec![json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "R"})],
        };
        let text = script(&chat, &recorded);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1..],
            [
                r##"{"ts":5,"dir":"out","text":{"content":"welcome"}}"##,
                "// Client message 1 arrived at 10 ms.",
                r##"{"ts":0,"dir":"in","text":{"content":"hello"},"condition":"{{(request.ws.state.received || 0) == 0}}","received":"{{(request.ws.state.received || 0) + 1}}","responses":[{"ts":50,"text":{"content":"#1"}},{"ts":130,"text":{"content":"#1 +1"}}]}"##,
                "// Client message 2 arrived at 210 ms.",
                r##"{"ts":0,"dir":"in","text":{"content":"hello"},"condition":"{{(request.ws.state.received || 0) == 1}}","received":"{{(request.ws.state.received || 0) + 1}}","responses":[{"ts":50,"text":{"content":"#2"}},{"ts":80,"error":true,"code":"ABORTED","text":"gone","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"R"}]}]}"##,
            ],
            "{text}"
        );
        assert!(lines[0].starts_with("// myapp.ChatService/Chat, recorded"), "{text}");
    }

    #[test]
    fn a_server_stream_script_times_each_message_and_its_end() {
        let (catalog, _) = catalog();
        let subscribe = method(&catalog, "/myapp.NotificationService/Subscribe");
        let recorded = exchange(
            subscribe.clone(),
            vec![timed(0, json!({"topics": ["a"]}))],
            vec![timed(51, json!({"topic": "a"})), timed(131, json!({"topic": "a", "sequence": "2"}))],
            "css",
        );
        let text = script(&subscribe, &recorded);
        assert_eq!(
            text.lines().skip(1).collect::<Vec<_>>(),
            [
                r##"{"ts":51,"dir":"out","text":{"topic":"a"}}"##,
                r##"{"ts":131,"dir":"out","text":{"sequence":"2","topic":"a"}}"##,
                r##"{"ts":300,"dir":"out","close":true}"##,
            ]
        );
    }

    #[test]
    fn unary_and_client_streaming_stubs_compile_with_their_counts() {
        let (catalog, pool) = catalog();
        let get_user = method(&catalog, "/myapp.UserService/GetUser");
        let ok = exchange(
            get_user.clone(),
            vec![timed(0, json!({"user_id": "7"}))],
            vec![timed(3, json!({"name": "seven"}))],
            "cs",
        );
        let mut failed = ok.clone();
        failed.responses.clear();
        failed.status = RecordedStatus {
            at: 3,
            code: Code::NotFound,
            message: "no user 7: {not a template}; really".into(),
            details: vec![
                json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "R", "domain": "d"}),
            ],
        };
        let text = stub_file(
            &get_user,
            &[Recorded { exchange: ok, seen: 3 }, Recorded { exchange: failed, seen: 1 }],
        )
        .unwrap();
        assert!(text.contains("# Seen 3 times.\n- service: myapp.UserService\n"), "{text}");
        assert!(text.contains("# Seen once.\n- service: myapp.UserService\n"), "{text}");
        let stubs = compile_file(Path::new("GetUser.yaml"), &text, &catalog, &pool, 0)
            .unwrap_or_else(|p| panic!("{p}\n{text}"));
        assert_eq!(stubs.len(), 2);
        let status = stubs[1].output.status.as_ref().unwrap();
        assert_eq!(
            (status.code, status.message.as_str()),
            (Code::NotFound, "no user 7: {not a template}; really")
        );
        assert!(status.details.is_some());
        assert_eq!(stubs[0].output.headers.get_all("x-echo").iter().count(), 2, "{text}");

        let upload = method(&catalog, "/myapp.UploadService/UploadFile");
        let chunks =
            vec![timed(1, json!({"data": "aGk=", "sequence": 1})), timed(2, json!({"is_last": true}))];
        let recorded = exchange(upload.clone(), chunks, vec![timed(4, json!({"file_id": "f"}))], "ccs");
        let text = stub_file(&upload, &[Recorded { exchange: recorded, seen: 1 }]).unwrap();
        let stubs = compile_file(Path::new("UploadFile.yaml"), &text, &catalog, &pool, 0)
            .unwrap_or_else(|p| panic!("{p}\n{text}"));
        assert_eq!(stubs[0].input.inputs_len(), Some(2), "{text}");
    }
}
