//! Property tests of the log on real files: random batches survive a reopen; a file cut at
//! any byte recovers to exactly the complete records before the cut; arbitrary bytes as a
//! segment never panic recovery or reads.

mod log_common;

use std::path::{Path, PathBuf};

use log_common::*;
use proptest::prelude::*;
use sluice::log::{FsyncPolicy, LogError, Record, limits};

type Hdrs = Vec<(Vec<u8>, Vec<u8>)>;
type Rec = (i64, Vec<u8>, Vec<u8>, Hdrs);

fn arb_record() -> impl Strategy<Value = Rec> {
    (
        any::<i64>(),
        proptest::collection::vec(any::<u8>(), 0..16),
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..8),
                proptest::collection::vec(any::<u8>(), 0..8),
            ),
            0..3,
        ),
    )
}

fn arb_batches() -> impl Strategy<Value = Vec<Vec<Rec>>> {
    proptest::collection::vec(proptest::collection::vec(arb_record(), 1..40), 1..25)
}

/// Writes the batches to a new topic `p` (one partition, smallest segments); returns all
/// records in offset order.
fn write_batches(root: &Path, batches: &[Vec<Rec>]) -> Vec<Rec> {
    let log = open(root);
    let t = log
        .create_topic(cfg("p", 1, limits::MIN_SEGMENT_BYTES, FsyncPolicy::Never))
        .unwrap();
    let mut w = t.partition(0).writer().unwrap();
    let mut all = Vec::new();
    for b in batches {
        let hdrs: Vec<Vec<(&[u8], &[u8])>> = b
            .iter()
            .map(|r| r.3.iter().map(|(n, v)| (&n[..], &v[..])).collect())
            .collect();
        let recs: Vec<Record<'_>> = b
            .iter()
            .zip(&hdrs)
            .map(|(r, h)| Record {
                timestamp: r.0,
                key: &r.1,
                value: &r.2,
                headers: h,
            })
            .collect();
        let ack = w.append(&recs, None).unwrap();
        assert_eq!(ack.base_offset, all.len() as u64);
        all.extend(b.iter().cloned());
    }
    all
}

fn read_all_full(
    p: &std::sync::Arc<sluice::log::Partition>,
    from: u64,
) -> Result<Vec<(u64, Rec)>, LogError> {
    let mut r = p.reader();
    let mut out = Vec::new();
    let mut at = from;
    loop {
        let o = r.read(at, 500, 1 << 20, |v| {
            out.push((
                v.offset,
                (
                    v.timestamp,
                    v.key.to_vec(),
                    v.value.to_vec(),
                    v.headers().map(|(n, x)| (n.to_vec(), x.to_vec())).collect(),
                ),
            ))
        })?;
        if o.records == 0 {
            return Ok(out);
        }
        at = o.next_offset;
    }
}

