//! CPU time and peak memory of the harness process and of the processes it waited for, read
//! from `getrusage(2)` and `/proc/self/status`. Systems measured in-process wrap a
//! repetition in a [`Span`]; external systems report their own figures or use the
//! children's counters.

use std::time::Instant;

/// CPU seconds spent in user and kernel mode.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CpuTime {
    /// User-mode seconds.
    pub user_s: f64,
    /// Kernel-mode seconds.
    pub system_s: f64,
}

impl CpuTime {
    /// User plus kernel seconds.
    pub fn total(&self) -> f64 {
        self.user_s + self.system_s
    }
}

fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: getrusage only writes the struct we pass; an all-zero rusage is a valid value.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    }
}

fn seconds(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

/// CPU time of this process so far (all threads).
pub fn cpu_self() -> CpuTime {
    let u = rusage(libc::RUSAGE_SELF);
    CpuTime {
        user_s: seconds(u.ru_utime),
        system_s: seconds(u.ru_stime),
    }
}

/// CPU time of all terminated children this process has waited for (and their waited-for
/// descendants).
pub fn cpu_children() -> CpuTime {
    let u = rusage(libc::RUSAGE_CHILDREN);
    CpuTime {
        user_s: seconds(u.ru_utime),
        system_s: seconds(u.ru_stime),
    }
}

/// Largest resident set of any waited-for child, MiB (`ru_maxrss` is KiB on Linux).
pub fn peak_rss_children_mb() -> f64 {
    rusage(libc::RUSAGE_CHILDREN).ru_maxrss as f64 / 1024.0
}

/// This process's peak resident set (`VmHWM`), MiB; `None` where /proc is not available.
pub fn peak_rss_self_mb() -> Option<f64> {
    status_kib("VmHWM:").map(|kib| kib as f64 / 1024.0)
}

/// This process's current resident set (`VmRSS`), MiB.
pub fn rss_self_mb() -> Option<f64> {
    status_kib("VmRSS:").map(|kib| kib as f64 / 1024.0)
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// Resets `VmHWM` to the current resident set (Linux ≥ 4.0: write `5` to
/// `/proc/self/clear_refs`), so the next [`peak_rss_self_mb`] is the peak since now.
/// False if the kernel refused; the peak then covers the whole process life.
pub fn reset_peak_rss_self() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// What one measured stretch of in-process work cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// CPU seconds of this process (all threads) over the span.
    pub cpu_s: f64,
    /// Peak resident set over the span, MiB (the whole process: input held in memory counts).
    pub peak_rss_mb: Option<f64>,
}

/// A stretch of in-process work being measured: started with [`Span::start`], ended with
/// [`Span::finish`].
#[derive(Debug)]
pub struct Span {
    wall: Instant,
    cpu: CpuTime,
    peak_reset: bool,
}

impl Span {
    /// Resets the peak-RSS mark and notes the clocks.
    pub fn start() -> Span {
        let peak_reset = reset_peak_rss_self();
        Span {
            cpu: cpu_self(),
            wall: Instant::now(),
            peak_reset,
        }
    }

    /// Wall, CPU and peak memory since [`Span::start`].
    pub fn finish(self) -> Usage {
        let wall_s = self.wall.elapsed().as_secs_f64();
        let cpu_s = cpu_self().total() - self.cpu.total();
        Usage {
            wall_s,
            cpu_s,
            peak_rss_mb: if self.peak_reset {
                peak_rss_self_mb()
            } else {
                None
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_sees_cpu_work_and_memory_it_touches() {
        let span = Span::start();
        // Touch 64 MiB so the peak must cover it.
        let block = vec![1u8; 64 << 20];
        let mut acc = 0u64;
        for i in (0..block.len()).step_by(4096) {
            acc = acc.wrapping_add(u64::from(block[i]));
        }
        assert_eq!(acc, (64 << 20) / 4096);
        let usage = span.finish();
        assert!(usage.cpu_s > 0.0 && usage.wall_s > 0.0);
        if let Some(peak) = usage.peak_rss_mb {
            assert!(peak >= 64.0, "peak {peak} MiB misses the 64 MiB block");
        }
        drop(block);
    }
}
