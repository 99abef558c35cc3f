//! One workload input, in every form a system may ask for: events in memory (for in-process
//! systems and the reference answers) and files on disk (for peers and HTTP drivers), all
//! from the same [`SourceSpec`], so every system sees the same events.
//!
//! Files are generated once into a cache directory named after the spec and layout and
//! reused while their manifest matches (generation is deterministic). Events in memory are
//! generated on first use and shared by every workload of the run.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use indicatif::ProgressBar;
use sluice_gen::nexmark::{NexmarkEvent, NexmarkGenerator};
use sluice_gen::scenarios::payments::{Alert, FraudRules, Payment, PaymentsGenerator};

use crate::BenchError;
use crate::generate::write::{self, Manifest, WriteOptions};
use crate::generate::{SourceKind, SourceSpec};

/// Payments held in memory with the alerts their injected patterns must raise.
#[derive(Debug)]
pub struct PaymentsData {
    /// Payments in emission order.
    pub payments: Vec<Payment>,
    /// Ground truth from the generator.
    pub expected: Vec<Alert>,
    /// The thresholds the stream was built around.
    pub rules: FraudRules,
}

/// The input of one run.
#[derive(Debug)]
pub struct Dataset {
    spec: SourceSpec,
    cache_dir: PathBuf,
    nexmark: OnceLock<Arc<Vec<NexmarkEvent>>>,
    payments: OnceLock<Arc<PaymentsData>>,
}

impl Dataset {
    /// The data of `spec`; files go under `cache_dir`.
    pub fn new(spec: SourceSpec, cache_dir: impl Into<PathBuf>) -> Self {
        Dataset {
            spec,
            cache_dir: cache_dir.into(),
            nexmark: OnceLock::new(),
            payments: OnceLock::new(),
        }
    }

    /// What generates it.
    pub fn spec(&self) -> &SourceSpec {
        &self.spec
    }

    /// Number of events.
    pub fn len(&self) -> Result<u64, BenchError> {
        Ok(self.spec.len()?)
    }

    /// True if there are no events.
    pub fn is_empty(&self) -> Result<bool, BenchError> {
        Ok(self.len()? == 0)
    }

    /// The Nexmark events in stream order (generated on first call).
    pub fn nexmark_events(&self) -> Result<Arc<Vec<NexmarkEvent>>, BenchError> {
        if let Some(events) = self.nexmark.get() {
            return Ok(Arc::clone(events));
        }
        let SourceSpec::Nexmark(config) = &self.spec else {
            return Err(self.wrong_source(SourceKind::Nexmark));
        };
        let mut generators = NexmarkGenerator::all(config.clone())?;
        let mut events = Vec::with_capacity(config.max_events() as usize);
        // Same interleaving as the files (generate::source): position by position.
        loop {
            let before = events.len();
            for g in &mut generators {
                events.extend(g.next());
            }
            if events.len() == before {
                break;
            }
        }
        Ok(Arc::clone(self.nexmark.get_or_init(|| Arc::new(events))))
    }

    /// The payments and their ground truth (generated on first call).
    pub fn payments(&self) -> Result<Arc<PaymentsData>, BenchError> {
        if let Some(data) = self.payments.get() {
            return Ok(Arc::clone(data));
        }
        let SourceSpec::Payments(config) = &self.spec else {
            return Err(self.wrong_source(SourceKind::Payments));
        };
        let generator = PaymentsGenerator::new(config.clone())?;
        let expected = generator.expected_alerts().to_vec();
        let data = PaymentsData {
            payments: generator.collect(),
            expected,
            rules: config.rules.clone(),
        };
        Ok(Arc::clone(self.payments.get_or_init(|| Arc::new(data))))
    }

    /// Directory the files of `options` live in.
    pub fn dir_for(&self, options: &WriteOptions) -> PathBuf {
        let id = format!("{} {options:?}", self.spec.describe());
        let events = self.spec.len().unwrap_or(0);
        self.cache_dir.join(format!(
            "{}-{events}-{:016x}-{}x{}",
            self.spec.kind(),
            fnv1a(id.as_bytes()),
            options.parts,
            options.format.extension()
        ))
    }

    /// The data as files laid out per `options`: reused if already generated, otherwise
    /// written now (advancing `progress`).
    pub fn files(
        &self,
        options: &WriteOptions,
        progress: &ProgressBar,
    ) -> Result<(PathBuf, Manifest), BenchError> {
        let dir = self.dir_for(options);
        if let Some(manifest) = write::existing(&dir, &self.spec, options) {
            return Ok((dir, manifest));
        }
        let manifest = write::write_dataset(&self.spec, options, &dir, progress)?;
        Ok((dir, manifest))
    }

    fn wrong_source(&self, wanted: SourceKind) -> BenchError {
        BenchError::usage(
            "workload",
            format!(
                "needs {wanted} events but the dataset is {}",
                self.spec.kind()
            ),
            "pair each workload with its own source (Workload::source)",
        )
    }
}

/// FNV-1a, 64 bit: a stable name for a spec (std's hashers may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The default cache directory for generated data: `$XDG_CACHE_HOME/sluice-bench/data`
/// or `$HOME/.cache/sluice-bench/data`, else the system temp dir.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("sluice-bench").join("data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::write::Format;
    use sluice_gen::RecordBuf;
    use sluice_gen::nexmark::NexmarkConfig;

    #[test]
    fn events_in_memory_are_the_records_of_the_files_in_the_same_order() {
        let spec = SourceSpec::Nexmark(NexmarkConfig {
            num_events: 2_000,
            num_generators: 3,
            ..NexmarkConfig::default()
        });
        let data = Dataset::new(spec.clone(), std::env::temp_dir());
        let events = data.nexmark_events().unwrap();
        let mut stream = spec.stream().unwrap();
        let mut rec = RecordBuf::default();
        for e in events.iter() {
            assert!(stream.next_record(&mut rec).unwrap());
            let mut want = RecordBuf::default();
            want.fill(e).unwrap();
            assert_eq!(rec, want);
        }
        assert!(!stream.next_record(&mut rec).unwrap());
        let a = data.dir_for(&WriteOptions {
            format: Format::Ndjson,
            parts: 2,
            batch: 10,
        });
        let b = data.dir_for(&WriteOptions {
            format: Format::Ndjson,
            parts: 1,
            batch: 10,
        });
        assert_ne!(a, b);
    }
}
