//! `streamstorm report merge SHARD.json... [--profile FILE] [--report OUT.json] [--plot OUT.svg]`:
//! shard reports merged into one ([`crate::report::merge`]), judged by the profile's
//! thresholds, printed and written as `simulate` does, with the same exit codes: 0 passed,
//! 1 thresholds failed, 2 invalid input (a shard missing, duplicated, of another run, or
//! corrupt), 3 a file that cannot be written.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{EXIT_INVALID_INPUT, EXIT_THRESHOLDS_FAILED, report_problems};
use crate::config::load::{Threshold, compile_load};
use crate::config::load_profile;
use crate::report::merge::{check_set, merge, read_shards};
use crate::report::{ProfileIdentity, Report, plot, print};

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub command: ReportCommand,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge the reports of every shard of a sharded `simulate` into one, and judge it by
    /// the profile's thresholds (exit 1 when they fail).
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard reports (`simulate --shard I/N --report FILE.json`), every shard once.
    #[arg(required = true, value_name = "SHARD.json")]
    pub shards: Vec<PathBuf>,
    /// The profile whose thresholds judge the merged run [default: the profile the shards
    /// name, when it is found unchanged at that path].
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Write the merged report as JSON here.
    #[arg(long, value_name = "OUT.json")]
    pub report: Option<PathBuf>,
    /// Write the merged latency-over-time plot (SVG) here.
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,
}

pub(super) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ReportCommand::Merge(args) => merge_reports(&args),
    }
}

fn refuse(why: impl std::fmt::Display) -> anyhow::Result<ExitCode> {
    eprintln!("error: {why}");
    Ok(ExitCode::from(EXIT_INVALID_INPUT))
}

fn merge_reports(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let shards = match read_shards(&args.shards) {
        Ok(shards) => shards,
        Err(error) => return refuse(error),
    };
    let given = match &args.profile {
        Some(path) => match ProfileIdentity::of_file(path) {
            Ok(identity) => Some((path.clone(), identity)),
            Err(error) => return refuse(format!("{}: {error}", path.display())),
        },
        None => None,
    };
    if let Err(error) = check_set(&shards, given.as_ref().map(|(_, identity)| identity)) {
        return refuse(error);
    }
    let recorded = &shards[0].view.profile;
    let profile_path = given.map(|(path, _)| path).or_else(|| {
        let path = PathBuf::from(&recorded.path);
        ProfileIdentity::of_file(&path).is_ok_and(|found| found.digest == recorded.digest).then_some(path)
    });
    let thresholds = match &profile_path {
        Some(path) => match profile_thresholds(path) {
            Ok(thresholds) => thresholds,
            Err(problems) => return Ok(report_problems(&problems)),
        },
        None => {
            eprintln!("note: {} is not found unchanged; pass --profile to judge thresholds", recorded.path);
            Vec::new()
        }
    };
    let report = match merge(&shards, &thresholds) {
        Ok(report) => report,
        Err(error) => return refuse(error),
    };
    let title =
        format!("streamstorm report merge of {} shards: latency, throughput and errors", shards.len());
    print_and_write(&report, args.report.as_deref(), args.plot.as_deref(), &title)
}

fn profile_thresholds(path: &Path) -> Result<Vec<Threshold>, crate::diagnostic::Problems> {
    let profile = load_profile(path)?;
    Ok(compile_load(&profile)?.thresholds)
}

/// Prints `report`, writes it (JSON) and its plot (SVG) where asked, and turns its verdict
/// into the exit code — for `simulate` and `report merge` alike.
pub(super) fn print_and_write(
    report: &Report,
    json: Option<&Path>,
    svg: Option<&Path>,
    title: &str,
) -> anyhow::Result<ExitCode> {
    println!("{}", print::summary(report));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(report).context("cannot encode the report")?;
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    if let Some(path) = svg {
        std::fs::write(
            path,
            plot::latency_svg(&report.timeline, &report.phases, report.load_duration_s, title),
        )
        .with_context(|| format!("cannot write the plot to {}", path.display()))?;
        println!("plot written to {}", path.display());
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_THRESHOLDS_FAILED) })
}
