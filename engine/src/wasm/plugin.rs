//! [`Plugin`]: a validated, compiled module ready to be instantiated, and the
//! names that identify plugins and instances.
//!
//! A `Plugin` is created by [`WasmHost::load`](super::WasmHost::load) and
//! shared (`Arc`) by every job that uses it. It holds the module linked
//! against the host imports once (`InstancePre`), so creating an instance
//! for a (job, operator, shard) does no compilation or linking.

use std::fmt;
use std::sync::Arc;

use wasmtime::InstancePre;

use super::cache::CacheOutcome;
use super::error::PluginError;
use super::host::Shared;
use super::instance::Instance;
use super::state::{HostState, Origin};

/// A plugin's name and version, shown as `name@version`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginId {
    /// The plugin name.
    pub name: String,
    /// The plugin version.
    pub version: String,
}

impl PluginId {
    /// A plugin id from its parts.
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> PluginId {
        PluginId {
            name: name.into(),
            version: version.into(),
        }
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// Which (job, operator, shard) an instance serves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstanceLabel {
    /// The job id.
    pub job: String,
    /// The operator's index in the job's chain.
    pub operator: u32,
    /// The shard that owns the instance.
    pub shard: u32,
}

impl InstanceLabel {
    /// A label from its parts.
    pub fn new(job: impl Into<String>, operator: u32, shard: u32) -> InstanceLabel {
        InstanceLabel {
            job: job.into(),
            operator,
            shard,
        }
    }
}

impl fmt::Display for InstanceLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "job `{}`, operator {}, shard {}",
            self.job, self.operator, self.shard
        )
    }
}

/// What validation learned about a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    /// SHA-256 of the module bytes, lowercase hex.
    pub digest: String,
    /// Size of the module in bytes.
    pub size: usize,
    /// The ABI version the module speaks.
    pub abi_version: u32,
    /// Names of everything the module exports.
    pub exports: Vec<String>,
    /// The functions it imports, as `sluice::name`.
    pub imports: Vec<String>,
}

/// A validated, compiled plugin.
pub struct Plugin {
    id: PluginId,
    info: ModuleInfo,
    pre: InstancePre<HostState>,
    shared: Arc<Shared>,
    cache: CacheOutcome,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.id)
            .field("info", &self.info)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn new(
        id: PluginId,
        info: ModuleInfo,
        pre: InstancePre<HostState>,
        shared: Arc<Shared>,
        cache: CacheOutcome,
    ) -> Plugin {
        Plugin {
            id,
            info,
            pre,
            shared,
            cache,
        }
    }

    /// The plugin's name and version.
    pub fn id(&self) -> &PluginId {
        &self.id
    }

    /// What validation learned about the module.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// Where the compiled code came from when the plugin was loaded.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    /// Creates an instance for `label`: instantiates the module, checks its
    /// ABI version and calls `sluice_init` with `config_msgpack` (empty for
    /// no configuration).
    pub fn instantiate(
        &self,
        label: InstanceLabel,
        config_msgpack: &[u8],
    ) -> Result<Instance, PluginError> {
        let origin = Arc::new(Origin {
            plugin: self.id.clone(),
            label,
        });
        let mut instance = Instance::create(&self.shared, &self.pre, origin)?;
        instance.init(config_msgpack)?;
        Ok(instance)
    }
}
