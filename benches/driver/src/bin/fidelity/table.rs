//! The fidelity benchmark's report: per stream count and server, the gap error's percentiles
//! and long-run mean, the delivered rate and the server's CPU; the ratio of streamstorm's p99
//! error to the reference's; and the goals, met or not.

use streamstorm_driver::Outcome;
use streamstorm_driver::gaps::SignedHistogram;

use crate::servers::Server;

/// Goal: streamstorm's median gap error within this many milliseconds of zero.
pub const GOAL_MEDIAN_MS: f64 = 0.3;
/// Goal: at this many streams, streamstorm's p99 error no worse than the reference's.
pub const GOAL_P99_STREAMS: usize = 10_000;

/// CPU seconds one run took, in the server and in the driver.
#[derive(Debug, Clone, Copy)]
pub struct RunCpu {
    pub server: f64,
    pub driver: f64,
}

/// All rounds of one server at one stream count, merged.
pub struct Measured {
    pub streams: usize,
    pub server: Server,
    /// Gap errors, µs.
    pub gaps: SignedHistogram,
    /// Messages inside the windows, and the windows' total length.
    pub messages: u64,
    pub seconds: f64,
    /// The server's CPU seconds over the runs (start-up of the streams included).
    pub server_cpu_seconds: f64,
    /// The driver's (this process's) CPU seconds over the same runs: if it nears a core, the
    /// instrument, not the server, limits what is measured.
    pub driver_cpu_seconds: f64,
    /// Wall-clock seconds of the runs, for the CPU share.
    pub wall_seconds: f64,
    /// Calls that ended with an error.
    pub failed: u64,
}

impl Measured {
    pub fn new(streams: usize, server: Server) -> Self {
        Self {
            streams,
            server,
            gaps: SignedHistogram::default(),
            messages: 0,
            seconds: 0.0,
            server_cpu_seconds: 0.0,
            driver_cpu_seconds: 0.0,
            wall_seconds: 0.0,
            failed: 0,
        }
    }

    /// Adds one run: what the driver measured, and CPU and the wall clock over it.
    pub fn absorb(&mut self, outcome: &Outcome, cpu: RunCpu, wall_seconds: f64) {
        if let Some(gaps) = &outcome.gaps {
            self.gaps.add(gaps);
        }
        self.messages += outcome.messages;
        self.seconds += outcome.window.as_secs_f64();
        self.server_cpu_seconds += cpu.server;
        self.driver_cpu_seconds += cpu.driver;
        self.wall_seconds += wall_seconds;
        self.failed += outcome.failed;
    }

    fn milliseconds(&self, quantile: f64) -> f64 {
        self.gaps.quantile(quantile) as f64 / 1000.0
    }
}

/// Prints the table for `rows` (streamstorm then reference, per stream count) and the goals.
pub fn print(rows: &[Measured], gap_ms: f64, connections: usize) {
    println!();
    println!(
        "Gap error = arrival gap between consecutive messages of a stream − configured {gap_ms} ms, in ms \
         ({connections} connections; both servers measured alternately in this one run)."
    );
    println!();
    println!(
        "| streams | server | gaps | p50 | p90 | p99 | p999 | max | mean | msg/s (expected) | server CPU | driver CPU | failed calls |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!(
            "| {} | {} | {} | {:+.3} | {:+.3} | {:+.3} | {:+.3} | {:+.3} | {:+.3} | {:.0} ({:.0}) | {:.0} % | {:.0} % | {} |",
            row.streams,
            row.server.name(),
            row.gaps.len(),
            row.milliseconds(0.5),
            row.milliseconds(0.9),
            row.milliseconds(0.99),
            row.milliseconds(0.999),
            row.gaps.max() as f64 / 1000.0,
            row.gaps.mean() / 1000.0,
            row.messages as f64 / row.seconds.max(f64::EPSILON),
            row.streams as f64 * 1000.0 / gap_ms,
            100.0 * row.server_cpu_seconds / row.wall_seconds.max(f64::EPSILON),
            100.0 * row.driver_cpu_seconds / row.wall_seconds.max(f64::EPSILON),
            row.failed,
        );
    }
    println!();
    println!("Goals:");
    for row in rows.iter().filter(|row| row.server == Server::Streamstorm) {
        let median = row.milliseconds(0.5);
        println!(
            "- median error within ±{GOAL_MEDIAN_MS} ms at {} streams: {median:+.3} ms: {}",
            row.streams,
            verdict(median.abs() <= GOAL_MEDIAN_MS)
        );
    }
    for [ours, reference] in pairs(rows) {
        let (ours_p99, reference_p99) = (ours.milliseconds(0.99), reference.milliseconds(0.99));
        let ratio = ours_p99 / reference_p99;
        let goal = if ours.streams == GOAL_P99_STREAMS {
            format!(" (goal ≤ 1.00: {})", verdict(ours_p99 <= reference_p99))
        } else {
            String::new()
        };
        println!(
            "- p99 error at {} streams, streamstorm / reference: {ours_p99:+.3} / {reference_p99:+.3} ms = {ratio:.2}{goal}",
            ours.streams
        );
    }
}

/// The (streamstorm, reference) rows of each stream count.
fn pairs(rows: &[Measured]) -> impl Iterator<Item = [&Measured; 2]> {
    rows.iter().filter(|row| row.server == Server::Streamstorm).filter_map(|ours| {
        let reference =
            rows.iter().find(|row| row.server == Server::Reference && row.streams == ours.streams)?;
        Some([ours, reference])
    })
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}
