//! The on-disk cache of compiled modules, keyed by module digest and by the
//! engine's compatibility hash.
//!
//! Called by the host when it loads or validates a module. Only files this
//! code wrote are ever deserialized: each file starts with a magic line, the
//! digest of the module it was compiled from and a SHA-256 of the compiled
//! artifact, and is written to a temporary name, fsynced and renamed. A file
//! that fails any check (truncated, flipped bits, another module's code) is
//! reported as corrupt, never loaded, and replaced by a fresh compilation.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

const MAGIC: &[u8; 16] = b"sluice-cwasm-v1\n";
const HEADER_BYTES: usize = MAGIC.len() + 32 + 32;
const FILE_SUFFIX: &str = ".cwasm";
const TEMP_MARKER: &str = ".tmp-";
/// Temporary files older than this are leftovers of a crash and are removed.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Where the compiled code of a loaded plugin came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// The host has no cache directory; the module was compiled.
    Disabled,
    /// Served from a cache file; nothing was compiled.
    Hit,
    /// No cache file existed; the module was compiled and a file written.
    Miss,
    /// A cache file existed but was corrupt or unreadable; it was ignored,
    /// the module compiled again and the file replaced.
    Rebuilt,
}

/// Counts of cache outcomes since the host started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads served from disk.
    pub hits: u64,
    /// Loads that found no file and compiled.
    pub misses: u64,
    /// Loads that found a corrupt file and compiled.
    pub rebuilt: u64,
    /// Compiled modules that could not be written to disk (the load still
    /// succeeded).
    pub write_failures: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    rebuilt: AtomicU64,
    write_failures: AtomicU64,
}

impl Counters {
    pub(crate) fn count(&self, outcome: CacheOutcome) {
        let counter = match outcome {
            CacheOutcome::Disabled => return,
            CacheOutcome::Hit => &self.hits,
            CacheOutcome::Miss => &self.misses,
            CacheOutcome::Rebuilt => &self.rebuilt,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_write_failure(&self) {
        self.write_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            rebuilt: self.rebuilt.load(Ordering::Relaxed),
            write_failures: self.write_failures.load(Ordering::Relaxed),
        }
    }
}

/// What a cache lookup found.
pub(crate) enum Lookup {
    Hit(Module),
    Absent,
    Corrupt(String),
}

/// A directory of compiled modules for one engine configuration.
pub(crate) struct DiskCache {
    dir: PathBuf,
    compat: String,
}

/// Feeds `Hash` output into SHA-256, so the engine's compatibility hash
/// becomes a stable file-name component.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("only the full digest is used")
    }
}

impl DiskCache {
    /// Opens (creating if needed) the cache directory for `engine`.
    pub(crate) fn open(dir: &Path, engine: &Engine) -> io::Result<DiskCache> {
        fs::create_dir_all(dir)?;
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let compat = hex::encode(&hasher.0.finalize()[..8]);
        let cache = DiskCache {
            dir: dir.to_path_buf(),
            compat,
        };
        cache.remove_stale_temps();
        Ok(cache)
    }

    /// The file that holds the compiled code of the module with `digest`.
    pub(crate) fn path(&self, digest: &str) -> PathBuf {
        self.dir
            .join(format!("{digest}-{}{FILE_SUFFIX}", self.compat))
    }

    /// Looks up the compiled module for `digest` (hex SHA-256 of its bytes).
    pub(crate) fn lookup(&self, engine: &Engine, digest: &str) -> Lookup {
        let path = self.path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Absent,
            Err(e) => return Lookup::Corrupt(format!("cannot read {}: {e}", path.display())),
        };
        if bytes.len() < HEADER_BYTES || &bytes[..MAGIC.len()] != MAGIC {
            return Lookup::Corrupt(format!("{} has no valid header", path.display()));
        }
        let (module_digest, rest) = bytes[MAGIC.len()..].split_at(32);
        let (payload_digest, payload) = rest.split_at(32);
        if hex::encode(module_digest) != digest {
            return Lookup::Corrupt(format!("{} belongs to another module", path.display()));
        }
        if Sha256::digest(payload).as_slice() != payload_digest {
            return Lookup::Corrupt(format!("{} fails its checksum", path.display()));
        }
        // SAFETY: the payload is byte-for-byte what `Module::serialize` produced
        // in `store` below (checked by the SHA-256 just verified), for this
        // module digest and this engine's compatibility hash (in the name).
        match unsafe { Module::deserialize(engine, payload) } {
            Ok(module) => Lookup::Hit(module),
            Err(e) => Lookup::Corrupt(format!("{} does not deserialize: {e}", path.display())),
        }
    }

    /// Writes the compiled `module` for `digest`, atomically.
    pub(crate) fn store(&self, digest: &str, module: &Module) -> io::Result<()> {
        let payload = module.serialize().map_err(io::Error::other)?;
        let module_digest = hex::decode(digest).map_err(io::Error::other)?;
        let path = self.path(digest);
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let temp = self.dir.join(format!(
            "{digest}{TEMP_MARKER}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = fs::File::create(&temp)?;
            file.write_all(MAGIC)?;
            file.write_all(&module_digest)?;
            file.write_all(&Sha256::digest(&payload))?;
            file.write_all(&payload)?;
            file.sync_all()?;
            fs::rename(&temp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    }

    fn remove_stale_temps(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let stale = entry.file_name().to_string_lossy().contains(TEMP_MARKER)
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > STALE_TEMP_AGE);
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}
