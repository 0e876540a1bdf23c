//! `simulate --plot`: the SVG read back as XML. Latency is on a log scale in a panel of its
//! own, throughput and the errors and reconnects of each interval in panels below it, and the
//! time axis ends at the run's duration.

mod common;

use std::process::Command;

use roxmltree::{Document, Node};

fn attribute(node: Node<'_, '_>, name: &str) -> f64 {
    node.attribute(name).and_then(|value| value.parse().ok()).unwrap_or_else(|| panic!("{name} of {node:?}"))
}

fn by_class<'a, 'input>(root: Node<'a, 'input>, class: &str) -> Vec<Node<'a, 'input>> {
    root.descendants().filter(|node| node.attribute("class") == Some(class)).collect()
}

/// The y of each point of a polyline.
fn ys(polyline: Node<'_, '_>) -> Vec<f64> {
    let points = polyline.attribute("points").unwrap();
    points.split_whitespace().map(|pair| pair.split_once(',').unwrap().1.parse().unwrap()).collect()
}

#[test]
fn the_plot_shows_latency_on_a_log_scale_errors_per_interval_and_ends_at_the_duration() {
    let dir = tempfile::tempdir().unwrap();
    let svg_path = dir.path().join("plot.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_streamstorm"))
        .args(["simulate", "--quiet", "--duration", "4s", "--metrics-listen", "127.0.0.1:0", "--profile"])
        .arg(common::repo_root().join("profiles/flaky.yaml"))
        .arg("--plot")
        .arg(&svg_path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = std::fs::read_to_string(&svg_path).unwrap();
    let svg = Document::parse(&text).expect("the plot is well-formed XML");
    let panels = by_class(svg.root(), "panel");
    let ids: Vec<_> = panels.iter().map(|panel| panel.attribute("id").unwrap()).collect();
    assert_eq!(ids, ["latency", "throughput", "errors"]);

    // Latency: log scale, so p50 and p99 are lines of their own, not both squashed against the
    // floor by the max, as a linear scale draws them.
    let latency = panels[0];
    assert_eq!(latency.attribute("data-scale"), Some("log"));
    let frame = latency.children().find(|node| node.has_tag_name("rect")).unwrap();
    let (top, height) = (attribute(frame, "y"), attribute(frame, "height"));
    let series: Vec<_> = by_class(latency, "series");
    for name in ["p50", "p99", "max"] {
        assert!(series.iter().any(|line| line.attribute("data-series") == Some(name)), "no {name} line");
    }
    let line = |name: &str| -> Vec<f64> {
        series
            .iter()
            .filter(|line| line.attribute("data-series") == Some(name))
            .flat_map(|line| ys(*line))
            .collect()
    };
    let mean = |ys: &[f64]| ys.iter().sum::<f64>() / ys.len() as f64;
    let (p50, p99) = (line("p50"), line("p99"));
    let bottom = top + height;
    assert!(p50.iter().all(|y| *y < bottom - height * 0.05), "p50 lies on the floor: {p50:?}");
    assert!(mean(&p99) < bottom - height * 0.25, "p99 is in the bottom quarter: {p99:?}");
    assert!(mean(&p50) - mean(&p99) > height * 0.1, "p50 and p99 are apart: {p50:?} {p99:?}");
    let decades: Vec<_> =
        by_class(latency, "y-tick").iter().map(|tick| tick.text().unwrap().to_owned()).collect();
    assert!(decades.len() >= 2 && decades.iter().all(|tick| tick.starts_with('1')), "{decades:?}");

    // Errors and reconnects: a bar of each per interval, and flaky.yaml makes both happen.
    let bars = by_class(panels[2], "bar");
    let total = |name: &str| -> f64 {
        bars.iter()
            .filter(|bar| bar.attribute("data-series") == Some(name))
            .map(|bar| attribute(*bar, "data-value"))
            .sum()
    };
    assert!(total("errors") > 0.0 && total("reconnects") > 0.0, "{text}");
    let intervals = bars.iter().filter(|bar| bar.attribute("data-series") == Some("errors")).count();
    assert!((4..=6).contains(&intervals), "one bar per one-second interval: {intervals}");

    // The time axis ends at the run's 4 s, not at the drain after it.
    let ticks: Vec<_> =
        by_class(svg.root(), "x-tick").iter().map(|tick| tick.text().unwrap().to_owned()).collect();
    assert_eq!(ticks.first().map(String::as_str), Some("0s"));
    assert_eq!(ticks.last().map(String::as_str), Some("4s"), "{ticks:?}");
}
