//! Rendering shape, variable paths, bounds, and property tests that no input makes compiling
//! or rendering panic; the seed document's templates and compile errors in their own files.
//! Operator, helper and value tables live beside their code and use [`Fixture`].

mod compile_errors;
mod seed_templates;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Map, Value as Json, json};

use super::{EvalError, Scope, Template};

/// 2024-01-01T12:00:00Z.
pub(super) const FIXED_NOW: u64 = 1_704_110_400;

/// Everything a [`Scope`] borrows, with the seed document's request shapes.
pub(super) struct Fixture {
    pub(super) request: Json,
    pub(super) message: Option<Json>,
    pub(super) state: Map<String, Json>,
    pub(super) rng: StdRng,
    pub(super) now: SystemTime,
}

impl Fixture {
    pub(super) fn new() -> Fixture {
        Fixture {
            request: json!({
                "topics": ["user", "payment"],
                "type": "REALTIME",
                "interval": 0,
                "stream_enabled": true,
                "empty_list": [],
                "empty_object": {},
                "nested": {"a b": 1, "list": [{"name": "first"}]},
            }),
            message: Some(json!({"user_id": "user123", "content": "Hello from client", "type": "TEXT"})),
            state: Map::new(),
            rng: StdRng::seed_from_u64(7),
            now: UNIX_EPOCH + Duration::from_secs(FIXED_NOW),
        }
    }

    pub(super) fn with_state(mut self, state: Json) -> Fixture {
        self.state = state.as_object().cloned().unwrap_or_default();
        self
    }

    pub(super) fn try_render(&mut self, source: &str) -> Result<Json, EvalError> {
        let template = Template::compile(source).unwrap_or_else(|error| panic!("{source:?}: {error:?}"));
        let mut scope = Scope {
            request: &self.request,
            message: self.message.as_ref(),
            state: &self.state,
            connection_id: "conn-42",
            stream_id: 3,
            rng: &mut self.rng,
            now: self.now,
        };
        template.render(&mut scope)
    }

    pub(super) fn render(&mut self, source: &str) -> Json {
        self.try_render(source).unwrap_or_else(|error| panic!("{source:?}: {error:?}"))
    }

    /// Renders a template that yields a JSON document as text, and parses that.
    pub(super) fn render_document(&mut self, source: &str) -> Json {
        let text = self.render(source);
        serde_json::from_str(text.as_str().expect("text output")).expect("valid JSON")
    }
}

