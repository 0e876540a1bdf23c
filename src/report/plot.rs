//! The run over time, as a self-contained SVG of three panels on one time axis that ends at
//! the run's duration: each interval's p50, p99 and max latency on a log scale (a slow tail
//! would squash a linear one), messages per second, and the errors and reconnects of each
//! interval as bars. Chaos phases are marked across all three: a line where each phase
//! began, named, with outage phases shaded. Elements carry `class` and `data-*` attributes
//! naming what they show, so the plot can be checked by reading it.

use std::fmt::Write as _;

use super::{PhaseReport, TimelinePoint};

const WIDTH: f64 = 960.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TITLE_HEIGHT: f64 = 40.0;
const GAP: f64 = 34.0;
const AXIS_HEIGHT: f64 = 40.0;
const PLOT_WIDTH: f64 = WIDTH - LEFT - RIGHT;
/// Decades of room kept under the smallest latency.
const ROOM_BELOW: f64 = 0.3;

/// One panel's place on the page.
#[derive(Clone, Copy)]
struct Frame {
    top: f64,
    height: f64,
}

impl Frame {
    fn bottom(self) -> f64 {
        self.top + self.height
    }
}

/// Maps time to x: 0 at the left edge, `end` at the right; later points sit at the edge.
#[derive(Clone, Copy)]
struct TimeAxis {
    end: f64,
}

impl TimeAxis {
    fn x(self, t: f64) -> f64 {
        LEFT + PLOT_WIDTH * (t.clamp(0.0, self.end) / self.end)
    }
}

/// How a panel maps a value to y.
#[derive(Clone, Copy)]
enum Scale {
    Linear {
        top: f64,
    },
    /// Decades from `low` to `high`.
    Log {
        low: f64,
        high: f64,
    },
}

impl Scale {
    fn y(self, frame: Frame, value: f64) -> f64 {
        let fraction = match self {
            Self::Linear { top } => value / top,
            Self::Log { low, high } => (value.max(low).log10() - low.log10()) / (high.log10() - low.log10()),
        };
        frame.bottom() - frame.height * fraction.clamp(0.0, 1.0)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Linear { .. } => "linear",
            Self::Log { .. } => "log",
        }
    }
}

/// A line of the plot: its name, colour and what it reads from an interval.
type Series = (&'static str, &'static str, fn(&TimelinePoint) -> f64);

const LATENCY: [Series; 3] = [
    ("max", "#fdae6b", |point| point.max_ms),
    ("p99", "#e6550d", |point| point.p99_ms),
    ("p50", "#3182bd", |point| point.p50_ms),
];
const THROUGHPUT: [Series; 1] = [("msg/s", "#31a354", |point| point.messages_per_second)];

