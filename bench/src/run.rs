//! The `run` subcommand's engine: every requested workload through every requested system,
//! with warm-up and repetitions, turned into results rows (the median repetition by wall
//! time). A wrong answer keeps its row, marked `correct: false`, with no throughput.
//!
//! Datasets are built once per source and shared by the workloads that read it, so every
//! system and workload of a run sees the same events.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use crate::BenchError;
use crate::dataset::Dataset;
use crate::generate::{DataArgs, SourceKind};
use crate::measure::machine;
use crate::results::Row;
use crate::system::{Job, Load, Sample, System};
use crate::workload::Workload;

/// Largest accepted repetitions or warm-ups.
pub const MAX_REPETITIONS: u32 = 1_000;
/// Largest accepted shard count.
pub const MAX_SHARDS: u32 = 1_024;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// Workloads, in order.
    pub workloads: Vec<Workload>,
    /// Generator knobs (each workload uses its own source with these knobs).
    pub data: DataArgs,
    /// Shards or parallelism. With several, the repetitions of each (workload, system)
    /// alternate between them (one row each), so that drift on a shared machine reaches
    /// every shard count alike and their ratio is fair.
    pub shards: Vec<u32>,
    /// Closed or open loop.
    pub load: Load,
    /// Untimed repetitions per (workload, system).
    pub warmup: u32,
    /// Timed repetitions per (workload, system); the row is their median.
    pub repetitions: u32,
    /// Where generated files are cached.
    pub cache_dir: PathBuf,
    /// The command line, recorded in every row.
    pub command: String,
    /// Hide progress bars (tests, non-interactive runs).
    pub quiet: bool,
}

impl RunPlan {
    /// Checks the bounds; the error names the flag.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.repetitions == 0 || self.repetitions > MAX_REPETITIONS {
            return Err(BenchError::usage(
                "--repetitions",
                format!("is {}", self.repetitions),
                format!("use 1..={MAX_REPETITIONS}"),
            ));
        }
        if self.warmup > MAX_REPETITIONS {
            return Err(BenchError::usage(
                "--warmup",
                format!("is {}", self.warmup),
                format!("use 0..={MAX_REPETITIONS}"),
            ));
        }
        if self.shards.is_empty() {
            return Err(BenchError::usage(
                "--shards",
                "is empty",
                "give one or more shard counts, comma-separated",
            ));
        }
        for (i, &n) in self.shards.iter().enumerate() {
            if n == 0 || n > MAX_SHARDS {
                return Err(BenchError::usage(
                    "--shards",
                    format!("has {n}"),
                    format!("use 1..={MAX_SHARDS}"),
                ));
            }
            if self.shards[..i].contains(&n) {
                return Err(BenchError::usage(
                    "--shards",
                    format!("names {n} twice"),
                    "give each shard count once",
                ));
            }
        }
        Ok(())
    }
}

/// What a run did besides its rows.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// Every row produced, in order.
    pub rows: Vec<Row>,
    /// `(workload, system, reason)` of combinations not run.
    pub skipped: Vec<(String, String, String)>,
    /// Rows whose answer was wrong.
    pub wrong: usize,
}

/// Runs `plan` on `systems`, calling `on_row` as each row is ready (so callers can save
/// progressively). Stops at the first system failure.
pub fn run(
    plan: &RunPlan,
    systems: &mut [Box<dyn System>],
    mut on_row: impl FnMut(&Row) -> Result<(), BenchError>,
) -> Result<RunSummary, BenchError> {
    plan.validate()?;
    let machine = machine::machine();
    let mut datasets: HashMap<SourceKind, Dataset> = HashMap::new();
    let mut summary = RunSummary::default();
    for (i, &workload) in plan.workloads.iter().enumerate() {
        let kind = workload.source();
        // Free the previous source's events once no later workload reads them.
        datasets.retain(|k, _| *k == kind || plan.workloads[i..].iter().any(|w| w.source() == *k));
        let data = match datasets.entry(kind) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                e.insert(Dataset::new(plan.data.spec(kind)?, plan.cache_dir.clone()))
            }
        };
        let data = &*data;
        for system in systems.iter_mut() {
            if let Err(reason) = system.supports(workload, &plan.load) {
                summary
                    .skipped
                    .push((workload.to_string(), system.name().to_string(), reason));
                continue;
            }
            let progress = progress_bar(plan.quiet, system.name());
            let job = Job::new(
                workload,
                data,
                plan.shards[0],
                plan.load,
                plan.warmup,
                plan.repetitions,
                &progress,
            );
            let jobs: Vec<Job<'_>> = plan
                .shards
                .iter()
                .map(|&n| job.with(n, plan.warmup, plan.repetitions))
                .collect();
            let samples = if let [only] = &jobs[..] {
                vec![system.run(only)?]
            } else {
                interleaved(system.as_mut(), &job, plan)?
            };
            for (job, samples) in jobs.iter().zip(&samples) {
                let row = to_row(system.as_ref(), plan, job, samples, &machine)?;
                progress.println(describe(&row));
                if row.correct == Some(false) {
                    summary.wrong += 1;
                }
                on_row(&row)?;
                summary.rows.push(row);
            }
            progress.finish_and_clear();
        }
    }
    Ok(summary)
}

