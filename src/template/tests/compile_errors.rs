//! Compile errors: each names the problem and the byte offset where it starts.

use super::Fixture;
use crate::template::{Template, TemplateError};

fn compile_error(source: &str) -> TemplateError {
    match Template::compile(source) {
        Ok(template) => panic!("{source:?} compiled: {template:?}"),
        Err(error) => error,
    }
}

#[test]
fn compile_errors_point_at_the_problem() {
    let table: &[(&str, usize, &str)] = &[
        ("{{ foo }}", 3, "unknown variable 'foo' (expected request or stream)"),
        ("é {{ foo }}", 6, "unknown variable 'foo' (expected request or stream)"),
        ("ab {{ request.x + }}", 18, "expected an expression, found '}}'"),
        ("{{}}", 2, "expected an expression before '}}'"),
        ("{{ 1 2 }}", 5, "expected an operator or '}}', found '2'"),
        ("{{ (1 + 2 }}", 10, "expected ')', found '}}'"),
        ("{{ request.topics[0 }}", 20, "expected ']', found '}}'"),
        ("{{ request. }}", 12, "expected a field name, found '}}'"),
        ("{{ randInt 1 }}", 3, "randInt takes 2 arguments, got 1"),
        ("{{ randFromArray }}", 3, "randFromArray takes 1 argument, got 0"),
        ("x {{ uuid 5 }}", 5, "uuid takes no arguments, got 1"),
        ("{{ randInt 1 randInt 2 3 }}", 13, "wrap 'randInt …' in parentheses to pass it as an argument"),
        (
            "{{ request.ws.foo }}",
            14,
            "expected message, state or connectionId after 'request.ws.', found 'foo'",
        ),
        (
            "{{ request.ws }}",
            14,
            "expected '.message', '.state' or '.connectionId' after 'request.ws', found '}}'",
        ),
        (
            "{{ stream.other }}",
            10,
            "expected 'id' after 'stream.' (stream.id is its only field), found 'other'",
        ),
        ("ok {{ request.a }} {{ request.b", 19, "'{{' is never closed by '}}'"),
        ("{{ 'abc }}", 3, "unterminated string literal"),
        ("{{ 'a\\qb' }}", 5, "unknown escape '\\q'"),
        ("{{ '\\u12' }}", 4, "invalid \\u escape"),
        ("{{ request.a = 1 }}", 13, "unexpected '=' (comparisons are '==' or '===')"),
        ("{{ request.a # }}", 13, "unexpected character '#'"),
        ("{{ request.a & 1 }}", 13, "unexpected character '&'"),
        ("{{ 12px }}", 3, "invalid number '12p'"),
    ];
    for (source, offset, message) in table {
        let error = compile_error(source);
        assert_eq!((error.offset, error.message.as_str()), (*offset, *message), "{source:?}");
    }
}

#[test]
fn nesting_deeper_than_64_is_rejected() {
    let parentheses = format!("{{{{{}1{}}}}}", "(".repeat(100), ")".repeat(100));
    let error = compile_error(&parentheses);
    assert_eq!((error.offset, error.message.as_str()), (66, "expression nests deeper than 64 levels"));
    assert!(Template::compile(&format!("{{{{{}1{}}}}}", "(".repeat(60), ")".repeat(60))).is_ok());
    for deep in [format!("{{{{{}1}}}}", "!".repeat(100_000)), format!("{{{{1{}}}}}", "+1".repeat(100_000))] {
        assert!(compile_error(&deep).message.contains("deeper than 64"));
    }
    let mut fixture = Fixture::new();
    assert_eq!(fixture.render(&format!("{{{{1{}}}}}", "+1".repeat(60))), serde_json::json!(61));
}

#[test]
fn helper_arguments_are_primaries() {
    let mut fixture = Fixture::new();
    for _ in 0..20 {
        let value = fixture.render("{{randInt -5 5}}").as_i64().unwrap();
        assert!((-5..=5).contains(&value));
        assert!(fixture.render("{{randInt 1 5 * 10}}").as_i64().unwrap() % 10 == 0);
    }
    assert_eq!(
        fixture.render("{{randInt (2 - 1) request.topics.length - 1}}").as_i64().map(|n| n <= 1),
        Some(true)
    );
    assert_eq!(fixture.render("{{randInt 3 3 - 1}}"), serde_json::json!(2));
    assert_eq!(fixture.render("{{(randFromArray request.nested.list).name}}"), serde_json::json!("first"));
    assert_eq!(fixture.render("{{randSentence.length > 0}}"), serde_json::json!(true));
}
