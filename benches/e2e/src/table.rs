//! The end-to-end benchmark's report: every figure as a ratio of runs from the same run of the
//! benchmark (medians over alternating pairs), with the goals, met or not.

use crate::driven::{Idle, Throughput};
use crate::million::Held;
use crate::proxied::{ProxyFigures, micros};

/// grpc-java's memory per idle stream, in bytes (2.45 KB).
const GRPC_JAVA_BYTES_PER_STREAM: f64 = 2450.0;
/// The goal: at most 2 KiB of server memory per idle stream.
const GOAL_BYTES_PER_STREAM: f64 = 2048.0;
/// The goal for figures 1 and 2: at least this share of the baseline.
const GOAL_THROUGHPUT_RATIO: f64 = 1.0;
/// The goal for figure 4: the built-in client at least this share of the driver's rate.
const GOAL_CLIENT_RATIO: f64 = 0.9;
/// The goal for figures 5 and 6: at least this share of the baseline served directly.
const GOAL_PROXY_RATIO: f64 = 0.8;
/// The goal for figure 7: at most this much added to a unary call's median round trip.
const GOAL_ADDED_LATENCY_MICROS: f64 = 100.0;

/// Runs of one figure: `[streamstorm, baseline]` for server figures, `[built-in, driver]` for
/// the client figure, one entry per pair.
pub type Pairs = [Vec<Throughput>; 2];

/// Idle streams, `[streamstorm, baseline]`, at one stream count and opening.
pub struct IdleRow {
    pub streams: usize,
    /// `burst`, `ramp over …` or `burst over N connections`.
    pub opening: String,
    pub sides: [Idle; 2],
}

/// Everything the table shows.
pub struct Figures {
    pub streamed: Pairs,
    pub unaries: Pairs,
    pub idle: Vec<IdleRow>,
    /// The built-in load client and the driver, both against streamstorm.
    pub clients: Pairs,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 0 { (values[middle - 1] + values[middle]) / 2.0 } else { values[middle] }
}

