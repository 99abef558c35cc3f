//! Measurement utilities shared by every system: latency histograms and the open-loop
//! driver, CPU time and peak memory, throughput over time, and the machine/date/command
//! stamps of a results row.

pub mod latency;
pub mod machine;
pub mod open_loop;
pub mod resources;
pub mod timeline;

pub use latency::{LatencyRecorder, LatencySummary};
pub use open_loop::{Clock, MonotonicClock, OpenLoop, OpenLoopReport, Send};
pub use resources::{CpuTime, Span, Usage};
pub use timeline::Sampler;
