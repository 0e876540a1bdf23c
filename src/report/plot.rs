//! The latency-over-time plot: a self-contained SVG of each interval's p50, p99 and max
//! latency, with messages per second on a second axis, for people who would rather look
//! than read.

use std::fmt::Write as _;

use super::TimelinePoint;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 70.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// A line: its name, colour, the value it plots and the top of its axis.
type Series<'a> = (&'a str, &'a str, &'a dyn Fn(&TimelinePoint) -> f64, f64);

/// The SVG text for `timeline`, titled `title`.
pub fn latency_svg(timeline: &[TimelinePoint], title: &str) -> String {
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let end = timeline.iter().map(|point| point.t_s).fold(1.0, f64::max);
    let top_ms =
        nice_ceiling(timeline.iter().map(|point| point.max_ms.max(point.p99_ms)).fold(1.0, f64::max));
    let top_rate = nice_ceiling(timeline.iter().map(|point| point.messages_per_second).fold(1.0, f64::max));
    let x = |t: f64| LEFT + plot_width * t / end;
    let y = |value: f64, top: f64| TOP + plot_height * (1.0 - value / top);
    let line = |value: &dyn Fn(&TimelinePoint) -> f64, top: f64| {
        let mut points = String::new();
        for point in timeline {
            let _ = write!(points, "{:.1},{:.1} ", x(point.t_s), y(value(point), top));
        }
        points
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{LEFT}" y="22" font-size="15">{}</text>"#, escape(title));
    for step in 0..=4 {
        let fraction = f64::from(step) / 4.0;
        let level = TOP + plot_height * (1.0 - fraction);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{level:.1}" x2="{:.1}" y2="{level:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{:.0} ms</text><text x="{:.1}" y="{:.1}">{:.0}/s</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            level + 4.0,
            top_ms * fraction,
            WIDTH - RIGHT + 6.0,
            level + 4.0,
            top_rate * fraction
        );
        let t = end * fraction;
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{t:.0}s</text>"#,
            x(t),
            HEIGHT - BOTTOM + 18.0
        );
    }
    let series: [Series<'_>; 4] = [
        ("msg/s", "#9ecae1", &|point| point.messages_per_second, top_rate),
        ("max", "#fdae6b", &|point| point.max_ms, top_ms),
        ("p99", "#e6550d", &|point| point.p99_ms, top_ms),
        ("p50", "#3182bd", &|point| point.p50_ms, top_ms),
    ];
    for (index, (name, color, value, top)) in series.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            line(*value, *top)
        );
        let legend_x = LEFT + 80.0 * index as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{legend_x:.1}" y="{:.1}" width="12" height="4" fill="{color}"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
            HEIGHT - 14.0,
            legend_x + 16.0,
            HEIGHT - 9.0
        );
    }
    svg.push_str("</svg>\n");
    svg
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

    #[test]
    fn the_plot_draws_every_point_of_every_series() {
        let point = |t_s: f64, p50_ms: f64| TimelinePoint {
            t_s,
            messages_per_second: 100.0,
            errors_per_second: 0.0,
            streams_active: 1,
            reconnects: 0,
            p50_ms,
            p99_ms: p50_ms * 2.0,
            max_ms: p50_ms * 3.0,
        };
        let svg = latency_svg(&[point(1.0, 10.0), point(2.0, 20.0)], "a <run>");
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert!(svg.contains("a &lt;run&gt;"));
        // p50 at t=2 is 20 ms of a 100 ms axis: 80% of the way down the plot area.
        assert!(svg.contains(&format!("{:.1},{:.1}", WIDTH - RIGHT, TOP + (HEIGHT - TOP - BOTTOM) * 0.8)));
        assert_eq!(nice_ceiling(60.0), 100.0);
        assert_eq!(nice_ceiling(0.3), 0.5);
    }
}
