//! Exact accounting after a chaotic run: every call, message, error and fault is counted the
//! same way by the client's report, the client's metrics and the server's metrics, across all
//! four call patterns and every per-stream fault kind.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::scrape::{Series, parse_samples, sum};
use streamstorm::cli::{SimulateArgs, run_simulation};
use streamstorm::report::progress::ProgressMode;
use streamstorm::report::{Report, ScenarioReport};

/// Every per-stream fault kind at a partial rate, on every call pattern.
const CHAOTIC: &str = "chaos:
  seed: 11
  rules:
    - match: { method: myapp.NotificationService/Subscribe }
      latency: { per_message: 0ms..2ms }
      abort: { rate: 5%, code: UNAVAILABLE }
      fail: { rate: 10%, after_messages: 1..6, codes: { INTERNAL: 1, DATA_LOSS: 1 } }
      disconnect: { rate: 10%, after_messages: 2..8, mode: reset_stream }
      message_cap: { max: 12, code: RESOURCE_EXHAUSTED }
      rate_limit: { calls_per_second: 400 }
    - match: { method: myapp.ChatService/Chat }
      abort: { rate: 5%, code: ABORTED }
      fail: { rate: 20%, after_messages: 2..4, codes: { FAILED_PRECONDITION: 1 } }
      stream_timeout: { after: 300ms, code: DEADLINE_EXCEEDED }
    - match: { method: myapp.UploadService/UploadFile }
      abort: { rate: 10%, code: UNAUTHENTICATED }
      inbound_cap: 8
    - match: { method: myapp.UserService/GetUser }
      latency: { per_message: 0ms..1ms }
      abort: { rate: 10%, code: NOT_FOUND }
load:
  connections: 3
  embedded: { stream_messages: 20, stream_interval: 1ms }
  scenarios:
    - method: myapp.NotificationService/Subscribe
      streams: 40
      request: { topics: [a] }
      reconnect: { initial_backoff: 5ms, max_backoff: 20ms }
    - method: myapp.ChatService/Chat
      streams: 10
      send_rate: 25
      messages_per_stream: 10
      request: { content: 'hi {{stream.id}}' }
      reconnect: { initial_backoff: 5ms, max_backoff: 20ms }
    - method: myapp.UploadService/UploadFile
      streams: 10
      messages_per_stream: 10
      send_rate: 500
      reconnect: { initial_backoff: 5ms, max_backoff: 20ms }
    - method: myapp.UserService/GetUser
      streams: 10
      request: { user_id: u }
      reconnect: { initial_backoff: 5ms, max_backoff: 20ms }
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chaotic_run_is_counted_the_same_by_report_client_metrics_and_server_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let profile = common::write_profile(dir.path(), CHAOTIC);
    let args = SimulateArgs { duration: Some(Duration::from_secs(3)), ..SimulateArgs::for_profile(profile) };
    let report = run_simulation(&args, ProgressMode::Quiet).await.unwrap();
    // One process, one recorder: the page the metrics endpoint served, as it stands at the end.
    let page = streamstorm::telemetry::render_page(&streamstorm::telemetry::install_recorder().unwrap());
    let samples = parse_samples(&page);
    let ledger = Ledger { report: &report, samples: &samples, mismatches: Default::default() };

    for scenario in &report.scenarios {
        ledger.check_scenario(scenario);
    }
    ledger.check_faults();
    ledger.check_totals();
    let mismatches = ledger.mismatches.into_inner();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

struct Ledger<'a> {
    report: &'a Report,
    samples: &'a [(Series, f64)],
    /// Every count that did not match, reported together.
    mismatches: std::cell::RefCell<Vec<String>>,
}

