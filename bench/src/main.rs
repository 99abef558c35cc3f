//! The `sluice-bench` command line: `generate`, `run`, `report`. Flags map onto the library
//! (see lib.rs); errors are reported through `anyhow` here and only here.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use mimalloc::MiMalloc;

use sluice_bench::dataset::default_cache_dir;
use sluice_bench::generate::write::{DEFAULT_BATCH, write_dataset};
use sluice_bench::generate::{DataArgs, Format, SourceKind, WriteOptions};
use sluice_bench::measure::machine::command_line;
use sluice_bench::run::{RunPlan, run};
use sluice_bench::system::{Load, SystemSettings, by_name};
use sluice_bench::workload::Workload;
use sluice_bench::{report, results};

/// The `sluice` binary's allocator, set up as it does (`main`): the engine runs in this
/// process.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Events in a `--quick` run unless `--events` says otherwise.
const QUICK_EVENTS: u64 = 20_000;

#[derive(Debug, Parser)]
#[command(
    name = "sluice-bench",
    version,
    about = "Sluice benchmark harness: generate data, run workloads, report results"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a deterministic, seeded event stream to files (NDJSON or MessagePack).
    Generate(GenerateArgs),
    /// Run workloads through systems; merge the results into the results file.
    Run(RunArgs),
    /// Turn the results file into Markdown tables and SVG plots.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// The generator.
    #[arg(value_enum)]
    source: SourceKind,
    /// Directory to write part files and `_manifest.json` into.
    #[arg(long)]
    out: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = Format::Ndjson)]
    format: Format,
    /// Part files; records are dealt round-robin.
    #[arg(long, default_value_t = 1)]
    parts: u32,
    /// Records per MessagePack frame (one ingest request).
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch: usize,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Systems, comma-separated: sluice, sluice-http, sluice-http-json, native, reference,
    /// flink.
    #[arg(long, default_value = "reference")]
    system: String,
    /// Workloads, comma-separated: q0,q1,q2,q5,q7,q8,q11, fraud-rules, surge-pricing,
    /// sales-rollup, sessionize, viewers, leaderboard, or the groups nexmark, scenarios, all.
    #[arg(long, default_value = "nexmark")]
    workload: String,
    /// Shards (engine threads) or parallelism (Flink) [default: the machine's cores];
    /// several, comma-separated (`1,2`), alternate their repetitions and give a row each.
    #[arg(long, value_delimiter = ',')]
    shards: Vec<u32>,
    /// Untimed repetitions before the timed ones [default: 1; 0 with --quick].
    #[arg(long)]
    warmup: Option<u32>,
    /// Timed repetitions; results are their median [default: 3; 1 with --quick].
    #[arg(long)]
    repetitions: Option<u32>,
    /// Open loop at this many events/s (latency from intended send times) instead of closed loop.
    #[arg(long)]
    open_loop_rate: Option<f64>,
    /// Events per send in an open-loop run.
    #[arg(long, default_value_t = 1_000)]
    send_batch: u64,
    /// Smoke run in seconds: 20000 events, no warm-up, one repetition.
    #[arg(long)]
    quick: bool,
    /// Results file to merge rows into.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results/latest.json"))]
    results: PathBuf,
    /// Do not write the results file (print the rows instead).
    #[arg(long)]
    no_save: bool,
    /// Cache directory for generated input files [default: ~/.cache/sluice-bench/data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Flink runner script [default: bench/peers/flink/run.sh, or $SLUICE_FLINK_RUNNER].
    #[arg(long)]
    flink_runner: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
    /// Source topic partitions per shard of the sluice system.
    #[arg(long, default_value_t = 2, conflicts_with = "partitions")]
    partitions_per_shard: u32,
    /// Source topic partitions of the sluice system whatever the shard count, as when one
    /// topic is given more cores (instead of --partitions-per-shard; such rows get their
    /// own label).
    #[arg(long)]
    partitions: Option<u32>,
    /// Checkpoint interval of the sluice system's jobs, ms (10..=3600000).
    #[arg(long, default_value_t = sluice_bench::system::sluice::CHECKPOINT_INTERVAL_MS)]
    checkpoint_interval_ms: u64,
    /// Client threads of the sluice http modes.
    #[arg(long, default_value_t = sluice_bench::system::sluice::http::DEFAULT_CLIENTS)]
    http_clients: usize,
    /// Where the in-process sluice jobs' results go: `topic` (appended to an output topic
    /// and checked record by record) or `discard` (counted and dropped, like the blackhole
    /// sinks of Flink's Nexmark runs; checked by count).
    #[arg(long, default_value = "topic")]
    sink: sluice_bench::system::sluice::Sink,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// Results file to read.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results/latest.json"))]
    results: PathBuf,
    /// Directory of RESULTS.md (its sluice-bench region is replaced) and results/plots/.
    #[arg(long, default_value = env!("CARGO_MANIFEST_DIR"))]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    sluice::alloc::keep_freed_memory();
    let cli = Cli::parse();
    match cli.command {
        Command::Generate(args) => generate(args),
        Command::Run(args) => run_cmd(args),
        Command::Report(args) => {
            let written = report::write_report(&args.results, &args.out)?;
            eprintln!("wrote {}", written.markdown.display());
            for p in written.plots {
                eprintln!("wrote {}", p.display());
            }
            Ok(())
        }
    }
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let spec = args.data.spec(args.source)?;
    let options = WriteOptions {
        format: args.format,
        parts: args.parts,
        batch: args.batch,
    };
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "{wide_bar} {human_pos}/{human_len} events, {per_sec}, eta {eta}",
    ) {
        bar.set_style(style);
    }
    let manifest = write_dataset(&spec, &options, &args.out, &bar)
        .with_context(|| format!("generating {} into {}", args.source, args.out.display()))?;
    bar.finish_and_clear();
    let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    eprintln!(
        "wrote {} {} records ({:.1} MiB) in {} part file(s) to {}",
        manifest.records,
        args.source,
        bytes as f64 / (1024.0 * 1024.0),
        manifest.files.len(),
        args.out.display()
    );
    Ok(())
}

