//! Recovery, truncation, retention, idempotence and quota, on real files: what the log does
//! with torn tails, damaged indexes and segments, retried batches and full quotas.

mod log_common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use log_common::*;
use sluice::log::{
    FsyncPolicy, Log, LogError, LogOptions, ProducerSeq, Retention, TopicConfig, limits,
};

const SEG: u64 = limits::MIN_SEGMENT_BYTES;

fn pdir(root: &Path, topic: &str) -> PathBuf {
    root.join("topics").join(topic).join("0")
}

/// Creates topic `name` with one partition and `n` records in batches of 10.
fn fill(root: &Path, name: &str, n: u64, fsync: FsyncPolicy) {
    let log = open(root);
    let t = log.create_topic(cfg(name, 1, SEG, fsync)).unwrap();
    let mut w = t.partition(0).writer().unwrap();
    for b in 0..n.div_ceil(10) {
        let k = (n - b * 10).min(10);
        let o = owned(b * 10, k, |i| i as i64 * 1000);
        w.append(&records(&o), None).unwrap();
    }
}

fn reopen_partition(
    root: &Path,
    name: &str,
) -> (std::sync::Arc<Log>, std::sync::Arc<sluice::log::Partition>) {
    let log = open(root);
    let p = log.topic(name).unwrap().partition(0).clone();
    (log, p)
}

/// Byte length of the valid records in the last segment file (before its zeroed tail).
fn active_data_len(dir: &Path) -> (PathBuf, u64) {
    let last = segment_files(dir).pop().unwrap();
    let bytes = std::fs::read(&last).unwrap();
    (last, frame_ends(&bytes).last().copied().unwrap_or(0))
}

#[test]
fn torn_tail_is_truncated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), "t", 95, FsyncPolicy::Never);
    let (file, len) = active_data_len(&pdir(dir.path(), "t"));
    // Cut the last record in half, as a crash mid-write would.
    let f = OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(len - 30).unwrap();
    drop(f);
    let (_log, p) = reopen_partition(dir.path(), "t");
    assert_eq!(p.end_offset(), 94);
    assert_records(&read_from(&p, 0), 0, 94);
    let o = owned(94, 3, |i| i as i64);
    p.writer().unwrap().append(&records(&o), None).unwrap();
    assert_records(&read_from(&p, 90), 90, 97);
}

#[test]
fn corrupt_last_record_is_cut_and_never_served() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), "c", 95, FsyncPolicy::Never);
    let (file, len) = active_data_len(&pdir(dir.path(), "c"));
    let f = OpenOptions::new().write(true).open(&file).unwrap();
    f.write_all_at(b"X", len - 5).unwrap();
    drop(f);
    let (_log, p) = reopen_partition(dir.path(), "c");
    assert_eq!(p.end_offset(), 94);
    assert_records(&read_from(&p, 0), 0, 94);
}

#[test]
fn missing_or_damaged_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), "ix", 2000, FsyncPolicy::Never);
    let d = pdir(dir.path(), "ix");
    let segs = segment_files(&d);
    assert!(segs.len() > 4);
    std::fs::remove_file(segs[0].with_extension("index")).unwrap();
    std::fs::remove_file(segs[1].with_extension("timeindex")).unwrap();
    let ti = segs[2].with_extension("timeindex");
    let mut b = std::fs::read(&ti).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0xff;
    std::fs::write(&ti, b).unwrap();
    std::fs::write(segs[3].with_extension("index"), b"garbage").unwrap();
    let (_log, p) = reopen_partition(dir.path(), "ix");
    assert!(p.damage().is_empty());
    assert_records(&read_from(&p, 0), 0, 2000);
    for from in [1, 150, 333, 777] {
        assert_records(&read_from(&p, from), from, 2000);
        assert_eq!(p.offset_for_timestamp(from as i64 * 1000).unwrap(), from);
    }
    for s in &segs[..4] {
        assert!(s.with_extension("index").exists() && s.with_extension("timeindex").exists());
    }
    // The rebuilt files are valid: a second open loads them without complaint.
    drop(p);
    drop(_log);
    let (_log, p) = reopen_partition(dir.path(), "ix");
    assert_records(&read_from(&p, 400), 400, 2000);
}

/// Producer 7's batch `seq`: records `seq * 10 ..+ 10`.
fn producer_batch(w: &mut sluice::log::PartitionWriter, seq: u64) -> sluice::log::AppendAck {
    let o = owned(seq * 10, 10, |i| i as i64);
    let ps = ProducerSeq {
        producer_id: 7,
        sequence: seq,
    };
    w.append(&records(&o), Some(ps)).unwrap()
}