/// (file, base offset, frame end positions) of every segment of the partition.
fn layout(dir: &Path) -> Vec<(PathBuf, u64, Vec<u64>)> {
    segment_files(dir)
        .into_iter()
        .map(|f| {
            let base: u64 = segment_base(&f);
            let bytes = std::fs::read(&f).unwrap();
            let ends = frame_ends(&bytes);
            (f, base, ends)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_batches_read_back_identically_after_reopen(batches in arb_batches()) {
        let dir = tempfile::tempdir().unwrap();
        let all = write_batches(dir.path(), &batches);
        let log = open(dir.path());
        let p = log.topic("p").unwrap().partition(0).clone();
        prop_assert_eq!(p.end_offset(), all.len() as u64);
        let got = read_all_full(&p, 0).unwrap();
        prop_assert_eq!(got.len(), all.len());
        for (i, (off, r)) in got.iter().enumerate() {
            prop_assert_eq!(*off, i as u64);
            prop_assert_eq!(r, &all[i]);
        }
    }

    #[test]
    fn cut_at_any_byte_recovers_exactly_the_complete_records_before_it(
        batches in arb_batches(),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let all = write_batches(dir.path(), &batches);
        let pdir = dir.path().join("topics/p/0");
        let segs = layout(&pdir);
        let si = which.index(segs.len());
        let (file, base, ends) = &segs[si];
        let data_len = ends.last().copied().unwrap_or(0);
        let cut = at.index(data_len as usize + 1) as u64;
        let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let complete = ends.iter().take_while(|e| **e <= cut).count() as u64;
        let intact_end = base + complete;
        let is_last = si + 1 == segs.len();

        let log = open(dir.path());
        let p = log.topic("p").unwrap().partition(0).clone();
        if is_last {
            prop_assert_eq!(p.end_offset(), intact_end);
            let got = read_all_full(&p, 0).unwrap();
            prop_assert_eq!(got.len() as u64, intact_end);
            for (off, r) in &got {
                prop_assert_eq!(r, &all[*off as usize]);
            }
        } else {
            // Records before the cut read back intact.
            let mut r = p.reader();
            let mut got = Vec::new();
            let mut from = 0;
            while from < intact_end {
                let o = r.read(from, 500, 1 << 20, |v| got.push((v.offset, v.value.to_vec()))).unwrap();
                prop_assert!(o.records > 0);
                from = o.next_offset;
            }
            prop_assert_eq!(from, intact_end);
            for (off, v) in &got {
                prop_assert_eq!(v, &all[*off as usize].2);
            }
            let seg_end = base + ends.len() as u64;
            if intact_end < seg_end {
                // The cut record and the rest of that segment are reported, never served.
                prop_assert!(p.damage().iter().any(|d| &d.file == file && d.damage.offset == intact_end));
                let e = p.reader().read(intact_end, 10, 1 << 20, |_| {});
                let is_corrupt = matches!(e, Err(LogError::Corrupt { .. }));
                prop_assert!(is_corrupt, "{:?}", e);
            }
            // Later segments are untouched.
            let rest = read_all_full(&p, seg_end).unwrap();
            prop_assert_eq!(rest.len() as u64, all.len() as u64 - seg_end);
            for (off, r) in &rest {
                prop_assert_eq!(r, &all[*off as usize]);
            }
        }
    }

    // Fuzz: arbitrary contents as the active segment, or as a sealed segment without index.
    #[test]
    fn arbitrary_segment_bytes_never_panic_recovery_or_reads(
        garbage in proptest::collection::vec(any::<u8>(), 0..4096),
        prefix_records in 0u64..30,
        sealed in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open(dir.path());
            let t = log.create_topic(cfg("f", 1, limits::MIN_SEGMENT_BYTES, FsyncPolicy::Never)).unwrap();
            let mut w = t.partition(0).writer().unwrap();
            if prefix_records > 0 {
                let o = owned(0, prefix_records, |i| i as i64);
                w.append(&records(&o), None).unwrap();
            }
        }
        let pdir = dir.path().join("topics/f/0");
        let seg0 = segment_files(&pdir).remove(0);
        let mut bytes = std::fs::read(&seg0).unwrap();
        let data: usize = layout(&pdir)[0].2.last().copied().unwrap_or(0) as usize;
        bytes.truncate(data);
        bytes.extend_from_slice(&garbage);
        std::fs::write(&seg0, &bytes).unwrap();
        if sealed {
            // Make segment 0 sealed by adding a later empty segment after it.
            std::fs::write(pdir.join(format!("{:020}.log", 1u64 << 40)), b"").unwrap();
        }
        let log = open(dir.path());
        let p = log.topic("f").unwrap().partition(0).clone();
        prop_assert!(p.end_offset() >= p.start_offset());
        let _ = read_all_full(&p, 0);
        let _ = p.offset_for_timestamp(5);
        if !sealed {
            // The active segment was cut to valid records only: all prefix records survive.
            prop_assert!(p.end_offset() >= prefix_records);
            let got = read_all_full(&p, 0).unwrap();
            prop_assert_eq!(got.len() as u64, p.end_offset());
            let o = owned(0, 2, |i| i as i64);
            p.writer().unwrap().append(&records(&o), None).unwrap();
        }
    }
}
