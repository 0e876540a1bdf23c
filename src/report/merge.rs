//! `report merge`: shard reports made one. The set is checked first — one profile, one seed,
//! one shard count, every shard exactly once — and refused with the files named when it is
//! not. Then counts are summed exactly, the serialized histograms added (so percentiles are
//! those of one histogram fed every shard's samples), timelines aligned on wall-clock
//! intervals and phases by occurrence ([`super::merge_timeline`]); the thresholds are judged
//! on the merged data by the same code as `simulate`'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::merge_timeline::{merge_phases, merge_timeline};
use super::scale::{MergedFrom, ProfileIdentity, ShardReport, TargetReport};
use super::{PhaseReport, Report, ReportInputs, ScenarioIdentity, ScenarioReport, TimelinePoint};
use crate::client::stats::Counts;
use crate::client::{DisconnectKind, ScenarioStats};
use crate::config::load::Threshold;
use crate::proto::status::code_from_name;

/// Why shard reports cannot be merged (all are input errors: exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{file}: {why}")]
    Unreadable { file: String, why: String },
    #[error("{file}: {field}: {why}")]
    Corrupt { file: String, field: String, why: String },
    #[error("{0}")]
    Refused(String),
}

/// What `report merge` reads of a shard report.
#[derive(Debug, Clone, Deserialize)]
pub struct ShardView {
    pub duration_s: f64,
    pub load_duration_s: f64,
    pub interrupted: bool,
    pub target: String,
    pub seed: u64,
    pub profile: ProfileIdentity,
    pub shard: Option<ShardReport>,
    pub targets: Vec<TargetReport>,
    pub scenarios: Vec<ScenarioReport>,
    pub timeline: Vec<TimelinePoint>,
    pub phases: Vec<PhaseReport>,
}

/// One shard report and where it came from.
#[derive(Debug, Clone)]
pub struct ShardFile {
    pub path: PathBuf,
    pub view: ShardView,
}

impl ShardFile {
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn shard(&self) -> Result<&ShardReport, MergeError> {
        self.view
            .shard
            .as_ref()
            .ok_or_else(|| MergeError::Refused(format!("{} is not a shard report", self.name())))
    }

    fn corrupt(&self, field: String, why: String) -> MergeError {
        MergeError::Corrupt { file: self.name(), field, why }
    }
}

/// Reads every report in `paths`.
pub fn read_shards(paths: &[PathBuf]) -> Result<Vec<ShardFile>, MergeError> {
    paths.iter().map(|path| read_shard(path)).collect()
}

fn read_shard(path: &Path) -> Result<ShardFile, MergeError> {
    let unreadable = |why: String| MergeError::Unreadable { file: path.display().to_string(), why };
    let text = std::fs::read_to_string(path).map_err(|error| unreadable(error.to_string()))?;
    let view = serde_json::from_str(&text)
        .map_err(|error| unreadable(format!("not a streamstorm report: {error} (line {})", error.line())))?;
    Ok(ShardFile { path: path.to_owned(), view })
}