#[test]
fn a_producer_batch_cut_short_by_a_crash_goes_whole_and_its_retry_is_appended_anew() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path());
        let t = log
            .create_topic(cfg("pb", 1, SEG, FsyncPolicy::Always))
            .unwrap();
        let mut w = t.partition(0).writer().unwrap();
        for seq in 0..3u64 {
            producer_batch(&mut w, seq);
        }
    }
    // A crash in the middle of batch 2: its first 4 records reached the disk, the rest
    // did not (the file ends in zeros there, as preallocated space does).
    let d = pdir(dir.path(), "pb");
    let (file, _) = active_data_len(&d);
    let bytes = std::fs::read(&file).unwrap();
    let cut = frame_ends(&bytes)[23];
    let f = OpenOptions::new().write(true).open(&file).unwrap();
    f.write_all_at(&vec![0u8; bytes.len() - cut as usize], cut)
        .unwrap();
    drop(f);
    let (_log, p) = reopen_partition(dir.path(), "pb");
    assert_eq!(p.end_offset(), 20, "the partial batch is gone entirely");
    assert_records(&read_from(&p, 0), 0, 20);
    let mut w = p.writer().unwrap();
    // The producer retries batch 2: appended anew, not acknowledged as a duplicate of
    // records that are not all there.
    let ack = producer_batch(&mut w, 2);
    assert!(!ack.duplicate, "{ack:?}");
    assert_eq!((ack.base_offset, ack.count), (20, 10));
    assert_records(&read_from(&p, 0), 0, 30);
    // And batch 1 is still known: its retry is a duplicate.
    let ack = producer_batch(&mut w, 1);
    assert!(ack.duplicate && ack.base_offset == 10, "{ack:?}");
}

#[test]
fn corrupt_record_inside_a_sealed_segment_is_reported_and_not_served() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), "bad", 2000, FsyncPolicy::Never);
    let d = pdir(dir.path(), "bad");
    let segs = segment_files(&d);
    // Damage a byte in the middle of the second segment, and drop its index so recovery
    // scans it.
    let victim = &segs[1];
    let len = std::fs::metadata(victim).unwrap().len();
    let f = OpenOptions::new().write(true).open(victim).unwrap();
    f.write_all_at(b"\xAA\xBB", len / 2).unwrap();
    drop(f);
    std::fs::remove_file(victim.with_extension("index")).unwrap();
    let (_log, p) = reopen_partition(dir.path(), "bad");
    let dmg = p.damage();
    assert_eq!(dmg.len(), 1, "{dmg:?}");
    assert_eq!(&dmg[0].file, victim);
    let bad_offset = dmg[0].damage.offset;
    let base: u64 = segment_base(victim);
    assert!(bad_offset > base && dmg[0].damage.position < len);
    // Reads up to the damage succeed; the damaged offset fails naming file and offset.
    let mut r = p.reader();
    let mut got = 0;
    let out = r.read(base, usize::MAX, usize::MAX, |_| got += 1).unwrap();
    assert_eq!(out.next_offset, bad_offset);
    let err = r.read(bad_offset, 10, 1 << 20, |_| {}).unwrap_err();
    match &err {
        LogError::Corrupt { file, offset, .. } => {
            assert_eq!(file, victim);
            assert_eq!(*offset, bad_offset);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(victim.to_str().unwrap()) && msg.contains("byte"),
        "{msg}"
    );
    // Later segments are intact.
    let next_base: u64 = segment_base(&segs[2]);
    assert_records(&read_from(&p, next_base), next_base, 2000);
    // A corrupt record detected at read time (bit rot after open) is refused too.
    let f = OpenOptions::new().write(true).open(&segs[3]).unwrap();
    f.write_all_at(b"\x00\x01\x02", 100).unwrap();
    drop(f);
    let b3: u64 = segment_base(&segs[3]);
    let mut r = p.reader();
    assert!(matches!(
        r.read(b3, usize::MAX, usize::MAX, |_| {}),
        Err(LogError::Corrupt { .. })
    ));
}