/// The SVG text for `timeline` with its `phases` marked, on a time axis from 0 to
/// `duration_s`, titled `title`.
pub fn latency_svg(
    timeline: &[TimelinePoint],
    phases: &[PhaseReport],
    duration_s: f64,
    title: &str,
) -> String {
    let axis = TimeAxis { end: duration_s.max(1e-3) };
    let latency = Frame { top: TITLE_HEIGHT + GAP, height: 240.0 };
    let throughput = Frame { top: latency.bottom() + GAP, height: 110.0 };
    let errors = Frame { top: throughput.bottom() + GAP, height: 110.0 };
    let height = errors.bottom() + AXIS_HEIGHT;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="24" font-size="15">{}</text>"#, escape(title));
    phase_marks(&mut svg, phases, axis, latency.top, errors.bottom());

    let (low, high) = latency_decades(timeline);
    let scale = Scale::Log { low, high };
    open_panel(&mut svg, "latency", "latency per interval (ms, log scale)", latency, scale);
    let mut decade = low;
    while decade <= high * 1.001 {
        y_tick(&mut svg, scale.y(latency, decade), &milliseconds(decade), "y-tick");
        // 2 and 5 within each decade, fainter, so values can be read between the decades.
        for minor in [2.0, 5.0].map(|factor| factor * decade).into_iter().filter(|minor| *minor < high) {
            y_tick(&mut svg, scale.y(latency, minor), &milliseconds(minor), "y-tick-minor");
        }
        decade *= 10.0;
    }
    lines(&mut svg, timeline, axis, latency, scale, &LATENCY, |value| value > 0.0);
    svg.push_str("</g>\n");

    let rate_top = nice_ceiling(timeline.iter().map(|point| point.messages_per_second).fold(1.0, f64::max));
    let scale = Scale::Linear { top: rate_top };
    open_panel(&mut svg, "throughput", "messages received per second", throughput, scale);
    linear_ticks(&mut svg, throughput, scale, rate_top);
    lines(&mut svg, timeline, axis, throughput, scale, &THROUGHPUT, |_| true);
    svg.push_str("</g>\n");

    let counts = interval_counts(timeline);
    let count_top = nice_ceiling(counts.iter().map(|(_, _, e, r)| e.max(*r)).fold(1.0, f64::max));
    let scale = Scale::Linear { top: count_top };
    open_panel(&mut svg, "errors", "failed calls and reconnects per interval", errors, scale);
    linear_ticks(&mut svg, errors, scale, count_top);
    bars(&mut svg, &counts, axis, errors, scale);
    svg.push_str("</g>\n");

    time_ticks(&mut svg, axis, latency.top, errors.bottom());
    svg.push_str("</svg>\n");
    svg
}

/// Each phase's span from `top` to `bottom`: outages shaded, a line and the name where each
/// phase began.
fn phase_marks(svg: &mut String, phases: &[PhaseReport], axis: TimeAxis, top: f64, bottom: f64) {
    for phase in phases {
        let (start, end) = (axis.x(phase.started_s), axis.x(phase.ended_s));
        let name = escape(&phase.name);
        let _ = writeln!(
            svg,
            r#"<g class="phase" data-phase="{name}" data-outage="{}" data-start="{:.3}" data-end="{:.3}">"#,
            phase.outage, phase.started_s, phase.ended_s
        );
        if phase.outage {
            let _ = writeln!(
                svg,
                r##"<rect x="{start:.1}" y="{top}" width="{:.1}" height="{}" fill="#de2d26" fill-opacity="0.08"/>"##,
                (end - start).max(0.0),
                bottom - top
            );
        }
        let _ = writeln!(
            svg,
            r##"<line x1="{start:.1}" y1="{top}" x2="{start:.1}" y2="{bottom}" stroke="#888" stroke-dasharray="3 3"/>"##
        );
        let _ =
            writeln!(svg, r##"<text x="{:.1}" y="{}" fill="#555">{name}</text>"##, start + 3.0, top - 4.0);
        svg.push_str("</g>\n");
    }
}

/// The decades the latency panel spans: from below the smallest measured value, with at least
/// a third of a decade of room under it so the p50 line never lies on the floor, to above the
/// largest; at least one decade.
fn latency_decades(timeline: &[TimelinePoint]) -> (f64, f64) {
    let measured = timeline.iter().flat_map(|point| [point.p50_ms, point.p99_ms, point.max_ms]);
    let (min, max) = measured
        .filter(|value| *value > 0.0)
        .fold((f64::INFINITY, 0.0_f64), |(min, max), value| (min.min(value), max.max(value)));
    if !min.is_finite() {
        return (1.0, 1000.0);
    }
    let low = 10f64.powf((min.log10() - ROOM_BELOW).floor());
    let high = 10f64.powf(max.log10().ceil()).max(low * 10.0);
    (low, high)
}

fn open_panel(svg: &mut String, id: &str, label: &str, frame: Frame, scale: Scale) {
    let _ = writeln!(svg, r#"<g class="panel" id="{id}" data-scale="{}">"#, scale.name());
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{label}</text>"#, frame.top - 8.0);
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{:.1}" width="{PLOT_WIDTH}" height="{:.1}" fill="none" stroke="#999"/>"##,
        frame.top, frame.height
    );
}

/// A grid line across the panel at `y`, labelled; `class` is `y-tick`, or `y-tick-minor` for
/// the fainter ones.
fn y_tick(svg: &mut String, y: f64, label: &str, class: &str) {
    let (stroke, fill) = if class == "y-tick" { ("#e5e5e5", "#000") } else { ("#f3f3f3", "#999") };
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{stroke}"/><text class="{class}" x="{:.1}" y="{:.1}" text-anchor="end" fill="{fill}">{label}</text>"##,
        LEFT + PLOT_WIDTH,
        LEFT - 6.0,
        y + 4.0
    );
}