/// Refuses a set that is not every shard of one run exactly once, naming the files.
pub fn check_set(shards: &[ShardFile], profile: Option<&ProfileIdentity>) -> Result<(), MergeError> {
    let first = shards.first().ok_or_else(|| MergeError::Refused("no shard reports given".to_owned()))?;
    let count = first.shard()?.count;
    for shard in shards {
        let info = shard.shard()?;
        let differs = |what: &str, theirs: String, ours: String| {
            MergeError::Refused(format!(
                "{} has {what} {theirs}, but {} has {ours}: shards of different runs",
                shard.name(),
                first.name()
            ))
        };
        if shard.view.profile.digest != first.view.profile.digest {
            return Err(differs("profile", describe(&shard.view.profile), describe(&first.view.profile)));
        }
        if shard.view.seed != first.view.seed {
            return Err(differs("seed", shard.view.seed.to_string(), first.view.seed.to_string()));
        }
        if info.count != count {
            return Err(differs("shard count", info.count.to_string(), count.to_string()));
        }
    }
    if let Some(profile) = profile.filter(|profile| profile.digest != first.view.profile.digest) {
        return Err(MergeError::Refused(format!(
            "the shards ran profile {}, not {} given with --profile",
            describe(&first.view.profile),
            describe(profile)
        )));
    }
    let mut by_index: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for shard in shards {
        by_index.entry(shard.shard()?.index).or_default().push(shard.name());
    }
    if let Some((index, files)) = by_index.iter().find(|(_, files)| files.len() > 1) {
        return Err(MergeError::Refused(format!(
            "shard {index}/{count} is given twice: {}",
            files.join(", ")
        )));
    }
    let missing: Vec<String> = (0..count)
        .filter(|index| !by_index.contains_key(index))
        .map(|index| format!("{index}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Refused(format!("shard {} missing from the set", missing.join(", "))));
    }
    Ok(())
}

fn describe(profile: &ProfileIdentity) -> String {
    format!("{} (digest {})", profile.path, profile.digest)
}

/// The merged report of a checked set, judged by `thresholds`.
pub fn merge(shards: &[ShardFile], thresholds: &[Threshold]) -> Result<Report, MergeError> {
    let first = &shards[0];
    let mut identities: Vec<ScenarioIdentity> = first
        .view
        .scenarios
        .iter()
        .map(|scenario| ScenarioIdentity {
            method: scenario.method.clone(),
            kind: scenario.kind.clone(),
            slots: 0,
        })
        .collect();
    let mut stats: Vec<ScenarioStats> = vec![ScenarioStats::default(); identities.len()];
    for shard in shards {
        if shard.view.scenarios.len() != identities.len() {
            let why = format!(
                "{} scenarios where {} has {}",
                shard.view.scenarios.len(),
                first.name(),
                identities.len()
            );
            return Err(shard.corrupt("scenarios".to_owned(), why));
        }
        for (index, scenario) in shard.view.scenarios.iter().enumerate() {
            let field = format!("scenarios[{index}]");
            if scenario.method != identities[index].method {
                return Err(shard.corrupt(
                    format!("{field}.method"),
                    format!("{} where shards have {}", scenario.method, identities[index].method),
                ));
            }
            identities[index].slots += scenario.slots;
            let counts = counts_of(scenario).map_err(|why| shard.corrupt(field.clone(), why))?;
            let histograms = scenario
                .histograms
                .decode_all()
                .map_err(|(name, why)| shard.corrupt(format!("{field}.histograms.{name}"), why))?;
            stats[index].merge(&ScenarioStats::from_parts(counts, histograms));
        }
    }
    let elapsed = shards.iter().map(|shard| shard.view.duration_s).fold(0.0, f64::max);
    let planned = shards.iter().map(|shard| shard.view.load_duration_s).fold(0.0, f64::max);
    let timeline = merge_timeline(shards)?;
    let phases = merge_phases(shards)?;
    let mut targets: BTreeMap<String, TargetReport> = BTreeMap::new();
    for row in shards.iter().flat_map(|shard| &shard.view.targets) {
        let merged = targets.entry(row.address.clone()).or_insert_with(|| TargetReport {
            calls: 0,
            failed: 0,
            connections: 0,
            ..row.clone()
        });
        merged.connections += row.connections;
        merged.calls += row.calls;
        merged.failed += row.failed;
    }
    let mut target_names: Vec<&str> = shards.iter().map(|shard| shard.view.target.as_str()).collect();
    target_names.sort_unstable();
    target_names.dedup();
    let merged_from = MergedFrom {
        shards: first.view.shard.as_ref().map_or(1, |shard| shard.count),
        files: shards.iter().map(ShardFile::name).collect(),
        max_late_s: shards
            .iter()
            .filter_map(|shard| shard.view.shard.as_ref())
            .map(|shard| shard.late_s)
            .fold(0.0, f64::max),
    };
    Ok(Report::build(ReportInputs {
        scenarios: &identities,
        stats: &stats,
        elapsed: Duration::from_secs_f64(elapsed.max(0.0)),
        planned: Duration::from_secs_f64(planned.max(0.0)),
        interrupted: shards.iter().any(|shard| shard.view.interrupted),
        target: target_names.join(", "),
        seed: first.view.seed,
        faults: None,
        thresholds,
        peers: None,
        timeline,
        phases,
        profile: first.view.profile.clone(),
        shard: None,
        merged_from: Some(merged_from),
        targets: targets.into_values().collect(),
    }))
}

/// A scenario's counts read back from its report.
fn counts_of(scenario: &ScenarioReport) -> Result<Counts, String> {
    let mut counts = Counts {
        calls_started: scenario.streams.opened,
        calls_completed: scenario.streams.completed,
        calls_failed: scenario.streams.failed,
        calls_cut_at_end: scenario.streams.cut_at_end,
        given_up: scenario.streams.given_up,
        messages_sent: scenario.messages.sent,
        messages_received: scenario.messages.received,
        missed_messages: scenario.messages.missed,
        messages_unread: scenario.messages.unread_by_server,
        reconnects: scenario.reconnects,
        ..Counts::default()
    };
    for (name, count) in &scenario.errors {
        let code = code_from_name(name).ok_or_else(|| format!("errors: unknown status code {name:?}"))?;
        counts.errors[code as usize] += count;
    }
    for (name, count) in &scenario.disconnects {
        let kind = DisconnectKind::ALL
            .iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| format!("disconnects: unknown kind {name:?}"))?;
        counts.disconnects[*kind as usize] += count;
    }
    Ok(counts)
}
