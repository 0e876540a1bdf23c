//! The scale-out flags of `simulate` — which shard to run (`--shard I/N`, `STREAMSTORM_SHARD`,
//! or Kubernetes' `JOB_COMPLETION_INDEX` with `--shards N`) and when to begin (`--start-at`) —
//! and what a shard puts in its report: its place in the run, its lateness, the calls by
//! target address.

use std::time::{Duration, SystemTime};

use clap::Args;

use crate::client::{ConnectionPool, ShardSpec};
use crate::diagnostic::{Problem, Problems};
use crate::report::{ShardReport, TargetReport};

/// The environment variable an Indexed Job gives each of its pods.
pub const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

#[derive(Debug, Clone, Default, Args)]
pub struct ScaleFlags {
    /// Run shard I of N (0-based): a deterministic share of every scenario's streams and of
    /// the call budget, with draws seeded for this shard.
    #[arg(long, value_name = "I/N", env = "STREAMSTORM_SHARD", conflicts_with = "shards")]
    pub shard: Option<String>,
    /// Run one of N shards, the index taken from JOB_COMPLETION_INDEX (a Kubernetes
    /// Indexed Job).
    #[arg(long, value_name = "N")]
    pub shards: Option<u32>,
    /// Begin the load at this wall-clock time (RFC 3339, e.g. 2026-01-01T12:00:00Z), so
    /// every shard begins together; a shard that arrives later says so in its report.
    #[arg(long, value_name = "TIME", value_parser = start_at_flag)]
    pub start_at: Option<SystemTime>,
}

fn start_at_flag(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text).map_err(|error| format!("not an RFC 3339 time: {text:?} ({error})"))
}

impl ScaleFlags {
    /// The shard to run, if any; a bad flag or environment is an input problem.
    pub fn shard(&self, index_from_env: Option<String>) -> Result<Option<ShardSpec>, Problems> {
        let flag_problem = |message: String| Problems::from(Problem::in_file("<command line>", message));
        if let Some(text) = &self.shard {
            return ShardSpec::parse(text).map(Some).map_err(|why| flag_problem(format!("--shard: {why}")));
        }
        let Some(count) = self.shards else { return Ok(None) };
        let index = index_from_env.ok_or_else(|| {
            flag_problem(format!(
                "--shards {count} takes the shard's index from {JOB_COMPLETION_INDEX}, which is not set"
            ))
        })?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| flag_problem(format!("{JOB_COMPLETION_INDEX}={index:?} is not a shard index")))?;
        ShardSpec::new(index, count).map(Some).map_err(|why| flag_problem(format!("--shards: {why}")))
    }
}

/// When the load began, and how long after `--start-at`.
#[derive(Debug, Clone, Copy)]
pub struct Began {
    pub at: SystemTime,
    /// Zero when on time or no time was agreed.
    pub late: Duration,
}

/// Waits until `start_at` (if it is still ahead) and says when the load begins.
pub async fn wait_for_start(start_at: Option<SystemTime>) -> Began {
    let late = lateness(start_at).await;
    Began { at: SystemTime::now(), late }
}

async fn lateness(start_at: Option<SystemTime>) -> Duration {
    let Some(start_at) = start_at else { return Duration::ZERO };
    if let Ok(ahead) = start_at.duration_since(SystemTime::now()) {
        tracing::info!(wait_s = ahead.as_secs_f64(), "Waiting for --start-at.");
        tokio::time::sleep(ahead).await;
    }
    let late = SystemTime::now().duration_since(start_at).unwrap_or_default();
    // Below a scheduler's wake-up jitter, a shard is on time.
    if late > Duration::from_millis(50) {
        tracing::warn!(late_s = late.as_secs_f64(), "This shard began after --start-at.");
        return late;
    }
    Duration::ZERO
}

/// The report's `shard` section.
pub fn shard_report(shard: ShardSpec, seed: u64, start_at: Option<SystemTime>, began: Began) -> ShardReport {
    ShardReport {
        index: shard.index,
        count: shard.count,
        seed,
        start_at: start_at.map(|time| humantime::format_rfc3339_millis(time).to_string()),
        started_at: humantime::format_rfc3339_millis(began.at).to_string(),
        late_s: began.late.as_secs_f64(),
    }
}

/// The report's `targets` rows.
pub fn target_rows(pool: &ConnectionPool) -> Vec<TargetReport> {
    pool.breakdown()
        .into_iter()
        .map(|(address, connections, calls, failed)| TargetReport { address, connections, calls, failed })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_from_flag_or_job_index() {
        let flags = ScaleFlags { shard: Some("1/4".into()), ..ScaleFlags::default() };
        assert_eq!(flags.shard(None).unwrap(), Some(ShardSpec { index: 1, count: 4 }));
        let flags = ScaleFlags { shards: Some(3), ..ScaleFlags::default() };
        assert_eq!(flags.shard(Some("2".into())).unwrap(), Some(ShardSpec { index: 2, count: 3 }));
        assert!(flags.shard(None).unwrap_err().to_string().contains(JOB_COMPLETION_INDEX));
        assert!(flags.shard(Some("3".into())).unwrap_err().to_string().contains("not below"));
        assert_eq!(ScaleFlags::default().shard(Some("1".into())).unwrap(), None);
    }
}
