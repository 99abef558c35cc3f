//! `sluice-bench`: the benchmark harness. It generates the input (`generate`), runs
//! workloads through systems and records what they did (`run`), and turns the records into
//! Markdown and SVG (`report`).
//!
//! Map:
//! - [`generate`]: generator knobs, record streams, files on disk (NDJSON, MessagePack);
//! - [`dataset`]: one run's input in memory and on disk, cached;
//! - [`workload`]: the Nexmark queries and scenarios by name;
//! - [`system`]: the [`system::System`] seam and the `reference` and `flink` systems;
//! - [`check`]: expected answers and the comparison that gates every throughput figure;
//! - [`measure`]: latency (HdrHistogram, open-loop driver), CPU and memory, throughput
//!   over time, machine and date stamps;
//! - [`run`]: warm-up, repetitions, medians → [`results::Row`]s;
//! - [`results`]: the results file; [`report`]: Markdown and plots.
//!
//! Nothing here depends on the engine; systems that run it plug in through
//! [`system::System`].

pub mod check;
pub mod dataset;
pub mod error;
pub mod generate;
pub mod measure;
pub mod report;
pub mod results;
pub mod run;
pub mod system;
pub mod workload;

pub use error::BenchError;