fn linear_ticks(svg: &mut String, frame: Frame, scale: Scale, top: f64) {
    for step in 0..=2 {
        let value = top * f64::from(step) / 2.0;
        y_tick(svg, scale.y(frame, value), &count(value), "y-tick");
    }
}

/// One polyline per series; intervals `keep` rejects (no latency measured) break the line.
fn lines(
    svg: &mut String,
    timeline: &[TimelinePoint],
    axis: TimeAxis,
    frame: Frame,
    scale: Scale,
    series: &[Series],
    keep: fn(f64) -> bool,
) {
    for (index, (name, color, value)) in series.iter().enumerate() {
        let mut runs: Vec<String> = vec![String::new()];
        for point in timeline {
            let value = value(point);
            if keep(value) {
                let run = runs.last_mut().expect("never empty");
                let _ = write!(run, "{:.1},{:.1} ", axis.x(point.t_s), scale.y(frame, value));
            } else if !runs.last().is_some_and(String::is_empty) {
                runs.push(String::new());
            }
        }
        for points in runs.iter().filter(|points| !points.is_empty()) {
            let _ = writeln!(
                svg,
                r#"<polyline class="series" data-series="{name}" fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                points.trim_end()
            );
        }
        legend(svg, frame, index, name, color);
    }
}

/// Each interval's start, end, failed calls and reconnects (the timeline counts reconnects
/// from the start of the run, and errors per second).
fn interval_counts(timeline: &[TimelinePoint]) -> Vec<(f64, f64, f64, f64)> {
    let mut previous = (0.0, 0);
    timeline
        .iter()
        .map(|point| {
            let (start, reconnects_before) = previous;
            previous = (point.t_s, point.reconnects);
            let errors = (point.errors_per_second * (point.t_s - start)).round();
            (start, point.t_s, errors, point.reconnects.saturating_sub(reconnects_before) as f64)
        })
        .collect()
}

/// Two bars per interval, errors then reconnects, each half the interval wide.
fn bars(svg: &mut String, counts: &[(f64, f64, f64, f64)], axis: TimeAxis, frame: Frame, scale: Scale) {
    const ERRORS: (&str, &str) = ("errors", "#de2d26");
    const RECONNECTS: (&str, &str) = ("reconnects", "#756bb1");
    for &(start, end, errors, reconnects) in counts {
        let (left, right) = (axis.x(start), axis.x(end));
        let half = ((right - left) / 2.0 - 1.0).max(0.5);
        for (offset, (name, color), value) in [(0.0, ERRORS, errors), (half, RECONNECTS, reconnects)] {
            let y = scale.y(frame, value);
            let _ = writeln!(
                svg,
                r#"<rect class="bar" data-series="{name}" data-t="{end:.2}" data-value="{value}" x="{:.1}" y="{y:.1}" width="{half:.1}" height="{:.1}" fill="{color}"/>"#,
                left + offset + 0.5,
                frame.bottom() - y
            );
        }
    }
    legend(svg, frame, 0, ERRORS.0, ERRORS.1);
    legend(svg, frame, 1, RECONNECTS.0, RECONNECTS.1);
}