/// The median over pairs of first / second, and the median of each side.
fn ratio_of(runs: &Pairs, value: impl Fn(&Throughput) -> f64) -> (f64, f64, f64) {
    let ratios = runs[0].iter().zip(&runs[1]).map(|(first, second)| value(first) / value(second)).collect();
    let side = |index: usize| median(runs[index].iter().map(&value).collect());
    (median(ratios), side(0), side(1))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

pub fn print(figures: &Figures) {
    println!();
    println!(
        "Server figures measured with the driver; ratios are medians over alternating pairs of this run."
    );
    println!();
    println!("| figure | streamstorm | baseline | ratio | goal |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, runs) in
        [("1. server streaming, msg/s", &figures.streamed), ("2. unary, calls/s", &figures.unaries)]
    {
        let (ratio, ours, theirs) = ratio_of(runs, |run| run.per_second);
        println!(
            "| {label} | {ours:.0} | {theirs:.0} | {ratio:.2} | ≥ {GOAL_THROUGHPUT_RATIO:.2}: {} |",
            verdict(ratio >= GOAL_THROUGHPUT_RATIO)
        );
    }
    // Rates swing with the machine's other load; CPU per message is the steadier comparison.
    for (label, runs) in [
        ("1. server CPU per streamed message", &figures.streamed),
        ("2. server CPU per unary call", &figures.unaries),
    ] {
        let (ratio, ours, theirs) = ratio_of(runs, |run| run.server_cpu_per_message);
        println!(
            "| {label} | {:.2} µs | {:.2} µs | {ratio:.2} (baseline / streamstorm: {:.2}) | ≤ baseline: {} |",
            ours * 1e6,
            theirs * 1e6,
            1.0 / ratio,
            verdict(ratio <= 1.0)
        );
    }
    if !figures.idle.is_empty() {
        print_idle(&figures.idle);
    }
    print_clients(&figures.clients);
}

/// Figure 3: idle streams, memory and connections lost.
pub fn print_idle(rows: &[IdleRow]) {
    println!();
    println!("| figure 3: idle streams | streamstorm | baseline | ratio | goal |");
    println!("| --- | --- | --- | --- | --- |");
    for row in rows {
        let [ours, theirs] = row.sides.map(|side| side.bytes_per_stream);
        println!(
            "| 3. server memory per idle stream, {}k, {} | {ours:.0} B | {theirs:.0} B | {:.2} × baseline, {:.2} × grpc-java 2.45 KB, {:.2} × 2 KiB | ≤ 2 KiB: {} |",
            row.streams / 1000,
            row.opening,
            ours / theirs,
            ours / GRPC_JAVA_BYTES_PER_STREAM,
            ours / GOAL_BYTES_PER_STREAM,
            verdict(ours <= GOAL_BYTES_PER_STREAM)
        );
    }
    for row in rows {
        let [ours, theirs] = row.sides;
        println!(
            "| 3. connections lost (calls failed), {}k, {} | {} ({}) | {} ({}) | | 0: {} |",
            row.streams / 1000,
            row.opening,
            ours.failed_connections,
            ours.failed_calls,
            theirs.failed_connections,
            theirs.failed_calls,
            verdict(ours.failed_connections == 0)
        );
    }
}

/// Figure 4: the built-in load client against the driver, on the same streamstorm server.
fn print_clients(clients: &Pairs) {
    println!();
    println!("| figure 4: against streamstorm | built-in client | driver | built-in / driver | goal |");
    println!("| --- | --- | --- | --- | --- |");
    let (ratio, builtin, driver) = ratio_of(clients, |run| run.per_second);
    println!(
        "| server streaming, msg/s | {builtin:.0} | {driver:.0} | {ratio:.2} | ≥ {GOAL_CLIENT_RATIO:.1}: {} |",
        verdict(ratio >= GOAL_CLIENT_RATIO)
    );
    let (ratio, builtin, driver) = ratio_of(clients, |run| run.client_cpu_per_message);
    println!("| client CPU per message | {:.2} µs | {:.2} µs | {ratio:.2} | |", builtin * 1e6, driver * 1e6);
    // The built-in client's own budget: less CPU per message than the server it drives.
    let ratios =
        clients[0].iter().map(|run| run.client_cpu_per_message / run.server_cpu_per_message).collect();
    let ratio = median(ratios);
    println!(
        "| built-in client CPU / streamstorm server CPU, per message | {ratio:.2} | | | < 1: {} |",
        verdict(ratio < 1.0)
    );
}

/// Figure 9: streams held by `serve` and the built-in client.
pub fn print_held(held: &Held) {
    println!();
    println!(
        "| figure 9: {} streams over {} connections, `serve` + built-in client | server | client | goal |",
        held.streams, held.connections
    );
    println!("| --- | --- | --- | --- |");
    println!(
        "| time until all are open (a ramp of 10,000 a second) | {:.1} s | | |",
        held.open_time.as_secs_f64()
    );
    println!(
        "| memory per stream | {:.0} B | {:.0} B | |",
        held.server_bytes_per_stream, held.client_bytes_per_stream
    );
    println!(
        "| CPU while they idle | {:.1} % of a core | {:.1} % of a core | |",
        held.server_idle_cores * 100.0,
        held.client_idle_cores * 100.0
    );
    println!(
        "| connections closed on error / calls failed | {} | {} | 0: {} |",
        held.connections_lost,
        held.failed_calls,
        verdict(held.connections_lost == 0.0 && held.failed_calls == 0)
    );
}

/// Figures 5–8: the baseline server through the proxy against the baseline directly.
pub fn print_proxy(figures: &ProxyFigures) {
    println!();
    println!("| proxy figure: baseline server | through the proxy | direct | ratio | goal |");
    println!("| --- | --- | --- | --- | --- |");
    for (label, runs) in
        [("5. server streaming, msg/s", &figures.streamed), ("6. unary, calls/s", &figures.unaries)]
    {
        let (ratio, proxied, direct) = ratio_of(runs, |run| run.per_second);
        println!(
            "| {label} | {proxied:.0} | {direct:.0} | {ratio:.2} | ≥ {GOAL_PROXY_RATIO:.2}: {} |",
            verdict(ratio >= GOAL_PROXY_RATIO)
        );
    }
    let [proxied, direct] = figures.round_trips.map(micros);
    let added = proxied - direct;
    println!(
        "| 7. unary round trip, median | {proxied:.1} µs | {direct:.1} µs | +{added:.1} µs | ≤ {GOAL_ADDED_LATENCY_MICROS:.0} µs added: {} |",
        verdict(added <= GOAL_ADDED_LATENCY_MICROS)
    );
    for (streams, bytes) in &figures.idle {
        println!("| 8. proxy memory per idle proxied stream, {}k | {bytes:.0} B | | | |", streams / 1000);
    }
}
