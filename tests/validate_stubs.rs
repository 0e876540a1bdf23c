//! Stub validation: every problem in every stub reported at once, with file, line, column and
//! field path, through the library and `streamstorm validate`.

mod common;

use std::process::Command;

/// Runs `streamstorm validate PROTOS INPUT` (protos relative to the repository root).
fn validate(protos: &str, input: impl AsRef<std::ffi::OsStr>) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .arg("validate")
        .arg(common::repo_root().join(protos))
        .arg(input)
        .output()
        .unwrap()
}

const BROKEN: &str = r#"- service: NoSuchService
  method: X
  output: { data: {} }
- service: myapp.UserService
  method: Nope
  output: { data: {} }
- service: myapp.UserService
  method: GetUser
  input:
    equals: { usr_id: "x" }
    matches: { user_id: "([a-" }
  output:
    data: { name: [1, 2], addres: { city: "Oslo" } }
    code: BOGUS
- service: myapp.UserService
  method: GetUser
  input: { equals: { user_id: a } }
  inputs: [ {} ]
  output: { data: { state: USER_STATE_NOPE } }
- service: myapp.UserService
  method: GetUser
  bogus: 1
  output: { delay: "soon", data: {} }
"#;

#[test]
fn every_stub_problem_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let stubs = dir.path().join("broken.yaml");
    std::fs::write(&stubs, BROKEN).unwrap();
    let output = validate("protos/myapp", &stubs);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = stubs.display().to_string();
    let expected = [
        format!("{file}:1:12: [0].service: unknown service 'NoSuchService'"),
        format!("{file}:5:11: [1].method: myapp.UserService has no method 'Nope' (methods: GetUser)"),
        format!(
            "{file}:10:15: [2].input.equals.usr_id: myapp.GetUserRequest has no field 'usr_id', did you mean 'user_id'?"
        ),
        format!("{file}:11:25: [2].input.matches.user_id: bad regex: unclosed character class"),
        format!("{file}:13:19: [2].output.data.name: invalid type: sequence, expected a string"),
        format!(
            "{file}:13:27: [2].output.data.addres: myapp.User has no field 'addres', did you mean 'address'?"
        ),
        format!("{file}:14:11: [2].output.code: not a gRPC status code: \"BOGUS\""),
        format!("{file}:18:11: [3].inputs: a stub cannot have both `input` and `inputs`"),
        format!("{file}:19:28: [3].output.data.state: unrecognized enum value 'USER_STATE_NOPE'"),
        format!("{file}:22:3: [4].bogus: unknown field"),
        format!("{file}:23:20: [4].output.delay: not a duration: \"soon\""),
    ];
    for line in &expected {
        assert!(
            stderr.lines().any(|reported| reported.starts_with(line.as_str())),
            "missing {line:?} in:\n{stderr}"
        );
    }
    assert!(stderr.contains(&format!("{} problems found", expected.len())), "{stderr}");
}

#[test]
fn shipped_stub_examples_validate() {
    let output = validate("protos/gripmock", common::repo_root().join("stubs/gripmock"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}{stdout}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.starts_with("ok: 3 services, 3 methods, "), "{stdout}");
}

#[test]
fn shipped_script_examples_validate() {
    let scripts = common::repo_root().join("stubs/scripts");
    for example in std::fs::read_dir(&scripts).unwrap() {
        let example = example.unwrap().path();
        let output = validate("protos/myapp", &example);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{}: {}{stdout}",
            example.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.ends_with("1 scripts bound by path\n"), "{}: {stdout}", example.display());
    }
}

#[test]
fn script_problems_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let bound = dir.path().join("myapp.ChatService");
    std::fs::create_dir_all(&bound).unwrap();
    let script = bound.join("Chat.jsonl");
    std::fs::write(
        &script,
        concat!(
            "// comment lines and blank lines are fine\n",
            "\n",
            "{\"ts\":0,\"dir\":\"out\",\"text\":\"{{request.ws.message.nope}}\"}\n",
            "{\"ts\":0,\"dir\":\"sideways\",\"text\":\"x\"}\n",
            "{\"ts\":0,\"dir\":\"in\",\"text\":\"{\\\"tipe\\\":\\\"JOIN\\\"}\",\"respone\":\"x\"}\n",
            "{\"ts\":0,\"dir\":\"in\",\"text\":\"hi\",\"condition\":\"{{request.ws.state.a +}}\"}\n",
            "not json\n",
        ),
    )
    .unwrap();
    let output = validate("protos/myapp", dir.path());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = script.display().to_string();
    for expected in [
        format!("{file}:3:"),
        format!("{file}:4:"),
        format!("{file}:5:"),
        format!("{file}:6:"),
        format!("{file}:7:"),
    ] {
        assert!(stderr.lines().any(|line| line.starts_with(&expected)), "missing {expected} in:\n{stderr}");
    }
    assert!(stderr.contains("myapp.ChatMessage has no field 'nope'"), "{stderr}");
    assert!(stderr.contains("expected \"in\" or \"out\""), "{stderr}");
    assert!(stderr.contains("has no field 'tipe', did you mean 'type'?"), "{stderr}");
    assert!(stderr.contains("unknown field 'respone', did you mean 'response'?"), "{stderr}");
    assert!(stderr.contains("template:"), "{stderr}");
    assert!(stderr.contains("not valid JSON"), "{stderr}");
}

