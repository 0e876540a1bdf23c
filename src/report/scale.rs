//! What a report says about its place in a scaled-out run: which profile it ran (so `report
//! merge` can refuse shards of different runs), which shard it was and whether it began on
//! time, how its calls fell on the target addresses, and — for a merged report — which shard
//! reports it was made from.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::client::ShardSpec;

/// The profile a report ran: its path as given and a digest of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileIdentity {
    pub path: String,
    /// FNV-1a (64-bit) of the file's bytes, in hex: equal files, equal digests, wherever
    /// each shard read its copy from.
    pub digest: String,
}

impl ProfileIdentity {
    /// Reads `path` for its digest.
    pub fn of_file(path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        Ok(Self { path: path.display().to_string(), digest: digest(&bytes) })
    }
}

/// FNV-1a over `bytes`, as 16 hex digits.
pub fn digest(bytes: &[u8]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = bytes.iter().fold(OFFSET, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(PRIME));
    format!("{hash:016x}")
}

/// The shard a report is of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardReport {
    pub index: u32,
    pub count: u32,
    /// The seed this shard drew from (derived from the run's `seed`).
    pub seed: u64,
    /// The agreed start (`--start-at`), RFC 3339, when one was given.
    pub start_at: Option<String>,
    /// When this shard's load began, RFC 3339.
    pub started_at: String,
    /// How long after `start_at` the load began, in seconds (0 when on time or none was set).
    pub late_s: f64,
}

impl ShardReport {
    pub fn spec(&self) -> ShardSpec {
        ShardSpec { index: self.index, count: self.count }
    }
}

/// Calls by target address.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetReport {
    pub address: String,
    /// Connections to it when the run ended.
    pub connections: u64,
    /// Call attempts it carried.
    pub calls: u64,
    pub failed: u64,
}

/// The shard reports a merged report was made from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedFrom {
    pub shards: u32,
    pub files: Vec<String>,
    /// The latest shard's lateness, in seconds.
    pub max_late_s: f64,
}