fn legend(svg: &mut String, frame: Frame, index: usize, name: &str, color: &str) {
    let x = LEFT + PLOT_WIDTH - 90.0 * (index as f64 + 1.0);
    let y = frame.top - 12.0;
    let _ = writeln!(
        svg,
        r#"<rect x="{x:.1}" y="{y:.1}" width="14" height="5" fill="{color}"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
        x + 18.0,
        y + 6.0
    );
}

/// Vertical grid lines and labels at round times, and a last label at the end of the run.
fn time_ticks(svg: &mut String, axis: TimeAxis, top: f64, bottom: f64) {
    let step = nice_ceiling(axis.end / 8.0);
    let mut ticks: Vec<f64> =
        (0..).map(|index| f64::from(index) * step).take_while(|t| *t < axis.end - step / 4.0).collect();
    ticks.push(axis.end);
    for t in ticks {
        let x = axis.x(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#f0f0f0"/><text class="x-tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            bottom + 18.0,
            seconds(t)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time since the start of the run</text>"#,
        LEFT + PLOT_WIDTH / 2.0,
        bottom + 34.0
    );
}

fn seconds(t: f64) -> String {
    if (t - t.round()).abs() < 0.05 { format!("{:.0}s", t.round()) } else { format!("{t:.1}s") }
}

fn milliseconds(value: f64) -> String {
    if value >= 1000.0 { format!("{} s", count(value / 1000.0)) } else { format!("{} ms", count(value)) }
}

/// A tick value without needless decimals: 0.01, 0.5, 20, 1500.
fn count(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// 1, 2 or 5 times a power of ten, at least `value`.
fn nice_ceiling(value: f64) -> f64 {
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|factor| factor * magnitude).find(|nice| *nice >= value).unwrap_or(value)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t_s: f64, p50_ms: f64, errors_per_second: f64, reconnects: u64) -> TimelinePoint {
        TimelinePoint {
            t_s,
            messages_per_second: 100.0,
            errors_per_second,
            streams_active: 1,
            reconnects,
            p50_ms,
            p99_ms: p50_ms * 20.0,
            max_ms: p50_ms * 100.0,
            ..TimelinePoint::default()
        }
    }

    #[test]
    fn latency_is_on_a_log_scale_of_whole_decades() {
        assert_eq!(latency_decades(&[point(1.0, 2.0, 0.0, 0)]), (1.0, 1000.0));
        // 120 ms is too close to 100 ms to leave room for the p50 line: the floor is 10 ms.
        assert_eq!(latency_decades(&[point(1.0, 120.0, 0.0, 0)]), (10.0, 100_000.0));
        let scale = Scale::Log { low: 1.0, high: 1000.0 };
        let frame = Frame { top: 0.0, height: 300.0 };
        // 10 ms is a third of the way up, 100 ms two thirds: p50 no longer hugs the floor.
        assert!((scale.y(frame, 10.0) - 200.0).abs() < 1e-9);
        assert!((scale.y(frame, 100.0) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn errors_and_reconnects_are_counted_per_interval() {
        let counts =
            interval_counts(&[point(1.0, 1.0, 3.0, 2), point(2.0, 1.0, 0.0, 2), point(2.5, 1.0, 4.0, 5)]);
        assert_eq!(counts, [(0.0, 1.0, 3.0, 2.0), (1.0, 2.0, 0.0, 0.0), (2.0, 2.5, 2.0, 3.0)]);
    }

    #[test]
    fn the_time_axis_ends_at_the_duration() {
        let svg = latency_svg(&[point(10.0, 1.0, 0.0, 0), point(20.4, 1.0, 0.0, 0)], &[], 20.0, "a <run>");
        assert!(svg.contains(">20s</text>") && !svg.contains(">21s</text>"), "{svg}");
        assert!(svg.contains("a &lt;run&gt;"));
        assert_eq!(count(0.5), "0.5");
        assert_eq!(nice_ceiling(60.0), 100.0);
    }
}