#[test]
fn a_sole_expression_renders_typed_and_anything_else_as_text() {
    let mut fixture = Fixture::new();
    assert_eq!(fixture.render("  {{ 1 + 1 }}\n"), json!(2));
    assert_eq!(fixture.render("{{request.topics}}"), json!(["user", "payment"]));
    assert_eq!(fixture.render("{{ 3 * 1024 }}").to_string(), "3072");
    assert_eq!(fixture.render("{{ 2.5 }}"), json!(2.5));
    assert_eq!(fixture.render("{{ 1 / 0 }}"), Json::Null);
    assert_eq!(fixture.render("{{ request.missing }}"), Json::Null);
    assert_eq!(fixture.render("x{{1}}"), json!("x1"));
    assert_eq!(fixture.render("{{1}}{{2}}"), json!("12"));
    assert_eq!(
        fixture.render("[{{request.missing}}|{{null}}|{{1/0}}|{{0/0}}]"),
        json!("[||Infinity|NaN]"),
        "undefined and null interpolate as nothing"
    );
    assert_eq!(fixture.render("{{ request.missing + '' }}"), json!("undefined"), "`+` follows JavaScript");
    assert_eq!(
        fixture.render("t={{request.topics}} n={{request.nested.list[0]}}"),
        json!(r#"t=["user","payment"] n={"name":"first"}"#)
    );
    assert_eq!(fixture.render("plain }} text"), json!("plain }} text"));
    assert_eq!(fixture.render(""), json!(""));
}

#[test]
fn literal_templates_are_recognised() {
    for (source, literal) in
        [("plain", true), ("", true), ("}} { }", true), ("a {{1}}", false), ("{{uuid}}", false)]
    {
        assert_eq!(Template::compile(source).unwrap().is_literal(), literal, "{source:?}");
    }
}

#[test]
fn paths_stop_at_the_first_index_or_length() {
    let paths = |source: &str| Template::compile(source).unwrap().paths();
    let topics = vec!["request".to_string(), "topics".to_string()];
    assert_eq!(
        paths("{{request.topics[0]}} {{request.topics.length}} {{randFromArray request.topics}}"),
        vec![topics]
    );
    assert_eq!(
        paths(
            "{{request.ws.state.chunks + stream.id}}{{request.ws.message.user_id}}{{request.ws.connectionId}}"
        ),
        vec![
            vec!["request", "ws", "state", "chunks"],
            vec!["stream", "id"],
            vec!["request", "ws", "message", "user_id"],
            vec!["request", "ws", "connectionId"],
        ]
    );
    assert_eq!(paths("{{request.a[request.b.c].d}}"), vec![vec!["request", "a"], vec!["request", "b", "c"]]);
    assert_eq!(paths("{{request}} {{uuid}} text"), vec![vec!["request"]]);
    assert!(paths("no templates").is_empty());
}

#[test]
fn output_over_64_kib_is_an_error() {
    let mut fixture = Fixture::new();
    fixture.request = json!({"big": "x".repeat(40 * 1024), "huge": ["y".repeat(70 * 1024)]});
    assert_eq!(fixture.render("{{request.big}}").as_str().map(str::len), Some(40 * 1024));
    let exceeded = EvalError { message: "template output exceeds 64 KiB".to_string() };
    for source in [
        "{{request.big + request.big}}",
        "{{request.big}}{{request.big}}",
        "{{request.huge}}",
        "a{{request.huge}}",
    ] {
        assert_eq!(fixture.try_render(source), Err(exceeded.clone()), "{source}");
    }
}

/// Fragments that combine into mostly valid expressions, so that evaluation is exercised too.
const FRAGMENTS: &[&str] = &[
    "request",
    "request.topics",
    "request.ws.state.n",
    "request.ws.message",
    "stream.id",
    ".length",
    "[0]",
    "[",
    "]",
    "(",
    ")",
    "!",
    "-",
    "+",
    "*",
    "/",
    "%",
    "<",
    ">=",
    "==",
    "!==",
    "&&",
    "||",
    "1",
    "0",
    "-2",
    "1e308",
    "'s'",
    "\"}}\"",
    "null",
    "undefined",
    "true",
    "uuid",
    "now",
    "now+1d",
    "now-999999999d",
    "randInt",
    "randFromArray",
    "randSentence",
    "randParagraph",
    "{{",
    "}}",
    "é",
    " ",
];

fn render_any(source: &str) {
    if let Ok(template) = Template::compile(source) {
        let mut fixture = Fixture::new().with_state(json!({"n": 1}));
        fixture.message = Some(json!({"user_id": "u", "list": [1, 2]}));
        let mut scope = Scope {
            request: &fixture.request,
            message: fixture.message.as_ref(),
            state: &fixture.state,
            connection_id: "c",
            stream_id: u64::MAX,
            rng: &mut fixture.rng,
            now: fixture.now,
        };
        let _ = template.render(&mut scope);
        let _ = template.paths();
    }
}

proptest! {
    #[test]
    fn compiling_and_rendering_never_panic(source in any::<String>()) {
        render_any(&source);
        render_any(&format!("{{{{{source}}}}}"));
    }

    #[test]
    fn expressions_from_fragments_never_panic(parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..24)) {
        let source = parts.concat();
        render_any(&format!("{{{{{source}}}}}"));
        render_any(&format!("{{{{ {} }}}}", parts.join(" ")));
    }
}