impl Ledger<'_> {
    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        sum(self.samples, name, labels) as u64
    }

    /// Records a mismatch between two counts of the same thing.
    fn same(&self, what: impl std::fmt::Display, left: u64, right: u64) {
        if left != right {
            self.mismatches.borrow_mut().push(format!("{what}: {left} != {right}"));
        }
    }

    fn check_scenario(&self, scenario: &ScenarioReport) {
        let name = scenario.method.as_str();
        let (service, method) = name.split_once('/').unwrap();
        let server = [("service", service), ("method", method)];
        let client = [("method", name)];
        let streams = &scenario.streams;
        assert!(streams.opened > 0, "{scenario:#?}");
        let ended = streams.completed + streams.failed + streams.cut_at_end;
        self.same(format_args!("{name}: attempts vs ends"), streams.opened, ended);
        self.same(
            format_args!("{name}: client opened vs server started"),
            streams.opened,
            self.metric("streamstorm_streams_started_total", &server),
        );
        self.same(
            format_args!("{name}: client opened vs server ended"),
            streams.opened,
            self.metric("streamstorm_streams_ended_total", &server),
        );
        self.same(
            format_args!("{name}: report vs client metric, started"),
            streams.opened,
            self.metric("streamstorm_client_streams_started_total", &client),
        );
        self.same(
            format_args!("{name}: server active"),
            0,
            self.metric("streamstorm_streams_active", &server),
        );
        self.same(
            format_args!("{name}: client active"),
            0,
            self.metric("streamstorm_client_streams_active", &client),
        );
        for (code, count) in &scenario.errors {
            let ended = [("service", service), ("method", method), ("code", code.as_str())];
            let errors = [("method", name), ("code", code.as_str())];
            self.same(
                format_args!("{name}: {code} report vs client metric"),
                *count,
                self.metric("streamstorm_client_errors_total", &errors),
            );
            self.same(
                format_args!("{name}: {code} client vs server ended"),
                *count,
                self.metric("streamstorm_streams_ended_total", &ended),
            );
        }
        let ok = [("service", service), ("method", method), ("code", "OK")];
        self.same(
            format_args!("{name}: completed vs server OK"),
            streams.completed,
            self.metric("streamstorm_streams_ended_total", &ok),
        );
        let messages = &scenario.messages;
        self.same(
            format_args!("{name}: sent report vs client metric"),
            messages.sent,
            self.metric("streamstorm_client_messages_sent_total", &client),
        );
        self.same(
            format_args!("{name}: received report vs client metric"),
            messages.received,
            self.metric("streamstorm_client_messages_received_total", &client),
        );
        let server_read = self.metric("streamstorm_messages_received_total", &server);
        self.same(
            format_args!("{name}: client sent vs server read + unread"),
            messages.sent,
            server_read + messages.unread_by_server,
        );
        self.same(
            format_args!("{name}: unread report vs client metric"),
            messages.unread_by_server,
            self.metric("streamstorm_client_messages_unread_total", &client),
        );
        let server_sent = self.metric("streamstorm_messages_sent_total", &server);
        if scenario.disconnects["reset"] == 0 {
            self.same(format_args!("{name}: client received vs server sent"), messages.received, server_sent);
        }
        assert!(messages.received <= server_sent, "{name}");
    }

    fn check_faults(&self) {
        let faults = self.report.server_faults.as_ref().expect("the embedded server's faults");
        assert!(faults.reconciled, "{faults:#?}");
        let mut kinds = BTreeMap::new();
        for fault in &faults.injected {
            let code = fault.code.as_deref().unwrap_or("none");
            let labels = [("kind", fault.kind.as_str()), ("code", code)];
            self.same(
                format_args!("fault {} {code}", fault.kind),
                fault.count,
                self.metric("streamstorm_faults_injected_total", &labels),
            );
            *kinds.entry(fault.kind.as_str()).or_insert(0) += fault.count;
        }
        for kind in ["abort", "fail", "reset_stream", "cap", "inbound_cap", "timeout", "latency"] {
            assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "no {kind} fault in {faults:#?}");
        }
        let total: u64 = kinds.values().sum();
        self.same("faults in total", total, self.metric("streamstorm_faults_injected_total", &[]));
    }

    fn check_totals(&self) {
        let report = self.report;
        let sum_of = |field: fn(&ScenarioReport) -> u64| report.scenarios.iter().map(field).sum::<u64>();
        self.same("opened", report.streams.opened, sum_of(|s| s.streams.opened));
        self.same("sent", report.messages.sent, sum_of(|s| s.messages.sent));
        self.same("received", report.messages.received, sum_of(|s| s.messages.received));
        let errors: u64 = report.errors.values().sum();
        self.same("errors", errors, sum_of(|s| s.errors.values().sum()));
        let faults = report.server_faults.as_ref().unwrap();
        self.same("resets", report.disconnects["reset"], faults.resets.injected);
        let lost = faults.messages_before_resets;
        let server_sent = self.metric("streamstorm_messages_sent_total", &[]);
        self.same(
            "server sent vs received + lost to resets",
            server_sent,
            report.messages.received + lost.lost_in_flight,
        );
        eprintln!(
            "unread by the server {}, lost in flight to resets {lost:?}",
            report.messages.unread_by_server
        );
    }
}
