//! Writes a generated stream to disk in the forms Sluice ingests, split into part files, with
//! a manifest that lets `run` reuse the files instead of generating them again.
//!
//! # File formats
//! - `ndjson`: one record per line, `{"key": "...", "timestamp": <epoch ms>, "value": {...}}`,
//!   exactly the body of Sluice's JSON ingest (`POST /api/v1/topics/{name}/records`). Flink
//!   reads these same files (bench/peers/flink/sql/source.sql).
//! - `msgpack`: a sequence of frames; a frame is a `u32` little-endian byte length followed
//!   by that many bytes: one MessagePack array of up to `batch` records, each a map
//!   `{"key": str, "timestamp": int, "value": <map>}`. A frame's body is one MessagePack
//!   ingest request (`Content-Type: application/msgpack`); the prefix lets a reader split
//!   the file into requests without decoding it.
//!
//! Records go to the `parts` files round-robin (record `i` to part `i mod parts`), so every
//! part is in event-time order (up to the source's own disorder) and the parts can be read
//! in parallel (one per Flink source task or HTTP producer).
//!
//! The manifest `_manifest.json` is written last: a directory with a manifest matching the
//! spec and options holds complete data. Names starting with `_` are skipped by Flink's
//! file source, so the manifest is never read as data.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use sluice_gen::RecordBuf;

use super::source::SourceSpec;
use crate::BenchError;

/// Name of the manifest inside a data directory.
pub const MANIFEST: &str = "_manifest.json";
/// Records per MessagePack frame unless told otherwise.
pub const DEFAULT_BATCH: usize = 10_000;
/// Largest accepted records per frame.
pub const MAX_BATCH: usize = 1_000_000;
/// Largest accepted number of part files.
pub const MAX_PARTS: u32 = 1_024;
/// Largest frame body in bytes (the `u32` length prefix).
pub const MAX_FRAME_BYTES: usize = u32::MAX as usize;
/// Bytes buffered per part file before a write.
const WRITE_BUFFER: usize = 1 << 20;
/// Records between progress-bar updates.
const PROGRESS_EVERY: u64 = 1 << 16;

/// On-disk encoding of generated records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Newline-delimited JSON ingest lines.
    Ndjson,
    /// Length-prefixed MessagePack batches.
    Msgpack,
}

impl Format {
    /// File extension of part files.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Ndjson => "ndjson",
            Format::Msgpack => "msgpack",
        }
    }
}

/// How to lay the records out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteOptions {
    /// Encoding.
    pub format: Format,
    /// Number of part files (records are dealt round-robin).
    pub parts: u32,
    /// Records per MessagePack frame (ignored for NDJSON).
    pub batch: usize,
}

impl WriteOptions {
    /// Checks the bounds; the error names the flag.
    pub fn validate(&self) -> Result<(), BenchError> {
        if self.parts == 0 || self.parts > MAX_PARTS {
            return Err(BenchError::usage(
                "--parts",
                format!("is {}", self.parts),
                format!("use 1..={MAX_PARTS} part files"),
            ));
        }
        if self.batch == 0 || self.batch > MAX_BATCH {
            return Err(BenchError::usage(
                "--batch",
                format!("is {}", self.batch),
                format!("use 1..={MAX_BATCH} records per MessagePack frame"),
            ));
        }
        Ok(())
    }
}

/// One part file of a data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartFile {
    /// File name inside the directory.
    pub name: String,
    /// Records in it.
    pub records: u64,
    /// Its size.
    pub bytes: u64,
}

/// What a data directory holds; written after every part file is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The generator (`nexmark`, `payments`, ...).
    pub source: String,
    /// [`SourceSpec::describe`] of the spec that produced the data.
    pub spec: String,
    /// Records over all parts.
    pub records: u64,
    /// Layout.
    pub options: WriteOptions,
    /// The part files, in part order.
    pub files: Vec<PartFile>,
}

impl Manifest {
    /// Paths of the part files inside `dir`.
    pub fn paths(&self, dir: &Path) -> Vec<PathBuf> {
        self.files.iter().map(|f| dir.join(&f.name)).collect()
    }
}

/// Reads `dir`'s manifest if it describes `spec` with `options` and every part file is there
/// with its recorded size; `None` means the data must be (re)generated.
pub fn existing(dir: &Path, spec: &SourceSpec, options: &WriteOptions) -> Option<Manifest> {
    let text = fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let manifest: Manifest = serde_json::from_str(&text).ok()?;
    let complete = manifest.files.iter().all(|f| {
        fs::metadata(dir.join(&f.name))
            .map(|m| m.len() == f.bytes)
            .unwrap_or(false)
    });
    (complete && manifest.spec == spec.describe() && manifest.options == *options)
        .then_some(manifest)
}

