//! The human summary: latency percentiles, calls and messages, errors by code and by
//! disconnect kind, each occurrence of a chaos phase, reconnects and recovery, the server's
//! injected faults beside what the client saw, and each threshold's verdict. Rendered to a string; the CLI prints it.

use std::fmt::Write as _;

use super::reconcile::by_kind;
use super::{Percentiles, Report, ScenarioReport, ThresholdOutcome};

fn row(out: &mut String, name: &str, p: &Percentiles) {
    if p.count == 0 {
        let _ = writeln!(out, "  {name:<24} {:>9}", "-");
        return;
    }
    let _ = writeln!(
        out,
        "  {name:<24} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9}",
        p.p50, p.p90, p.p99, p.p999, p.max, p.count
    );
}

fn value(unit: &str, value: f64) -> String {
    match unit {
        "fraction" => format!("{:.2}%", value * 100.0),
        "seconds" => format!("{:.1}ms", value * 1000.0),
        "per_second" => format!("{value:.1}/s"),
        _ => format!("{value:.0}"),
    }
}

fn verdict(result: &ThresholdOutcome) -> String {
    let Some(measured) = result.measured else {
        return format!("  ok    {} {}: nothing measured", result.name, result.condition);
    };
    let measured_text = value(result.unit, measured);
    if result.passed {
        format!("  ok    {} {}: {measured_text}", result.name, result.condition)
    } else {
        let by = value(result.unit, result.excess.abs());
        format!("  FAIL  {} {}: {measured_text}, off by {by}", result.name, result.condition)
    }
}

const LATENCY_HEADER: &str =
    "latency (ms)                     p50       p90       p99     p99.9       max     count";

/// The per-call measures of a run or of one scenario, in the order they are printed.
struct Measures<'a> {
    rows: [(&'static str, &'a Percentiles); 6],
}

impl<'a> Measures<'a> {
    fn of_report(report: &'a Report) -> Self {
        Self {
            rows: [
                ("per message", &report.latency_ms),
                ("time to first message", &report.time_to_first_message_ms),
                ("time to recover", &report.recovery_ms),
                ("reconnect backoff", &report.backoff_ms),
                ("stream duration", &report.stream_duration_ms),
                ("message age", &report.message_age_ms),
            ],
        }
    }

    fn of_scenario(scenario: &'a ScenarioReport) -> Self {
        Self {
            rows: [
                ("per message", &scenario.latency_ms),
                ("time to first message", &scenario.time_to_first_message_ms),
                ("time to recover", &scenario.recovery_ms),
                ("reconnect backoff", &scenario.backoff_ms),
                ("stream duration", &scenario.stream_duration_ms),
                ("message age", &scenario.message_age_ms),
            ],
        }
    }
}

fn measures(out: &mut String, measures: &Measures<'_>) {
    for (name, percentiles) in &measures.rows {
        row(out, name, percentiles);
    }
}

/// Each scenario's counts and every per-call measure, since scenarios differ in call kind and
/// reconnect policy and the totals above mix them.
fn scenarios(out: &mut String, report: &Report) {
    let _ = writeln!(out, "\nby scenario");
    for scenario in &report.scenarios {
        let _ = writeln!(
            out,
            "\n{} ({}, {} slots): {} opened, {} failed, {} received, {} reconnects",
            scenario.method,
            scenario.kind.replace('_', " "),
            scenario.slots,
            scenario.streams.opened,
            scenario.streams.failed,
            scenario.messages.received,
            scenario.reconnects
        );
        let _ = writeln!(out, "{LATENCY_HEADER}");
        measures(out, &Measures::of_scenario(scenario));
    }
}

/// One row per occurrence of a chaos phase: when it ran, the calls started and failed during
/// it, and the latency of the messages received.
fn phases(out: &mut String, report: &Report) {
    if report.phases.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nby phase              from       to     calls    errors   error %    p50 ms    p90 ms    p99 ms"
    );
    for phase in &report.phases {
        let name = if phase.outage { format!("{} (outage)", phase.name) } else { phase.name.clone() };
        let latency = &phase.latency_ms;
        let ms = |value: f64| if latency.count == 0 { "-".to_owned() } else { format!("{value:.1}") };
        let _ = writeln!(
            out,
            "  {name:<18} {:>6.1}s {:>7.1}s {:>9} {:>9} {:>8.2}% {:>9} {:>9} {:>9}",
            phase.started_s,
            phase.ended_s,
            phase.calls,
            phase.errors,
            phase.error_rate * 100.0,
            ms(latency.p50),
            ms(latency.p90),
            ms(latency.p99)
        );
    }
}