/// The timed samples of each of `plan.shards` for `job`: rounds of one repetition per
/// shard count, in order, the first `plan.warmup` rounds untimed.
fn interleaved(
    system: &mut dyn System,
    job: &Job<'_>,
    plan: &RunPlan,
) -> Result<Vec<Vec<Sample>>, BenchError> {
    // One job per shard count for every round: each computes the reference answer once
    // (the first shares it with the rest once it has it).
    let mut jobs: Vec<Job<'_>> = Vec::with_capacity(plan.shards.len());
    let mut samples: Vec<Vec<Sample>> = plan.shards.iter().map(|_| Vec::new()).collect();
    for round in 0..plan.warmup + plan.repetitions {
        for (k, &shards) in plan.shards.iter().enumerate() {
            if jobs.len() == k {
                let from = jobs.first().unwrap_or(job);
                jobs.push(from.with(shards, 0, 1));
            }
            let mut got = system.run(&jobs[k])?;
            if round >= plan.warmup {
                samples[k].append(&mut got);
            }
        }
    }
    Ok(samples)
}

fn progress_bar(quiet: bool, system: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0).with_prefix(system.to_string());
    let style = ProgressStyle::with_template(
        "{spinner} {prefix:>9} {wide_msg} [{bar:20}] {human_pos}/{human_len} {elapsed}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style.progress_chars("=> "));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

fn describe(row: &Row) -> String {
    let verdict = match row.correct {
        Some(true) => "correct",
        Some(false) => "WRONG",
        None => "unchecked",
    };
    match row.events_per_s {
        Some(eps) => format!(
            "{}: {:.0} events/s ({} events, median {:.3} s, {verdict})",
            row.workload,
            eps,
            row.events,
            row.wall_s.unwrap_or(0.0)
        ),
        None => format!("{}: {verdict}, no throughput reported", row.workload),
    }
}

/// `250 K`, `1.5 M`: an offered rate in a mode label (so rows at different rates differ).
fn rate_label(rate: f64) -> String {
    if rate >= 1e6 {
        let m = format!("{:.3}", rate / 1e6);
        format!("{} M", m.trim_end_matches('0').trim_end_matches('.'))
    } else if rate >= 1e3 {
        format!("{} K", (rate / 1e3).round())
    } else {
        format!("{}", rate.round())
    }
}

/// The row of one (workload, system): the median repetition by wall time.
fn to_row(
    system: &dyn System,
    plan: &RunPlan,
    job: &Job<'_>,
    samples: &[Sample],
    machine: &str,
) -> Result<Row, BenchError> {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    let Some(median) = sorted.get(sorted.len().saturating_sub(1) / 2).copied() else {
        return Err(BenchError::SystemFailed {
            system: system.name().into(),
            workload: job.workload.to_string(),
            message: "returned no timed repetition".into(),
        });
    };
    let wrong = samples.iter().find(|s| s.verdict.correct == Some(false));
    let correct = if wrong.is_some() {
        Some(false)
    } else if samples.iter().all(|s| s.verdict.correct == Some(true)) {
        Some(true)
    } else {
        None
    };
    let note = match (wrong, &median.verdict.detail) {
        (Some(w), _) => Some(format!(
            "wrong answer, throughput withheld: {}",
            w.verdict.detail.clone().unwrap_or_default()
        )),
        (None, Some(detail)) => Some(format!("not checked: {detail}")),
        (None, None) => None,
    };
    let ok = correct != Some(false);
    let events = median.events;
    let per_core = median.cpu_s.filter(|c| *c > 0.0).map(|c| events as f64 / c);
    let latency = median.latency.as_ref();
    Ok(Row {
        workload: job.workload.to_string(),
        system: system.name().to_string(),
        mode: match plan.load {
            Load::Closed => system.mode().to_string(),
            Load::Open { rate, .. } => format!("{} @ {}/s", system.mode(), rate_label(rate)),
        },
        shards: system.shards(job.shards),
        events,
        wall_s: Some(median.wall_s),
        events_per_s: ok.then(|| events as f64 / median.wall_s),
        events_per_s_per_core: per_core.filter(|_| ok),
        p50_ms: latency.map(|l| l.p50_ms),
        p99_ms: latency.map(|l| l.p99_ms),
        p999_ms: latency.map(|l| l.p999_ms),
        peak_rss_mb: median.peak_rss_mb,
        correct,
        command: plan.command.clone(),
        machine: machine.to_string(),
        date: machine::now_iso(),
        cpu_s: median.cpu_s,
        startup_s: median.startup_s,
        overhead_s: median.overhead_s,
        result_rows: Some(median.verdict.rows),
        repetitions: Some(samples.len() as u32),
        latency_cdf: latency.map(|l| l.cdf.clone()),
        timeline: (!median.timeline.is_empty()).then(|| median.timeline.clone()),
        measures: Some(system.measures(&plan.load)),
        note,
    })
}