fn run_cmd(args: RunArgs) -> anyhow::Result<()> {
    let mut data = args.data.clone();
    if args.quick && data.events.is_none() {
        data.events = Some(QUICK_EVENTS);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let load = match args.open_loop_rate {
        None => Load::Closed,
        Some(rate) => Load::Open {
            rate,
            batch: args.send_batch,
        },
    };
    let plan = RunPlan {
        workloads: Workload::parse_list(&args.workload)?,
        data,
        shards: if args.shards.is_empty() {
            vec![cores]
        } else {
            args.shards.clone()
        },
        load,
        warmup: args.warmup.unwrap_or(if args.quick { 0 } else { 1 }),
        repetitions: args.repetitions.unwrap_or(if args.quick { 1 } else { 3 }),
        cache_dir: args.data_dir.clone().unwrap_or_else(default_cache_dir),
        command: command_line(&std::env::args().collect::<Vec<_>>()),
        quiet: args.quiet,
    };
    let settings = SystemSettings {
        flink_runner: args.flink_runner.clone(),
        partitions_per_shard: args.partitions_per_shard,
        partitions: args.partitions,
        checkpoint_interval_ms: args.checkpoint_interval_ms,
        http_clients: args.http_clients,
        sink: args.sink,
    };
    let mut systems = args
        .system
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| by_name(name, &settings))
        .collect::<Result<Vec<_>, _>>()?;
    if systems.is_empty() {
        bail!("--system names no system; use e.g. --system reference,flink");
    }
    let summary = run(&plan, &mut systems, |row| {
        if args.no_save {
            println!("{}", serde_json::to_string(row).unwrap_or_default());
            Ok(())
        } else {
            results::merge_into(&args.results, std::slice::from_ref(row)).map(|_| ())
        }
    })?;
    for (workload, system, reason) in &summary.skipped {
        eprintln!("skipped {workload} on {system}: {reason}");
    }
    if !args.no_save {
        eprintln!(
            "{} row(s) merged into {}; `sluice-bench report` renders them",
            summary.rows.len(),
            args.results.display()
        );
    }
    if summary.wrong > 0 {
        bail!(
            "{} result(s) did not match the reference answer; their throughput is withheld (see the `note` of rows with \"correct\": false)",
            summary.wrong
        );
    }
    Ok(())
}
