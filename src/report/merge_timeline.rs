//! The time-based parts of a merge. Timelines are aligned on wall-clock intervals: each
//! shard's point falls in the interval (of the first shard's length) its end time falls in,
//! counted from the earliest shard's start, and the points of one interval are summed, their
//! latency histograms added. Phases are aligned by occurrence: the n-th occurrence of every
//! shard is the same phase of the same timeline, which must carry the same name.

use std::collections::BTreeMap;

use super::histograms::{decode, encode};
use super::merge::{MergeError, ShardFile};
use super::{Percentiles, PhaseReport, TimelinePoint};
use crate::client::stats::new_histogram;
use crate::proto::status::code_from_name;

/// One wall-clock interval of the merged timeline.
struct Bucket {
    point: TimelinePoint,
    latency: hdrhistogram::Histogram<u64>,
    /// Per shard, the seconds its points in this interval cover.
    spans: Vec<f64>,
}

/// The shards' timelines on one wall-clock axis.
pub(super) fn merge_timeline(shards: &[ShardFile]) -> Result<Vec<TimelinePoint>, MergeError> {
    let starts =
        shards.iter().flat_map(|shard| shard.view.timeline.iter().map(|point| point.unix_s - point.t_s));
    let Some(start) = starts.reduce(f64::min) else { return Ok(Vec::new()) };
    let interval = shards
        .iter()
        .find_map(|shard| shard.view.timeline.first())
        .map_or(1.0, |point| point.interval_s.max(1e-3));
    let mut buckets: BTreeMap<u64, Bucket> = BTreeMap::new();
    for (position, shard) in shards.iter().enumerate() {
        for (index, point) in shard.view.timeline.iter().enumerate() {
            let latency = decode(&point.latency_histogram).map_err(|why| MergeError::Corrupt {
                file: shard.name(),
                field: format!("timeline[{index}].latency_histogram"),
                why,
            })?;
            let slot = ((point.unix_s - start) / interval).round().max(1.0) as u64;
            let bucket = buckets.entry(slot).or_insert_with(|| Bucket {
                point: TimelinePoint::default(),
                latency: new_histogram(),
                spans: vec![0.0; shards.len()],
            });
            bucket.spans[position] += point.interval_s;
            let merged = &mut bucket.point;
            merged.t_s = merged.t_s.max(point.unix_s - start);
            merged.unix_s = merged.unix_s.max(point.unix_s);
            merged.messages += point.messages;
            merged.errors += point.errors;
            merged.streams_active += point.streams_active;
            merged.reconnects += point.reconnects;
            let _ = bucket.latency.add(&latency);
        }
    }
    Ok(buckets
        .into_values()
        .map(|Bucket { mut point, latency, spans }| {
            // A shard's last, partial interval may share a bucket with its full one.
            let span = spans.into_iter().fold(0.0, f64::max).max(1e-3);
            point.interval_s = span;
            point.messages_per_second = point.messages as f64 / span;
            point.errors_per_second = point.errors as f64 / span;
            let percentiles = Percentiles::of(&latency);
            (point.p50_ms, point.p99_ms, point.max_ms) = (percentiles.p50, percentiles.p99, percentiles.max);
            point.latency_histogram = encode(&latency);
            point
        })
        .collect())
}

/// The shards' phase occurrences, the n-th of each summed.
pub(super) fn merge_phases(shards: &[ShardFile]) -> Result<Vec<PhaseReport>, MergeError> {
    let mut merged: Vec<PhaseReport> = Vec::new();
    let mut latencies = Vec::new();
    for shard in shards {
        for (index, phase) in shard.view.phases.iter().enumerate() {
            let corrupt = |field: &str, why: String| MergeError::Corrupt {
                file: shard.name(),
                field: format!("phases[{index}].{field}"),
                why,
            };
            let latency =
                decode(&phase.latency_histogram).map_err(|why| corrupt("latency_histogram", why))?;
            if index >= merged.len() {
                merged.push(PhaseReport {
                    calls: 0,
                    errors: 0,
                    errors_by_code: BTreeMap::new(),
                    ..phase.clone()
                });
                latencies.push(new_histogram());
            }
            let sum = &mut merged[index];
            if sum.name != phase.name {
                return Err(corrupt("name", format!("{} where other shards have {}", phase.name, sum.name)));
            }
            sum.started_s = sum.started_s.min(phase.started_s);
            sum.ended_s = sum.ended_s.max(phase.ended_s);
            sum.calls += phase.calls;
            sum.errors += phase.errors;
            for (code, count) in &phase.errors_by_code {
                code_from_name(code)
                    .ok_or_else(|| corrupt("errors_by_code", format!("unknown status code {code:?}")))?;
                *sum.errors_by_code.entry(code.clone()).or_insert(0) += count;
            }
            let _ = latencies[index].add(&latency);
        }
    }
    for (phase, latency) in merged.iter_mut().zip(&latencies) {
        phase.error_rate = if phase.calls == 0 { 0.0 } else { phase.errors as f64 / phase.calls as f64 };
        phase.latency_ms = Percentiles::of(latency);
        phase.latency_histogram = encode(latency);
    }
    Ok(merged)
}
