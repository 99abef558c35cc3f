//! Recovery of a partition on open: which segments exist, which sealed ones can be trusted
//! from their index files and which must be rescanned (damage is recorded, never served),
//! where the active segment's valid records end (a torn or corrupt tail is cut and zeroed),
//! and the idempotent-producer state. Called by `Topic::open`; the writer also uses
//! `rebuild_producers` after truncation.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Shared;
use super::codec::ProducerTag;
use super::config::TopicConfig;
use super::error::LogError;
use super::fsio;
use super::index;
use super::partition::{DamageReport, Partition};
use super::producer::Producers;
use super::segment::{self, Damage, Scan, Segment, Stop};

impl Partition {
    /// Opens an existing partition directory, recovering it: loads or rebuilds the indexes of
    /// sealed segments, scans the active segment and cuts a torn or corrupt tail, and
    /// rebuilds the producer state.
    pub(crate) fn open(
        dir: PathBuf,
        config: TopicConfig,
        id: u32,
        shared: Arc<Shared>,
    ) -> Result<Partition, LogError> {
        let bases = list_segments(&dir)?;
        if bases.is_empty() {
            return Self::create(dir, config, id, shared);
        }
        let mut segments = Vec::with_capacity(bases.len());
        let mut damage = Vec::new();
        for (i, &base) in bases[..bases.len() - 1].iter().enumerate() {
            let (seg, dmg) = open_sealed(&dir, base, bases[i + 1])?;
            if let Some(d) = dmg {
                tracing::error!(file = %seg.path.display(), position = d.position, offset = d.offset,
                    reason = %d.reason, "log recovery: damaged sealed segment; its records from this offset are not served");
                damage.push(DamageReport {
                    file: seg.path.clone(),
                    damage: d,
                });
            }
            segments.push(Arc::new(seg));
        }
        let last = bases[bases.len() - 1];
        let mut tags = Vec::new();
        let active = open_active(&dir, last, |t, o| tags.push((t, o)))?;
        let mut producers = rebuild_producers(&dir, &segments, last)?;
        for (t, o) in tags {
            producers.record(t, o);
        }
        segments.push(Arc::new(active));
        fsio::fsync_dir(&dir)?;
        Ok(Self::assemble(
            dir, config, id, shared, segments, producers, damage,
        ))
    }
}

/// Bases of the `*.log` files in `dir`, ascending; removes leftover temp files and index or
/// snapshot files without a segment.
fn list_segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let rd = fs::read_dir(dir).map_err(|e| LogError::io("list directory", dir, e))?;
    let mut bases = Vec::new();
    let mut others = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| LogError::io("list directory", dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            let _ = fs::remove_file(ent.path());
            continue;
        }
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(base) = stem.parse::<u64>() else {
            continue;
        };
        match ext {
            "log" => bases.push(base),
            "index" | "timeindex" | "producers" => others.push((base, ent.path())),
            _ => {}
        }
    }
    bases.sort_unstable();
    for (base, path) in others {
        if bases.binary_search(&base).is_err() {
            let _ = fs::remove_file(path);
        }
    }
    Ok(bases)
}

fn open_sealed(
    dir: &Path,
    base: u64,
    next_base: u64,
) -> Result<(Segment, Option<Damage>), LogError> {
    let path = segment::log_path(dir, base);
    let file = Segment::open_file(&path)?;
    let len = file
        .metadata()
        .map_err(|e| LogError::io("stat segment", &path, e))?
        .len();
    let (ip, tp) = (
        segment::index_path(dir, base),
        segment::time_path(dir, base),
    );
    match index::load_sealed(&ip, &tp, base, len) {
        Ok(s) if s.next_offset == next_base => {
            let seg =
                Segment::from_parts(base, path, file, len, s.next_offset, s.index, None, true);
            return Ok((seg, None));
        }
        Ok(_) => {
            tracing::warn!(file = %ip.display(), "log recovery: index disagrees with the next segment; rebuilding")
        }
        Err(why) => {
            tracing::warn!(file = %ip.display(), %why, "log recovery: rebuilding segment index")
        }
    }
    let scan = segment::scan(&file, &path, base, next_base, |_, _| {})?;
    let damage = match (&scan.stop, scan.next_offset == next_base) {
        (_, true) => None,
        (Stop::Bad(why), false) => Some(why.to_string()),
        (Stop::Torn, false) => Some("frame runs past the end of the file".to_string()),
        (Stop::Clean, false) => Some(format!(
            "records end at offset {} but the next segment starts at {next_base}",
            scan.next_offset
        )),
    }
    .map(|reason| Damage {
        position: scan.valid_len,
        offset: scan.next_offset,
        reason,
    });
    if damage.is_none() {
        if scan.valid_len < scan.file_len {
            // Unused preallocation left by a crash between sealing steps.
            file.set_len(scan.valid_len)
                .map_err(|e| LogError::io("truncate segment", &path, e))?;
        }
        // An index file on disk promises a durable segment: sync before writing it (the
        // segment may have been sealed by a process that died before its flush).
        file.sync_all()
            .map_err(|e| LogError::io("fsync", &path, e))?;
        index::write_sealed(
            &ip,
            &tp,
            base,
            scan.next_offset,
            scan.valid_len,
            &scan.index,
        )?;
    }
    let Scan {
        valid_len,
        next_offset,
        index,
        ..
    } = scan;
    let seg = Segment::from_parts(
        base,
        path,
        file,
        valid_len,
        next_offset,
        index,
        damage.clone(),
        true,
    );
    Ok((seg, damage))
}

fn open_active(
    dir: &Path,
    base: u64,
    on_tag: impl FnMut(ProducerTag, u64),
) -> Result<Segment, LogError> {
    let path = segment::log_path(dir, base);
    let file = Segment::open_file(&path)?;
    let scan = segment::scan(&file, &path, base, u64::MAX, on_tag)?;
    if scan.stop != Stop::Clean {
        tracing::warn!(file = %path.display(), position = scan.valid_len, offset = scan.next_offset,
            stop = ?scan.stop, "log recovery: cutting a torn or corrupt tail");
    }
    // Zero everything past the last valid record, so that stale bytes of an unacknowledged
    // write can never line up with a later record and be taken for data.
    fsio::zero_range(&file, &path, scan.valid_len, scan.file_len)?;
    file.sync_all()
        .map_err(|e| LogError::io("fsync", &path, e))?;
    // The active segment keeps no index files; stale ones (from before a truncation) go.
    let _ = fs::remove_file(segment::index_path(dir, base));
    let _ = fs::remove_file(segment::time_path(dir, base));
    Ok(Segment::from_parts(
        base,
        path,
        file,
        scan.valid_len,
        scan.next_offset,
        scan.index,
        None,
        false,
    ))
}

/// Producer state as of offset `upto` (the base of the segment after `segments`): the
/// newest usable snapshot at or before it, plus the producer tags of the segments from
/// that snapshot on.
pub(crate) fn rebuild_producers(
    dir: &Path,
    segments: &[Arc<Segment>],
    upto: u64,
) -> Result<Producers, LogError> {
    if let Ok(p) = Producers::load(&segment::producers_path(dir, upto), upto) {
        return Ok(p);
    }
    let mut from = 0;
    let mut state = Producers::default();
    for (i, s) in segments.iter().enumerate().rev() {
        if let Ok(p) = Producers::load(&segment::producers_path(dir, s.base), s.base) {
            state = p;
            from = i;
            break;
        }
    }
    for s in &segments[from..] {
        segment::scan(&s.file, &s.path, s.base, s.next_offset(), |t, o| {
            state.record(t, o)
        })?;
    }
    Ok(state)
}
