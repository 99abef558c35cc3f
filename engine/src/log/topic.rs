//! A topic: its persisted settings (`topic.json`) and its partitions. Created and loaded by
//! `Log`; the partitions are independent of one another.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Shared;
use super::config::TopicConfig;
use super::error::LogError;
use super::fsio;
use super::partition::Partition;

/// File holding a topic's settings, in its directory.
pub const TOPIC_FILE: &str = "topic.json";

/// A topic and its partitions.
pub struct Topic {
    config: TopicConfig,
    dir: PathBuf,
    partitions: Vec<Arc<Partition>>,
}

impl Topic {
    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Its settings.
    pub fn config(&self) -> &TopicConfig {
        &self.config
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Partition `p`. Panics if `p >= config().partitions` (a routing bug); use
    /// [`Topic::get_partition`] for indexes that come from outside.
    pub fn partition(&self, p: u32) -> &Arc<Partition> {
        &self.partitions[p as usize]
    }

    /// Partition `p`, or `UnknownPartition`.
    pub fn get_partition(&self, p: u32) -> Result<&Arc<Partition>, LogError> {
        self.partitions
            .get(p as usize)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: self.config.name.clone(),
                partitions: self.config.partitions,
                partition: p,
            })
    }

    /// All partitions, by index.
    pub fn partitions(&self) -> &[Arc<Partition>] {
        &self.partitions
    }

    /// Bytes of records held by all partitions.
    pub fn size_bytes(&self) -> u64 {
        self.partitions.iter().map(|p| p.size_bytes()).sum()
    }

    /// Writes a new topic's directory: empty partitions first, then `topic.json`
    /// (atomically), which marks the topic as complete. A directory without it is a
    /// creation cut short and is removed on open.
    pub(crate) fn create(
        dir: &Path,
        config: &TopicConfig,
        shared: &Arc<Shared>,
    ) -> Result<Topic, LogError> {
        fs::create_dir_all(dir).map_err(|e| LogError::io("create directory", dir, e))?;
        let mut partitions = Vec::with_capacity(config.partitions as usize);
        for p in 0..config.partitions {
            partitions.push(Arc::new(Partition::create(
                dir.join(p.to_string()),
                config.clone(),
                p,
                shared.clone(),
            )?));
        }
        fsio::fsync_dir(dir)?;
        let json = serde_json::to_vec_pretty(config).map_err(|e| LogError::Metadata {
            path: dir.join(TOPIC_FILE),
            reason: e.to_string(),
        })?;
        fsio::write_file_atomic(&dir.join(TOPIC_FILE), &json)?;
        Ok(Topic {
            config: config.clone(),
            dir: dir.to_path_buf(),
            partitions,
        })
    }

    /// Loads and recovers the topic stored in `dir`.
    pub(crate) fn open(dir: &Path, shared: &Arc<Shared>) -> Result<Topic, LogError> {
        let path = dir.join(TOPIC_FILE);
        let bytes = fs::read(&path).map_err(|e| LogError::Metadata {
            path: path.clone(),
            reason: format!("cannot read it ({e}); restore it or remove the topic directory"),
        })?;
        let config: TopicConfig =
            serde_json::from_slice(&bytes).map_err(|e| LogError::Metadata {
                path: path.clone(),
                reason: format!("not valid topic settings: {e}"),
            })?;
        config.validate().map_err(|e| LogError::Metadata {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if dir.file_name().and_then(|n| n.to_str()) != Some(config.name.as_str()) {
            return Err(LogError::Metadata {
                path,
                reason: format!(
                    "names topic `{}` but lives in directory `{}`",
                    config.name,
                    dir.display()
                ),
            });
        }
        let mut partitions = Vec::with_capacity(config.partitions as usize);
        for p in 0..config.partitions {
            let pdir = dir.join(p.to_string());
            partitions.push(Arc::new(Partition::open(
                pdir,
                config.clone(),
                p,
                shared.clone(),
            )?));
        }
        Ok(Topic {
            config,
            dir: dir.to_path_buf(),
            partitions,
        })
    }
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("config", &self.config)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}
