//! The process-wide Prometheus recorder: installed once (server and load client in one process
//! share it), with histogram buckets chosen per unit, and drained periodically so histogram
//! samples never pile up between scrapes.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Seconds: from 100 µs (one loopback message) to 10 minutes (a long stream).
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Bytes: from a tiny message to the 4 MiB default limit, and streams well beyond it.
pub(super) const BYTES_BUCKETS: &[f64] = &[
    16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];
/// Messages per stream: unary calls carry one, soak streams many thousands.
const MESSAGES_BUCKETS: &[f64] =
    &[0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0, 10000.0, 100000.0];

/// Schedule error: sub-millisecond when the server keeps up, tens of milliseconds when not.
const SCHEDULE_ERROR_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Why metrics cannot be recorded.
#[derive(Debug, thiserror::Error)]
#[error("cannot install the Prometheus recorder: {0}")]
pub struct RecorderError(String);

/// Installs the recorder on first call; later calls return the same handle.
pub fn install_recorder() -> Result<PrometheusHandle, RecorderError> {
    HANDLE.get_or_init(build).clone().map_err(RecorderError)
}

fn build() -> Result<PrometheusHandle, String> {
    let builder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(super::names::SCHEDULE_ERROR.into()), SCHEDULE_ERROR_BUCKETS)
        .and_then(|builder| {
            builder.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        })
        .and_then(|builder| builder.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS))
        .and_then(|builder| {
            builder.set_buckets_for_metric(Matcher::Suffix("_messages".into()), MESSAGES_BUCKETS)
        })
        .map_err(|error| error.to_string())?;
    let handle = builder.install_recorder().map_err(|error| error.to_string())?;
    super::names::describe();
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        })
        .map_err(|error| error.to_string())?;
    Ok(handle)
}