#[test]
fn truncate_drops_records_across_segments_durably() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path(), "tr", 2000, FsyncPolicy::Never);
    let d = pdir(dir.path(), "tr");
    let before = segment_files(&d).len();
    {
        let (log, p) = reopen_partition(dir.path(), "tr");
        let size_before = p.size_bytes();
        let mut w = p.writer().unwrap();
        let mut r = p.reader();
        r.read(1400, 10, 1 << 20, |_| {}).unwrap();
        w.truncate(733).unwrap();
        assert_eq!((p.end_offset(), p.durable_offset()), (733, 733));
        assert!(p.size_bytes() < size_before);
        assert_eq!(log.total_bytes(), p.size_bytes());
        assert!(matches!(
            r.read(1410, 10, 1 << 20, |_| {}),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        assert_records(&read_from(&p, 700), 700, 733);
        assert!(segment_files(&d).len() < before);
        // Offsets are reused by new appends with new content.
        let o = owned(5000, 10, |i| i as i64);
        let ack = w.append(&records(&o), None).unwrap();
        assert_eq!(ack.base_offset, 733);
        let got = read_from(&p, 733);
        assert_eq!(got.len(), 10);
        assert_eq!(got[0].value, value(5000));
        w.truncate(740).unwrap();
        w.sync().unwrap();
    }
    let (_log, p) = reopen_partition(dir.path(), "tr");
    assert_eq!(p.end_offset(), 740);
    assert_records(&read_from(&p, 0)[..733], 0, 733);
    let got = read_from(&p, 733);
    assert_eq!(got.len(), 7);
    assert_eq!(got[6].value, value(5006));
    let mut w = p.writer().unwrap();
    assert!(matches!(
        w.truncate(741),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    w.truncate(0).unwrap();
    assert_eq!(p.end_offset(), 0);
    assert!(read_from(&p, 0).is_empty());
}

#[test]
fn idempotent_retry_returns_original_offsets_across_reopen_and_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let id = |s| {
        Some(ProducerSeq {
            producer_id: 42,
            sequence: s,
        })
    };
    {
        let log = open(dir.path());
        let t = log
            .create_topic(cfg("idem", 1, SEG, FsyncPolicy::Always))
            .unwrap();
        let mut w = t.partition(0).writer().unwrap();
        let a = owned(0, 5, |i| i as i64);
        let first = w.append_durable(&records(&a), id(0)).unwrap();
        let again = w.append_durable(&records(&a), id(0)).unwrap();
        assert_eq!(
            (again.base_offset, again.count, again.duplicate),
            (0, 5, true)
        );
        assert!(!first.duplicate);
        // Another producer interleaves; it has its own sequence space.
        let other = owned(100, 3, |i| i as i64);
        w.append(
            &records(&other),
            Some(ProducerSeq {
                producer_id: 7,
                sequence: 900,
            }),
        )
        .unwrap();
        // Fill a few segments so the state must come from snapshots + replay.
        for s in 1..=200u64 {
            let o = owned(s * 10, 10, |i| i as i64);
            w.append(&records(&o), id(s)).unwrap();
        }
        let err = w.append(&records(&a), id(3)).unwrap_err();
        assert!(
            matches!(err, LogError::SequenceTooOld { expected: 201, .. }),
            "{err}"
        );
        let err = w.append(&records(&a), id(200)).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::RetryMismatch {
                    original: 10,
                    retried: 5,
                    ..
                }
            ),
            "{err}"
        );
    }
    let end = 5 + 3 + 2000;
    let (log, p) = reopen_partition(dir.path(), "idem");
    assert_eq!(p.end_offset(), end);
    let mut w = p.writer().unwrap();
    let o = owned(2000, 10, |i| i as i64);
    let ack = w.append(&records(&o), id(200)).unwrap();
    assert_eq!((ack.base_offset, ack.duplicate), (end - 10, true));
    assert_eq!(p.end_offset(), end, "a retry is not written twice");
    let ack = w
        .append(
            &records(&o),
            Some(ProducerSeq {
                producer_id: 7,
                sequence: 900,
            }),
        )
        .unwrap_err();
    assert!(matches!(ack, LogError::RetryMismatch { .. }));
    // Truncating the last batches forgets them: their sequences are accepted again.
    w.truncate(end - 20).unwrap();
    let ack = w.append(&records(&o), id(199)).unwrap();
    assert!(!ack.duplicate);
    assert_eq!(ack.base_offset, end - 20);
    drop(w);
    drop(p);
    drop(log);
    // Without any producer snapshot, state is rebuilt by replaying the records.
    let d = pdir(dir.path(), "idem");
    for e in std::fs::read_dir(&d).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "producers") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let (_log, p) = reopen_partition(dir.path(), "idem");
    let ack = p.writer().unwrap().append(&records(&o), id(199)).unwrap();
    assert_eq!((ack.base_offset, ack.duplicate), (end - 20, true));
}

