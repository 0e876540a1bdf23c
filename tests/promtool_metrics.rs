//! `promtool check metrics` finds no problem on the `/metrics` page of a `serve` process under
//! chaos traffic, with every family the server exports on the page checked: streams, messages,
//! faults of several kinds, injected latency, phases, connections closed for several reasons,
//! reloads and per-stream series; and on the load client's page while its calls fail and
//! recover. (promtool comes from `scripts/setup-prometheus.sh`.)

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::chaos_traffic::{ChaosServer, LoadClient, Traffic};
use common::scrape::{Series, get, parse_samples, sum};
use serde_json::json;
use streamstorm::telemetry::names;

/// Runs `promtool check metrics` on `page`: whether it passed, and what it printed.
fn promtool_check(page: &str) -> (bool, String) {
    let mut child = Command::new(common::prometheus::binary("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let printed =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), printed)
}

/// The per-stream families, on the page while a stream is open.
const PER_STREAM: [&str; 3] = [
    names::STREAM_MESSAGES_SENT_BY_STREAM,
    names::STREAM_MESSAGES_RECEIVED_BY_STREAM,
    names::STREAM_AGE_BY_STREAM,
];

/// The series the traffic must have put on the page: each family once, and the label values
/// that show it reached every fault, close reason, phase and reload.
fn missing(samples: &[(Series, f64)]) -> Vec<String> {
    let has = |name: &str, label: Option<(&str, &str)>| {
        samples.iter().any(|(series, _)| {
            series.name == name
                && label.is_none_or(|(key, value)| series.labels.get(key).map(String::as_str) == Some(value))
        })
    };
    let bucket = |name: &str| format!("{name}_bucket");
    let mut wanted: Vec<(String, Option<(&str, &str)>)> = [
        names::STREAMS_ACTIVE,
        names::STREAMS_STARTED,
        names::MESSAGES_SENT,
        names::MESSAGES_RECEIVED,
        names::CONNECTIONS_ACTIVE,
        names::CONNECTIONS_ACCEPTED,
        names::CHAOS_ENABLED,
    ]
    .into_iter()
    .map(|name| (name.to_owned(), None))
    .chain(
        [
            names::STREAM_DURATION,
            names::STREAM_MESSAGES,
            names::STREAM_BYTES,
            names::MESSAGE_SIZE,
            names::INJECTED_LATENCY,
        ]
        .into_iter()
        .map(|name| (bucket(name), None)),
    )
    .collect();
    for code in ["OK", "UNAVAILABLE", "INTERNAL", "CANCELLED"] {
        wanted.push((names::STREAMS_ENDED.into(), Some(("code", code))));
    }
    for kind in ["abort", "fail", "reset_stream", "goaway", "latency", "max_age"] {
        wanted.push((names::FAULTS_INJECTED.into(), Some(("kind", kind))));
    }
    for reason in ["client", "goaway", "max_age"] {
        wanted.push((names::CONNECTIONS_CLOSED.into(), Some(("reason", reason))));
    }
    for phase in ["steady", "outage"] {
        wanted.push((names::CHAOS_PHASE.into(), Some(("phase", phase))));
    }
    wanted.push((names::PROFILE_RELOADS.into(), Some(("result", "ok"))));
    wanted.push((names::STUB_RELOADS.into(), Some(("result", "ok"))));
    wanted
        .into_iter()
        .filter(|(name, label)| !has(name, *label))
        .map(|(name, label)| match label {
            Some((key, value)) => format!("{name}{{{key}=\"{value}\"}}"),
            None => name,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_no_problem_in_the_metrics_page_under_chaos() {
    common::prometheus::binary("promtool");
    let server = ChaosServer::start().await;
    server.reload_inputs().await;
    let traffic = Traffic::start(&server).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = get(server.process.metrics, "/metrics").await;
        let missing = missing(&parse_samples(&page));
        if missing.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never on the page: {missing:?}\n{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    traffic.stop().await;

    // A stream held open (one message in, one answer out, never half-closed) puts the
    // per-stream series on the page; it opens on a new connection, long before its maximum age.
    let hello = common::json_message(&server.pool, "myapp.ChatMessage", json!({"content": "stay"}));
    let mut held = common::open_stream(
        common::connect(server.process.addr).await,
        "/myapp.ChatService/Chat",
        common::message_type(&server.pool, "myapp.ChatMessage"),
        futures::StreamExt::chain(futures::stream::iter([hello]), futures::stream::pending()),
    )
    .await
    .expect("the held stream opens");
    held.message().await.expect("an answer").expect("one message");
    let page = get(server.process.metrics, "/metrics").await;
    let samples = parse_samples(&page);
    for name in PER_STREAM {
        assert!(samples.iter().any(|(series, _)| series.name == name), "no {name} on the page:\n{page}");
    }
    assert_eq!(missing(&samples), Vec::<String>::new());

    let (passed, printed) = promtool_check(&page);
    assert!(passed && printed.trim().is_empty(), "promtool check metrics:\n{printed}\non the page:\n{page}");
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_finds_no_problem_in_the_load_clients_metrics_page() {
    common::prometheus::binary("promtool");
    let server = ChaosServer::start().await;
    let client = LoadClient::start(server.process.addr).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = get(client.process.metrics, "/metrics").await;
        let samples = parse_samples(&page);
        let moved = |name: &str| sum(&samples, name, &[]) > 0.0;
        if moved("streamstorm_client_errors_total") && moved("streamstorm_client_recovery_seconds_count") {
            break page;
        }
        assert!(tokio::time::Instant::now() < deadline, "the client's metrics never moved:\n{page}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The client's own families, and the process gauges every streamstorm process exports.
    let process = [names::RUNTIME_TASKS_ALIVE, names::PROCESS_OPEN_FDS, names::PROCESS_RESIDENT_MEMORY];
    assert!(
        page.lines().all(|line| line.is_empty()
            || line.contains("streamstorm_client_")
            || process.iter().any(|name| line.contains(name))),
        "{page}"
    );
    let (passed, printed) = promtool_check(&page);
    assert!(passed && printed.trim().is_empty(), "promtool check metrics:\n{printed}\non the page:\n{page}");
}

#[test]
fn promtool_reports_a_page_with_problems() {
    // The check above means something only if this promtool lints: a counter without help text
    // or the `_total` suffix must be reported.
    let (passed, printed) = promtool_check("# TYPE requests counter\nrequests 3\n");
    assert!(!passed, "promtool passed a bad page: {printed}");
    assert!(printed.contains("no help text") && printed.contains("_total"), "{printed}");
}