/// The whole summary.
/// Where a report stands in a scaled-out run: its shard, what it was merged from, and the
/// calls by target address when there were several.
fn scale_out(out: &mut String, report: &Report) {
    if let Some(shard) = &report.shard {
        let late = if shard.late_s > 0.0 { format!(", {:.3}s late", shard.late_s) } else { String::new() };
        let _ = writeln!(
            out,
            "shard {}/{} (seed {}), began {}{late}",
            shard.index, shard.count, shard.seed, shard.started_at
        );
    }
    if let Some(merged) = &report.merged_from {
        let _ = writeln!(
            out,
            "merged from {} shard reports; the latest shard began {:.3}s late",
            merged.shards, merged.max_late_s
        );
    }
    if report.targets.len() > 1 {
        for target in &report.targets {
            let _ = writeln!(
                out,
                "target {}: {} connections, {} calls, {} failed",
                target.address, target.connections, target.calls, target.failed
            );
        }
    }
}

pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let streams = &report.streams;
    let _ = writeln!(
        out,
        "\nstreamstorm simulate — {} — {:.1}s, seed {}",
        report.target, report.duration_s, report.seed
    );
    if report.interrupted {
        let _ = writeln!(
            out,
            "stopped early by a signal after {:.1}s: the counts cover the run until then",
            report.duration_s
        );
    }
    scale_out(&mut out, report);
    let _ = writeln!(
        out,
        "\ncalls     {} opened, {} completed, {} failed ({:.2}%), {} open at the end, {} slots gave up",
        streams.opened,
        streams.completed,
        streams.failed,
        report.error_rate * 100.0,
        streams.cut_at_end,
        streams.given_up
    );
    let messages = &report.messages;
    let _ = writeln!(
        out,
        "messages  {} sent ({} unread by the server), {} received ({:.1}/s), {} missed by sequence",
        messages.sent, messages.unread_by_server, messages.received, messages.per_second, messages.missed
    );
    let _ = writeln!(out, "\n{LATENCY_HEADER}");
    measures(&mut out, &Measures::of_report(report));
    if report.scenarios.len() > 1 {
        scenarios(&mut out, report);
    }
    phases(&mut out, report);
    let _ = writeln!(out, "\nreconnects {}", report.reconnects);
    let errors: Vec<String> = report.errors.iter().map(|(code, count)| format!("{code} {count}")).collect();
    let _ = writeln!(out, "errors     {}", if errors.is_empty() { "none".into() } else { errors.join(", ") });
    let cut: Vec<String> = report
        .disconnects
        .iter()
        .filter(|(_, count)| **count > 0)
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    let _ = writeln!(out, "cut off    {}", if cut.is_empty() { "none".into() } else { cut.join(", ") });
    if let Some(faults) = &report.server_faults {
        let kinds: Vec<String> =
            by_kind(faults).iter().map(|(kind, count)| format!("{kind} {count}")).collect();
        let _ = writeln!(
            out,
            "\nserver faults injected  {}",
            if kinds.is_empty() { "none".into() } else { kinds.join(", ") }
        );
        let _ = writeln!(out, "  status           injected  client saw");
        for row in &faults.status_codes {
            let _ = writeln!(out, "  {:<16} {:>8} {:>10}", row.code, row.injected, row.observed);
        }
        let _ = writeln!(
            out,
            "  {:<16} {:>8} {:>10}",
            "stream resets", faults.resets.injected, faults.resets.observed
        );
        let lost = &faults.messages_before_resets;
        if lost.sent > 0 {
            let _ = writeln!(
                out,
                "  reset streams had sent {} messages, {} arrived, {} lost in flight",
                lost.sent, lost.received, lost.lost_in_flight
            );
        }
        let _ = writeln!(
            out,
            "  {}",
            if faults.reconciled {
                "client-observed errors match the injected faults"
            } else {
                "client-observed errors differ from the injected faults (faults racing the end of the run, or errors the chaos did not cause)"
            }
        );
    }
    if !report.thresholds.results.is_empty() {
        let verdict_line = if report.thresholds.passed { "passed" } else { "FAILED" };
        let _ = writeln!(out, "\nthresholds {verdict_line}");
        for result in &report.thresholds.results {
            let _ = writeln!(out, "{}", verdict(result));
        }
    }
    if let Some(peers) = &report.peers {
        let _ = write!(out, "\nas the server saw it\n{}", peers.describe());
    }
    out
}
