//! Telemetry: metrics recorded through the `metrics` facade with bounded labels and
//! pre-registered handles, exported for Prometheus by `metrics-exporter-prometheus`
//! ([`exporter`]), and the HTTP listener ([`endpoint`]) that serves them together with the
//! live stream list ([`live`]), the process's own state ([`process`]) and the chaos admin
//! endpoint ([`admin`]). Per-message series skip the recorder ([`hot`]). Metric names live in
//! [`names`]; what records them lives with the code that knows the event.

pub mod admin;
pub mod endpoint;
pub mod exporter;
pub mod hot;
pub mod live;
pub mod names;
pub mod process;

pub use endpoint::{BindError, TelemetryEndpoint, TelemetryState};
pub use exporter::install_recorder;

/// The process's metrics page: the recorder's series, then the per-message ones ([`hot`]).
pub fn render_page(prometheus: &metrics_exporter_prometheus::PrometheusHandle) -> String {
    let mut text = prometheus.render();
    hot::render(&mut text);
    text
}

/// Registers the counter `name` at zero for each of `values` of `label`, as the Prometheus
/// instrumentation guidelines ask: a dashboard then shows 0 for what has not happened yet
/// instead of "No data".
pub fn register_counter_at_zero(name: &'static str, label: &'static str, values: &[&'static str]) {
    for value in values {
        metrics::counter!(name, label => *value).increment(0);
    }
}
