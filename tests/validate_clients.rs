//! `validate` checks the `clients` and `expect` sections — who the clients under test are, the
//! policy they should follow, the resume fields (against the protos) and every expectation —
//! with each problem located by line, column and field.

mod common;

use streamstorm::diagnostic::Problem;

fn problems_of(body: &str) -> Vec<Problem> {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), body);
    match streamstorm::validate::validate(&[profile], &[]) {
        Ok(summary) => panic!("the profile validates: {summary}"),
        Err(problems) => problems.0,
    }
}

fn field_and_message(problems: &[Problem]) -> Vec<(String, String)> {
    problems
        .iter()
        .map(|problem| (problem.field.clone().unwrap_or_default(), problem.message.clone()))
        .collect()
}

#[test]
fn every_mistake_in_clients_and_expect_is_located() {
    let problems = problems_of(
        "clients:\n\
         \x20 identify_by: { header: \"bad header\" }\n\
         \x20 max_tracked: 0\n\
         \x20 backoff: { initial: 2s, multiplier: 1.6, max: 1s }\n\
         \x20 herd_windw: 10s\n\
         expect:\n\
         \x20 reconnect_delay_after_teleport: \"p99 < 5s\"\n\
         \x20 reconnect_delay_after_reset_stream: \"p42 < 5s\"\n\
         \x20 backoff: fibonacci\n\
         \x20 max_attempts_per_second: -3\n\
         \x20 recovers_within: soon\n",
    );
    let found = field_and_message(&problems);
    let expected = [
        ("clients.identify_by.header", "not a valid header name"),
        ("clients.max_tracked", ""),
        ("clients.backoff.max", "shorter than initial"),
        ("clients.herd_windw", "did you mean 'herd_window'?"),
        ("expect.reconnect_delay_after_teleport", "unknown ending 'teleport'"),
        ("expect.reconnect_delay_after_reset_stream", "unknown percentile 'p42'"),
        ("expect.backoff", "expected grpc or declared"),
        ("expect.max_attempts_per_second", "above 0"),
        ("expect.recovers_within", ""),
    ];
    for (field, message) in expected {
        assert!(
            found.iter().any(|(f, m)| f == field && m.contains(message)),
            "no problem for {field} ({message}); found:\n{found:#?}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{found:#?}");
    assert!(problems.iter().all(|problem| problem.line > 0 && problem.column > 0), "{problems:#?}");
    let line_of = |field: &str| problems.iter().find(|p| p.field.as_deref() == Some(field)).unwrap().line;
    // Two lines of `server` come first.
    assert_eq!(line_of("expect.backoff"), 11);
}

#[test]
fn resume_fields_are_checked_against_the_protos() {
    let problems =
        problems_of("clients:\n  resume: { request_field: resume_after, response_field: cursor }\n");
    let found = field_and_message(&problems);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, "clients.resume");
    assert!(found[0].1.contains("response field 'cursor'"), "{}", found[0].1);
    assert_eq!(problems[0].line, 4);

    // The fields the subscription has pass.
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(
        dir.path(),
        "clients:\n  resume: { request_field: resume_after, response_field: sequence }\n\
         expect: { resume: \"100%\", backoff: grpc, reconnect_delay_after_tcp_reset: \"p99 < 5s\" }\n",
    );
    streamstorm::validate::validate(&[profile], &[]).unwrap_or_else(|problems| panic!("{problems}"));
}