/// Generates `spec` into `dir` (created if needed; earlier part files and manifest removed),
/// advancing `progress` by records written.
pub fn write_dataset(
    spec: &SourceSpec,
    options: &WriteOptions,
    dir: &Path,
    progress: &ProgressBar,
) -> Result<Manifest, BenchError> {
    options.validate()?;
    fs::create_dir_all(dir).map_err(|e| BenchError::io("creating directory", dir, e))?;
    clear_old(dir)?;
    let total = spec.len()?;
    progress.set_length(total);

    let mut parts = (0..options.parts)
        .map(|i| PartWriter::create(dir, i, options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut stream = spec.stream()?;
    let mut rec = RecordBuf::default();
    let mut written = 0u64;
    loop {
        let part = &mut parts[(written % u64::from(options.parts)) as usize];
        let more = match options.format {
            Format::Ndjson => stream.next_ndjson(&mut part.pending)?,
            Format::Msgpack => {
                let more = stream.next_record(&mut rec)?;
                if more {
                    part.push_msgpack(&rec)?;
                }
                more
            }
        };
        if !more {
            break;
        }
        part.records += 1;
        part.maybe_flush(options)?;
        written += 1;
        if written.is_multiple_of(PROGRESS_EVERY) {
            progress.set_position(written);
        }
    }
    progress.set_position(written);
    let files = parts
        .into_iter()
        .map(|p| p.finish(options))
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = Manifest {
        source: spec.kind().to_string(),
        spec: spec.describe(),
        records: written,
        options: *options,
        files,
    };
    let path = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    fs::write(&path, text + "\n").map_err(|e| BenchError::io("writing", &path, e))?;
    Ok(manifest)
}

/// Removes the manifest and part files of an earlier generation.
fn clear_old(dir: &Path) -> Result<(), BenchError> {
    let entries = fs::read_dir(dir).map_err(|e| BenchError::io("listing", dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == MANIFEST || name.starts_with("part-") {
            let path = entry.path();
            fs::remove_file(&path).map_err(|e| BenchError::io("removing", &path, e))?;
        }
    }
    Ok(())
}

struct PartWriter {
    path: PathBuf,
    out: BufWriter<File>,
    /// NDJSON lines, or the body of the MessagePack frame being filled.
    pending: Vec<u8>,
    in_frame: usize,
    records: u64,
    bytes: u64,
}

impl PartWriter {
    fn create(dir: &Path, index: u32, options: &WriteOptions) -> Result<Self, BenchError> {
        let path = dir.join(format!("part-{index:05}.{}", options.format.extension()));
        let file = File::create(&path).map_err(|e| BenchError::io("creating", &path, e))?;
        Ok(PartWriter {
            out: BufWriter::with_capacity(WRITE_BUFFER, file),
            path,
            pending: Vec::with_capacity(WRITE_BUFFER),
            in_frame: 0,
            records: 0,
            bytes: 0,
        })
    }

    /// Appends `rec` as a `{key, timestamp, value}` map to the frame being filled.
    fn push_msgpack(&mut self, rec: &RecordBuf) -> Result<(), BenchError> {
        let key = std::str::from_utf8(&rec.key).map_err(|e| {
            BenchError::Gen(sluice_gen::GenError::Encode {
                format: "msgpack",
                message: format!("record key is not UTF-8: {e}"),
            })
        })?;
        let out = &mut self.pending;
        // Writing into a Vec cannot fail.
        let _ = rmp::encode::write_map_len(out, 3);
        let _ = rmp::encode::write_str(out, "key");
        let _ = rmp::encode::write_str(out, key);
        let _ = rmp::encode::write_str(out, "timestamp");
        let _ = rmp::encode::write_sint(out, rec.timestamp);
        let _ = rmp::encode::write_str(out, "value");
        out.extend_from_slice(&rec.value);
        self.in_frame += 1;
        Ok(())
    }

    fn maybe_flush(&mut self, options: &WriteOptions) -> Result<(), BenchError> {
        match options.format {
            Format::Ndjson if self.pending.len() >= WRITE_BUFFER => self.write_pending(),
            Format::Msgpack if self.in_frame >= options.batch => self.write_frame(),
            _ => Ok(()),
        }
    }

    fn write_pending(&mut self) -> Result<(), BenchError> {
        self.out
            .write_all(&self.pending)
            .map_err(|e| BenchError::io("writing", &self.path, e))?;
        self.bytes += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn write_frame(&mut self) -> Result<(), BenchError> {
        if self.in_frame == 0 {
            return Ok(());
        }
        let mut header = Vec::with_capacity(9);
        let _ = rmp::encode::write_array_len(&mut header, self.in_frame as u32);
        let body = header.len() + self.pending.len();
        if body > MAX_FRAME_BYTES {
            return Err(BenchError::usage(
                "--batch",
                format!(
                    "makes a MessagePack frame of {body} bytes in `{}`, above MAX_FRAME_BYTES = {MAX_FRAME_BYTES}",
                    self.path.display()
                ),
                "use fewer records per frame",
            ));
        }
        let io = |e| BenchError::io("writing", &self.path, e);
        self.out
            .write_all(&(body as u32).to_le_bytes())
            .map_err(io)?;
        self.out.write_all(&header).map_err(io)?;
        self.bytes += 4 + header.len() as u64;
        self.in_frame = 0;
        self.write_pending()
    }

    fn finish(mut self, options: &WriteOptions) -> Result<PartFile, BenchError> {
        match options.format {
            Format::Ndjson => self.write_pending()?,
            Format::Msgpack => self.write_frame()?,
        }
        self.out
            .flush()
            .map_err(|e| BenchError::io("writing", &self.path, e))?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(PartFile {
            name,
            records: self.records,
            bytes: self.bytes,
        })
    }
}