/// A roll leaves its producer snapshot to the next flush (off the writer's thread); once
/// flushed, the snapshot is what remembers batches whose records retention removed.
#[test]
fn producer_snapshots_written_by_the_flush_outlive_the_segments_they_summarise() {
    let dir = tempfile::tempdir().unwrap();
    let d = pdir(dir.path(), "snap");
    let early = owned(0, 4, |i| i as i64);
    let early_id = Some(ProducerSeq {
        producer_id: 42,
        sequence: 0,
    });
    {
        let log = open(dir.path());
        let t = log
            .create_topic(cfg("snap", 1, SEG, FsyncPolicy::Never))
            .unwrap();
        let mut w = t.partition(0).writer().unwrap();
        w.append(&records(&early), early_id).unwrap();
        // Producer 7 fills a few segments after producer 42's one batch.
        let mut s = 0;
        while segment_files(&d).len() < 4 {
            let o = owned(4 + s * 10, 10, |i| i as i64);
            let id = Some(ProducerSeq {
                producer_id: 7,
                sequence: s,
            });
            w.append(&records(&o), id).unwrap();
            s += 1;
        }
        w.sync().unwrap();
        let segments = segment_files(&d);
        for f in &segments[1..] {
            let snap = f.with_extension("producers");
            assert!(snap.exists(), "no producer snapshot {}", snap.display());
        }
        let bases: Vec<u64> = segments.iter().map(|f| segment_base(f)).collect();
        // Retention takes the segment holding producer 42's batch.
        let p = t.partition(0);
        assert_eq!(p.remove_before(bases[1]).unwrap().segments_removed, 1);
    }
    let (_log, p) = reopen_partition(dir.path(), "snap");
    assert!(p.start_offset() > 0);
    // Only a snapshot can remember it now: the retry is acknowledged, not written again.
    let end = p.end_offset();
    let ack = p
        .writer()
        .unwrap()
        .append(&records(&early), early_id)
        .unwrap();
    assert_eq!((ack.duplicate, ack.base_offset), (true, 0), "{ack:?}");
    assert_eq!(p.end_offset(), end);
}

