//! Telemetry: metrics recorded through the `metrics` facade with bounded labels and
//! pre-registered handles, exported for Prometheus by `metrics-exporter-prometheus`, and the
//! HTTP listener that serves them together with the live stream list and the admin endpoint.
//! Metric names live in [`names`]; what records them lives with the code that knows the event.

pub mod names;