#[test]
fn stub_template_problems_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let stubs = dir.path().join("templated.yaml");
    std::fs::write(
        &stubs,
        "- service: myapp.UserService\n  method: GetUser\n  output:\n    data: { name: \"{{request.usr_id}}\", email: \"{{ 1 + }}\" }\n",
    )
    .unwrap();
    let output = validate("protos/myapp", &stubs);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = stubs.display();
    assert!(stderr.contains(&format!("{file}:4:11: [0].output.data.email: template: ")), "{stderr}");
    // One problem at a time per message: the syntax error stops the field checks of this message.
    assert!(stderr.contains("1 problem found"), "{stderr}");
    std::fs::write(&stubs, "- service: myapp.UserService\n  method: GetUser\n  output:\n    data: { name: \"{{request.usr_id}}\" }\n")
        .unwrap();
    let output = validate("protos/myapp", &stubs);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("template reads request.usr_id: myapp.GetUserRequest has no field 'usr_id', did you mean 'user_id'?"),
        "{stderr}"
    );
}

/// The keys for replaying recorded streams (`ts` on inbound entries, `responses`, `close`
/// without text, `details`): each bad one is reported at its own line and column.
#[test]
fn replay_key_problems_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let bound = dir.path().join("myapp.ChatService");
    std::fs::create_dir_all(&bound).unwrap();
    let script = bound.join("Chat.jsonl");
    let lines = [
        // 1: fine: delayed replies, an error with details, an OK close without text.
        r#"{"ts":0,"dir":"in","text":{"content":"a"},"responses":[{"ts":5,"text":{"content":"x"}},{"ts":9,"error":true,"code":"FAILED_PRECONDITION","text":"no","details":[{"@type":"google.rpc.ErrorInfo","reason":"R"}]}]}"#,
        r#"{"ts":30,"dir":"out","close":true}"#,
        // 3: a decreasing ts.
        r#"{"dir":"in","text":{"content":"b"},"responses":[{"ts":20,"text":"x"},{"ts":10,"text":"y"}]}"#,
        // 4: both `response` and `responses`.
        r#"{"dir":"in","text":{"content":"c"},"response":"x","responses":[{"ts":1,"text":"y"}]}"#,
        // 5: an unknown code in a reply.
        r#"{"dir":"in","text":{"content":"d"},"responses":[{"ts":1,"error":true,"code":"NOPE"}]}"#,
        // 6: bad details on an outbound error.
        r#"{"ts":1,"dir":"out","error":true,"code":"INTERNAL","details":[{"@type":"myapp.Nope"}]}"#,
        // 7: wrong types: `ts` of an inbound entry, `responses`, a reply's `ts`.
        r#"{"ts":true,"dir":"in","text":{"content":"e"},"response":"x"}"#,
        r#"{"dir":"in","text":{"content":"f"},"responses":{"ts":1}}"#,
        r#"{"dir":"in","text":{"content":"g"},"responses":[{"ts":"soon","text":"x"},{"ts":2,"txt":"y"}]}"#,
        // 10: an outbound entry with neither text nor an ending; `details` without `error`.
        r#"{"ts":1,"dir":"out"}"#,
        r#"{"ts":1,"dir":"out","text":"x","details":[]}"#,
        // 12: a reply after the reply that ended the stream; a close reply with text.
        r#"{"dir":"in","text":{"content":"h"},"responses":[{"ts":1,"close":true,"text":"x"},{"ts":2,"text":"y"}]}"#,
        // 13: `close` on an entry with `responses`, and a non-zero entry `ts` with them.
        r#"{"ts":5,"dir":"in","text":{"content":"i"},"close":true,"responses":[{"text":"y"}]}"#,
    ];
    std::fs::write(&script, lines.join("\n") + "\n").unwrap();
    let output = validate("protos/myapp", dir.path());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = script.display().to_string();
    let column = |line: usize, needle: &str| lines[line - 1].find(needle).unwrap() + 1;
    let expected = [
        (3, column(3, r#"10,"text":"y""#), "replies go in time order: ts 10 comes after a reply at ts 20"),
        (4, column(4, r#"[{"ts":1"#), "either `response` or `responses`, not both"),
        (5, column(5, r#""NOPE""#), "not a gRPC status code"),
        (6, column(6, r#"[{"@type":"myapp.Nope"#), "myapp.Nope"),
        (7, column(7, "true"), "expected milliseconds or a template"),
        (8, column(8, r#"{"ts":1}"#), "expected a list of replies"),
        (9, column(9, r#""soon""#), "expected milliseconds after the message arrived"),
        (9, column(9, r#""txt""#), "unknown field 'txt' in a reply"),
        (9, column(9, r#"{"ts":2"#), "a reply needs `text`, `error: true` or `close: true`"),
        (10, 1, "an outbound entry needs `text`"),
        (11, column(11, "[]"), "`details` belongs to an `error: true` entry"),
        (12, column(12, r#""x"}"#), "a `close` reply sends nothing"),
        (12, column(12, r#"{"ts":2"#), "never sent: responses[0] already ends the stream"),
        (13, column(13, "true,"), "`close` does not go with `responses`"),
        (13, column(13, "5,"), "the entry's `ts` must be 0 or absent"),
    ];
    for (line, column, message) in expected {
        let prefix = format!("{file}:{line}:{column}:");
        assert!(
            stderr.lines().any(|found| found.starts_with(&prefix) && found.contains(message)),
            "missing {prefix} ... {message} in:\n{stderr}"
        );
    }
    for fine in [1, 2] {
        let prefix = format!("{file}:{fine}:");
        assert!(!stderr.lines().any(|found| found.starts_with(&prefix)), "line {fine} is fine:\n{stderr}");
    }
    assert_eq!(stderr.lines().filter(|line| line.starts_with(&file)).count(), expected.len(), "{stderr}");
}
