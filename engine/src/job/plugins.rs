//! The plugin store: uploaded modules on disk, by name and version.
//!
//! `<data>/plugins/<name>/<version>.wasm` holds the module and
//! `<version>.json` its description (digest, size, ABI version, exports,
//! upload time). Versions are immutable: uploading different bytes under an
//! existing version is refused; the same bytes again is a no-op. Modules are
//! validated by the Wasm host before anything is written, and compiled once
//! per process (the host caches machine code on disk by digest).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::spec::check_name;
use crate::wasm::{ModuleInfo, Plugin, PluginError, PluginId, WasmHost};

/// A stored plugin version, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPlugin {
    pub name: String,
    pub version: String,
    pub digest: String,
    pub size: usize,
    pub abi_version: u32,
    pub exports: Vec<String>,
    pub uploaded_ms: i64,
    /// Installed from the binary's bundled plugins rather than uploaded.
    #[serde(default)]
    pub bundled: bool,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Invalid(#[from] PluginError),
    #[error("plugin name or version: {0}")]
    BadName(String),
    #[error(
        "plugin `{name}@{version}` already exists with different contents (digest {existing}); versions are immutable — upload under a new version"
    )]
    VersionExists {
        name: String,
        version: String,
        existing: String,
    },
    #[error(
        "plugin `{0}` is not installed; upload it with `sluice plugins upload` or POST /api/v1/plugins"
    )]
    NotFound(String),
    #[error("plugin `{name}` is used by job(s) {jobs}; stop and delete those jobs first")]
    InUse { name: String, jobs: String },
    #[error("plugin store at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Stored modules and their compiled forms.
pub struct PluginStore {
    dir: PathBuf,
    host: WasmHost,
    loaded: Mutex<BTreeMap<(String, String), Arc<Plugin>>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl PluginStore {
    pub fn open(data_dir: &Path, host: WasmHost) -> Result<PluginStore, StoreError> {
        let dir = data_dir.join("plugins");
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(PluginStore {
            dir,
            host,
            loaded: Mutex::new(BTreeMap::new()),
        })
    }

    fn paths(&self, name: &str, version: &str) -> (PathBuf, PathBuf) {
        let d = self.dir.join(name);
        (
            d.join(format!("{version}.wasm")),
            d.join(format!("{version}.json")),
        )
    }

    /// Validates and stores a module. Returns its description and whether it
    /// was new.
    pub fn put(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
        bundled: bool,
    ) -> Result<(StoredPlugin, bool), StoreError> {
        check_name("plugin", name).map_err(StoreError::BadName)?;
        check_name("plugin version", version).map_err(StoreError::BadName)?;
        let id = PluginId::new(name, version);
        let info: ModuleInfo = self.host.validate(&id, bytes)?;
        if let Some(existing) = self.get(name, version)? {
            if existing.digest == info.digest {
                return Ok((existing, false));
            }
            return Err(StoreError::VersionExists {
                name: name.into(),
                version: version.into(),
                existing: existing.digest,
            });
        }
        let stored = StoredPlugin {
            name: name.into(),
            version: version.into(),
            digest: info.digest.clone(),
            size: info.size,
            abi_version: info.abi_version,
            exports: info.exports.clone(),
            uploaded_ms: crate::shard::runtime::now_ms(),
            bundled,
        };
        let (wasm, meta) = self.paths(name, version);
        let d = wasm.parent().expect("plugin path has a parent");
        fs::create_dir_all(d).map_err(io(d))?;
        write_atomic(&wasm, bytes)?;
        let json = serde_json::to_vec_pretty(&stored).expect("plugin metadata encodes");
        write_atomic(&meta, &json)?;
        Ok((stored, true))
    }

    /// The description of a stored version.
    pub fn get(&self, name: &str, version: &str) -> Result<Option<StoredPlugin>, StoreError> {
        if check_name("plugin", name).is_err() || check_name("plugin version", version).is_err() {
            return Ok(None);
        }
        let (_, meta) = self.paths(name, version);
        match fs::read(&meta) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StoreError::Io {
                    path: meta.clone(),
                    source: std::io::Error::other(e),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io {
                path: meta,
                source: e,
            }),
        }
    }

    /// Every stored version, by name then version.
    pub fn list(&self) -> Result<Vec<StoredPlugin>, StoreError> {
        let mut out = Vec::new();
        let rd = fs::read_dir(&self.dir).map_err(io(&self.dir))?;
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let Ok(versions) = fs::read_dir(e.path()) else {
                continue;
            };
            for v in versions.flatten() {
                let file = v.file_name().to_string_lossy().into_owned();
                if let Some(version) = file.strip_suffix(".json")
                    && let Some(p) = self.get(&name, version)?
                {
                    out.push(p);
                }
            }
        }
        out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        Ok(out)
    }

    /// The compiled plugin, loading it on first use.
    pub fn load(&self, name: &str, version: &str) -> Result<Arc<Plugin>, StoreError> {
        let key = (name.to_owned(), version.to_owned());
        if let Some(p) = self.loaded.lock().expect("plugin lock").get(&key) {
            return Ok(p.clone());
        }
        if self.get(name, version)?.is_none() {
            return Err(StoreError::NotFound(format!("{name}@{version}")));
        }
        let (wasm, _) = self.paths(name, version);
        let bytes = fs::read(&wasm).map_err(io(&wasm))?;
        let plugin = self.host.load(PluginId::new(name, version), &bytes)?;
        self.loaded
            .lock()
            .expect("plugin lock")
            .insert(key, plugin.clone());
        Ok(plugin)
    }

    /// Deletes a version; `users` are the jobs using it (refused if any).
    pub fn delete(&self, name: &str, version: &str, users: &[String]) -> Result<(), StoreError> {
        if !users.is_empty() {
            return Err(StoreError::InUse {
                name: format!("{name}@{version}"),
                jobs: users.join(", "),
            });
        }
        if self.get(name, version)?.is_none() {
            return Err(StoreError::NotFound(format!("{name}@{version}")));
        }
        let (wasm, meta) = self.paths(name, version);
        fs::remove_file(&meta).map_err(io(&meta))?;
        let _ = fs::remove_file(&wasm);
        self.loaded
            .lock()
            .expect("plugin lock")
            .remove(&(name.to_owned(), version.to_owned()));
        Ok(())
    }

    pub fn host(&self) -> &WasmHost {
        &self.host
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(d) = path.parent() {
        fs::File::open(d)
            .and_then(|d| d.sync_all())
            .map_err(io(d))?;
    }
    Ok(())
}