#[test]
fn retention_removes_old_segments_by_age_and_size_but_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let age = TopicConfig {
        retention: Retention {
            max_age_ms: Some(10_000),
            max_bytes: None,
        },
        ..cfg("age", 1, SEG, FsyncPolicy::Never)
    };
    let size = TopicConfig {
        retention: Retention {
            max_age_ms: None,
            max_bytes: Some(4 * SEG),
        },
        ..cfg("size", 1, SEG, FsyncPolicy::Never)
    };
    for c in [age, size] {
        let t = log.create_topic(c).unwrap();
        let mut w = t.partition(0).writer().unwrap();
        // Timestamps 0..2000 s: record i at i * 1000 ms.
        for b in 0..200 {
            let o = owned(b * 10, 10, |i| i as i64 * 1000);
            w.append(&records(&o), None).unwrap();
        }
    }
    let total_before = log.total_bytes();
    let now = 1_500_000; // keep records newer than 1490 s
    let report = log.enforce_retention(now).unwrap();
    assert!(report.segments_removed > 0 && report.bytes_removed > 0);
    assert_eq!(log.total_bytes(), total_before - report.bytes_removed);

    let p = log.topic("age").unwrap().partition(0).clone();
    let start = p.start_offset();
    assert!(start > 1000 && start <= 1490, "start {start}");
    assert!(matches!(
        p.reader().read(0, 1, 1 << 20, |_| {}),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_records(&read_from(&p, start), start, 2000);
    let first = segment_files(&pdir(dir.path(), "age"))[0].clone();
    let base: u64 = segment_base(&first);
    assert_eq!(base, start);

    let q = log.topic("size").unwrap().partition(0).clone();
    assert!(q.size_bytes() <= 4 * SEG, "size {}", q.size_bytes());
    assert!(q.size_bytes() > 3 * SEG);
    assert_records(&read_from(&q, q.start_offset()), q.start_offset(), 2000);

    // Far in the future: everything old goes, but the active segment stays.
    log.enforce_retention(i64::MAX).unwrap();
    assert_eq!(segment_files(&pdir(dir.path(), "age")).len(), 1);
    assert!(p.end_offset() - p.start_offset() > 0);
    drop(p);
    drop(q);
    drop(log);
    let log = open(dir.path());
    let p = log.topic("age").unwrap().partition(0).clone();
    assert_records(&read_from(&p, p.start_offset()), p.start_offset(), 2000);
}

#[test]
fn removing_before_an_offset_drops_only_whole_segments_below_it_and_frees_quota() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        LogOptions {
            quota_bytes: Some(16 * SEG),
        },
    )
    .unwrap();
    let p = log
        .create_topic(cfg("x", 1, SEG, FsyncPolicy::Never))
        .unwrap()
        .partition(0)
        .clone();
    let mut w = p.writer().unwrap();
    // Fill the quota.
    let mut n = 0;
    loop {
        match w.append(&records(&owned(n, 10, |i| i as i64)), None) {
            Ok(_) => n += 10,
            Err(LogError::QuotaFull { .. }) => break,
            Err(e) => panic!("append: {e}"),
        }
    }
    let segments = segment_files(&pdir(dir.path(), "x"));
    assert!(segments.len() > 4, "{} segments", segments.len());
    let bases: Vec<u64> = segments.iter().map(|s| segment_base(s)).collect();

    // Below the second segment's start: nothing goes.
    let report = p.remove_before(bases[1] - 1).unwrap();
    assert_eq!(report.segments_removed, 0);
    assert_eq!(p.start_offset(), 0);

    // Just past the third segment's start: the first two go, the third stays whole.
    let total = log.total_bytes();
    let report = p.remove_before(bases[2] + 1).unwrap();
    assert_eq!(report.segments_removed, 2);
    assert_eq!(p.start_offset(), bases[2]);
    assert_eq!(log.total_bytes(), total - report.bytes_removed);
    assert_eq!(
        segment_files(&pdir(dir.path(), "x"))[0],
        segments[2],
        "the files of removed segments are gone"
    );
    assert!(matches!(
        p.reader().read(bases[2] - 1, 1, 1 << 20, |_| {}),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_records(&read_from(&p, bases[2]), bases[2], n);

    // The freed bytes are quota the writer can use again.
    w.append(&records(&owned(n, 10, |i| i as i64)), None)
        .expect("an append fits once segments are removed");
    n += 10;

    // Past the end: every sealed segment goes, never the active one; the rest reopens.
    p.remove_before(u64::MAX).unwrap();
    assert_eq!(segment_files(&pdir(dir.path(), "x")).len(), 1);
    assert_eq!(p.end_offset(), n);
    let start = p.start_offset();
    drop((w, p, log));
    let (_log, p) = reopen_partition(dir.path(), "x");
    assert_eq!(p.start_offset(), start);
    assert_records(&read_from(&p, start), start, n);
}

#[test]
fn quota_full_fails_the_append_and_keeps_the_log_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let quota = 50_000;
    let log = Log::open(
        dir.path(),
        LogOptions {
            quota_bytes: Some(quota),
        },
    )
    .unwrap();
    let t = log
        .create_topic(cfg("q", 1, SEG, FsyncPolicy::Always))
        .unwrap();
    let p = t.partition(0).clone();
    let mut w = p.writer().unwrap();
    let mut next = 0;
    let err = loop {
        let o = owned(next, 10, |i| i as i64);
        match w.append_durable(&records(&o), None) {
            Ok(a) => next = a.base_offset + 10,
            Err(e) => break e,
        }
    };
    match &err {
        LogError::QuotaFull {
            quota: q,
            used,
            needed,
        } => {
            assert_eq!(*q, quota);
            assert!(used + needed > quota && *used <= quota);
        }
        other => panic!("expected QuotaFull, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("quota") && msg.contains("50000") && msg.contains("quota_bytes"),
        "{msg}"
    );
    assert_eq!(p.end_offset(), next);
    assert!(log.total_bytes() <= quota);
    assert_records(&read_from(&p, 0), 0, next);
    drop(w);
    drop(p);
    drop(t);
    drop(log);
    let log = Log::open(
        dir.path(),
        LogOptions {
            quota_bytes: Some(quota),
        },
    )
    .unwrap();
    let p = log.topic("q").unwrap().partition(0).clone();
    assert_eq!(p.end_offset(), next);
    assert!(log.total_bytes() <= quota && log.total_bytes() > quota - 5000);
}

#[test]
fn sequence_gaps_are_allowed_because_batches_skip_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogOptions::default()).unwrap();
    let t = log
        .create_topic(cfg("gaps", 1, SEG, FsyncPolicy::Never))
        .unwrap();
    let mut w = t.partition(0).writer().unwrap();
    let seq = |s| {
        Some(ProducerSeq {
            producer_id: 3,
            sequence: s,
        })
    };
    let a = owned(0, 2, |i| i as i64);
    w.append(&records(&a), seq(1)).unwrap();
    let later = w.append(&records(&a), seq(7)).unwrap();
    assert!(!later.duplicate, "a later sequence after a gap is appended");
    let again = w.append(&records(&a), seq(7)).unwrap();
    assert!(again.duplicate, "and its retry is recognised");
    assert_eq!(t.partition(0).end_offset(), 4);
}
