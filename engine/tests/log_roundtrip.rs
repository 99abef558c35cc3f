//! The log's behaviour on the real file system: round trips, rolls, reads by offset and
//! time, reopen, policies, writer exclusivity, metadata validation, topic deletion.

mod log_common;

use std::time::Duration;

use log_common::*;
use sluice::log::{FsyncPolicy, LogError, Record, Retention, TopicConfig, limits};

#[test]
fn records_round_trip_with_headers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg("events", 2, 1 << 20, FsyncPolicy::Always))
        .unwrap();
    let p = t.partition(1);
    let mut w = p.writer().unwrap();
    let hdrs: &[(&[u8], &[u8])] = &[(b"content-type", b"msgpack"), (b"trace", b"\x00\x01")];
    let batch = [
        Record {
            timestamp: 10,
            key: b"a",
            value: b"\x81\xa1x\x01",
            headers: hdrs,
        },
        Record {
            timestamp: 11,
            key: b"",
            value: b"",
            headers: &[],
        },
    ];
    let ack = w.append_durable(&batch, None).unwrap();
    assert_eq!((ack.base_offset, ack.count, ack.duplicate), (0, 2, false));
    assert_eq!(ack.durability, FsyncPolicy::Always);
    assert!(
        p.durable_offset() >= 2,
        "append_durable under `always` returns after fsync"
    );
    let mut seen = Vec::new();
    let o = p
        .reader()
        .read(0, 10, 1 << 20, |v| {
            seen.push((
                v.offset,
                v.timestamp,
                v.key.to_vec(),
                v.value.to_vec(),
                v.headers()
                    .map(|(n, v)| (n.to_vec(), v.to_vec()))
                    .collect::<Vec<_>>(),
            ))
        })
        .unwrap();
    assert_eq!((o.next_offset, o.records), (2, 2));
    assert_eq!(seen[0].0..seen[0].1 as u64, 0..10);
    assert_eq!(
        seen[0].4,
        vec![
            (b"content-type".to_vec(), b"msgpack".to_vec()),
            (b"trace".to_vec(), vec![0, 1])
        ]
    );
    assert_eq!(
        (seen[1].2.len(), seen[1].3.len(), seen[1].4.len()),
        (0, 0, 0)
    );
    assert_eq!(t.partition(0).end_offset(), 0, "partitions are independent");
}

#[test]
fn segments_roll_by_size_and_reads_cross_them_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    {
        let log = open(dir.path());
        let t = log
            .create_topic(cfg(
                "roll",
                1,
                limits::MIN_SEGMENT_BYTES,
                FsyncPolicy::Never,
            ))
            .unwrap();
        let mut w = t.partition(0).writer().unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(37) {
            let o = owned(chunk[0], chunk.len() as u64, |i| i as i64);
            w.append(&records(&o), None).unwrap();
        }
        let p = t.partition(0);
        assert_records(&read_from(p, 0), 0, n);
        assert_records(&read_from(p, 1234), 1234, n);
    }
    let pdir = dir.path().join("topics/roll/0");
    let segs = segment_files(&pdir);
    assert!(
        segs.len() > 10,
        "expected many segments, got {}",
        segs.len()
    );
    for s in &segs[..segs.len() - 1] {
        let len = std::fs::metadata(s).unwrap().len();
        assert!(
            len <= limits::MIN_SEGMENT_BYTES,
            "{} is {len} bytes",
            s.display()
        );
        assert!(s.with_extension("index").exists() && s.with_extension("timeindex").exists());
    }
    let log = open(dir.path());
    let p = log.topic("roll").unwrap().partition(0).clone();
    assert_eq!((p.start_offset(), p.end_offset()), (0, n));
    for from in [0, 1, 999, 2998, 2999] {
        assert_records(&read_from(&p, from), from, n);
    }
    // Appending after reopen continues the offsets.
    let o = owned(n, 5, |i| i as i64);
    let ack = p.writer().unwrap().append(&records(&o), None).unwrap();
    assert_eq!(ack.base_offset, n);
    assert_records(&read_from(&p, n - 3), n - 3, n + 5);
}

#[test]
fn reads_respect_record_and_byte_limits_and_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg("lim", 1, 1 << 20, FsyncPolicy::Never))
        .unwrap();
    let p = t.partition(0);
    let o = owned(0, 100, |i| i as i64);
    p.writer().unwrap().append(&records(&o), None).unwrap();
    let mut r = p.reader();
    let out = r.read(10, 7, usize::MAX, |_| {}).unwrap();
    assert_eq!((out.next_offset, out.records), (17, 7));
    let out = r.read(17, 1000, 1, |_| {}).unwrap();
    assert_eq!(out.records, 1, "at least one record even over max_bytes");
    let out = r.read(100, 10, 1 << 20, |_| {}).unwrap();
    assert_eq!((out.next_offset, out.records), (100, 0));
    match r.read(101, 10, 1 << 20, |_| {}) {
        Err(LogError::OffsetOutOfRange {
            requested: 101,
            start: 0,
            end: 100,
            ..
        }) => {}
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
}

/// Appends `batches` batches of `per_batch` records to partition 0 of a new topic with
/// `segment_bytes` segments, reading each back right after it is appended; checks every
/// batch is read in full and returns the partition's size in bytes.
fn tail(segment_bytes: u64, batches: u64, per_batch: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg("tail", 1, segment_bytes, FsyncPolicy::Never))
        .unwrap();
    let p = t.partition(0).clone();
    let mut w = p.writer().unwrap();
    let mut r = p.reader();
    let (mut next, mut seen) = (0, Vec::new());
    for b in 0..batches {
        let o = owned(b * per_batch, per_batch, |i| i as i64);
        w.append(&records(&o), None).unwrap();
        let out = r
            .read(next, usize::MAX, usize::MAX, |v| {
                seen.push(Got {
                    offset: v.offset,
                    timestamp: v.timestamp,
                    key: v.key.to_vec(),
                    value: v.value.to_vec(),
                })
            })
            .unwrap();
        next = out.next_offset;
        assert_eq!(next, (b + 1) * per_batch, "batch {b} read in full");
    }
    assert_records(&seen, 0, batches * per_batch);
    p.size_bytes()
}

#[test]
fn tailing_reader_sees_new_appends() {
    tail(limits::MIN_SEGMENT_BYTES, 200, 10);
}

#[test]
fn tailing_reader_follows_a_segment_past_several_map_reaches() {
    // Segments larger than a few doublings of the smallest map: the reader re-maps as
    // the writer outgrows each map, and across rolls.
    let segment_bytes = 8 * limits::MIN_MAP_BYTES;
    let size = tail(segment_bytes, 1_500, 100);
    assert!(size > 2 * segment_bytes, "rolled at least twice");
}

#[test]
fn offset_for_timestamp_finds_first_record_at_or_after_even_when_unordered() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg(
            "time",
            1,
            limits::MIN_SEGMENT_BYTES,
            FsyncPolicy::Never,
        ))
        .unwrap();
    let p = t.partition(0);
    // Mostly increasing timestamps with jitter going backwards.
    let ts = |i: u64| (i as i64) * 10 - if i % 7 == 3 { 55 } else { 0 };
    let n = 2000;
    let mut w = p.writer().unwrap();
    for c in 0..(n / 50) {
        let o = owned(c * 50, 50, ts);
        w.append(&records(&o), None).unwrap();
    }
    for target in [-1000, 0, 5, 1000, 4567, 12_345, 19_980, 19_990, 50_000] {
        let want = (0..n).find(|&i| ts(i) >= target).unwrap_or(n);
        assert_eq!(
            p.offset_for_timestamp(target).unwrap(),
            want,
            "target {target}"
        );
    }
    drop(w);
    drop(log);
    let log = open(dir.path());
    let p = log.topic("time").unwrap().partition(0).clone();
    let want = (0..n).find(|&i| ts(i) >= 7_001).unwrap();
    assert_eq!(
        p.offset_for_timestamp(7_001).unwrap(),
        want,
        "after reopen (loaded time index)"
    );
}

#[test]
fn one_writer_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg("w", 1, 1 << 20, FsyncPolicy::Never))
        .unwrap();
    let w = t.partition(0).writer().unwrap();
    let err = t
        .partition(0)
        .writer()
        .err()
        .expect("second writer refused");
    assert!(err.to_string().contains("already has a writer"), "{err}");
    drop(w);
    t.partition(0).writer().expect("free again once dropped");
}

#[test]
fn interval_policy_becomes_durable_on_the_syncers_tick() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg("iv", 1, 1 << 20, FsyncPolicy::Interval { ms: 5 }))
        .unwrap();
    let p = t.partition(0).clone();
    let mut watch = p.durable_watch();
    let o = owned(0, 10, |i| i as i64);
    let ack = p
        .writer()
        .unwrap()
        .append_durable(&records(&o), None)
        .unwrap();
    assert_eq!(ack.durability, FsyncPolicy::Interval { ms: 5 });
    assert!(
        p.wait_durable(10, Duration::from_secs(30)),
        "syncer made it durable"
    );
    assert_eq!(*watch.borrow_and_update(), 10);
}

#[test]
fn never_policy_is_durable_only_after_explicit_sync() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg("nv", 1, 1 << 20, FsyncPolicy::Never))
        .unwrap();
    let p = t.partition(0).clone();
    let mut w = p.writer().unwrap();
    let o = owned(0, 10, |i| i as i64);
    let ack = w.append_durable(&records(&o), None).unwrap();
    assert_eq!(ack.durability, FsyncPolicy::Never);
    assert_eq!(p.durable_offset(), 0);
    w.sync().unwrap();
    assert_eq!(p.durable_offset(), 10);
}

#[test]
fn always_policy_group_commits_across_writers() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg("gc", 4, 1 << 20, FsyncPolicy::Always))
        .unwrap();
    std::thread::scope(|s| {
        for p in t.partitions() {
            s.spawn(move || {
                let mut w = p.writer().unwrap();
                for b in 0..50 {
                    let o = owned(b * 4, 4, |i| i as i64);
                    let ack = w.append_durable(&records(&o), None).unwrap();
                    assert!(p.durable_offset() >= ack.base_offset + 4);
                }
            });
        }
    });
    for p in t.partitions() {
        assert_eq!(p.durable_offset(), 200);
    }
}

#[test]
fn invalid_topic_settings_are_refused_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let cases: Vec<(TopicConfig, &str)> = vec![
        (TopicConfig::new("", 1), "empty"),
        (TopicConfig::new(".", 1), "reserved"),
        (TopicConfig::new("..", 1), "reserved"),
        (TopicConfig::new("a/b", 1), "'/' is not allowed"),
        (TopicConfig::new("héllo", 1), "not allowed"),
        (
            TopicConfig::new("x".repeat(129), 1),
            "MAX_TOPIC_NAME_BYTES = 128",
        ),
        (TopicConfig::new("zero", 0), "at least 1 partition"),
        (TopicConfig::new("many", 4097), "MAX_PARTITIONS = 4096"),
        (cfg("tiny", 1, 100, FsyncPolicy::Never), "MIN_SEGMENT_BYTES"),
        (
            cfg("huge", 1, 1 << 40, FsyncPolicy::Never),
            "MAX_SEGMENT_BYTES",
        ),
        (
            cfg("iv0", 1, 1 << 20, FsyncPolicy::Interval { ms: 0 }),
            "fsync interval 0 ms",
        ),
        (
            TopicConfig {
                retention: Retention {
                    max_age_ms: None,
                    max_bytes: Some(10),
                },
                ..cfg("ret", 1, 1 << 20, FsyncPolicy::Never)
            },
            "at least one segment",
        ),
    ];
    for (c, want) in cases {
        let name = c.name.clone();
        let err = log
            .create_topic(c)
            .err()
            .unwrap_or_else(|| panic!("`{name}` accepted"));
        let msg = err.to_string();
        assert!(
            msg.contains(want),
            "`{name}`: message {msg:?} lacks {want:?}"
        );
    }
    assert!(TopicConfig::new("ok.Name_-1", 1).validate().is_ok());
    log.create_topic(cfg("dup", 1, 1 << 20, FsyncPolicy::Never))
        .unwrap();
    let err = log
        .create_topic(cfg("dup", 1, 1 << 20, FsyncPolicy::Never))
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(log.topics().iter().map(|t| t.name()).eq(["dup"]));
}

#[test]
fn topic_metadata_persists_and_damaged_metadata_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let c = TopicConfig {
        retention: Retention {
            max_age_ms: Some(60_000),
            max_bytes: None,
        },
        ..cfg("meta", 3, 1 << 20, FsyncPolicy::Interval { ms: 7 })
    };
    {
        let log = open(dir.path());
        log.create_topic(c.clone()).unwrap();
    }
    {
        let log = open(dir.path());
        assert_eq!(log.topic("meta").unwrap().config(), &c);
        assert_eq!(log.topic("meta").unwrap().partitions().len(), 3);
    }
    let path = dir.path().join("topics/meta/topic.json");
    let json = std::fs::read_to_string(&path).unwrap();
    assert!(json.contains(r#""interval_ms": 7"#), "{json}");
    std::fs::write(
        &path,
        json.replace("\"partitions\": 3", "\"partitions\": 0"),
    )
    .unwrap();
    let err = sluice::log::Log::open(dir.path(), Default::default())
        .err()
        .unwrap();
    let msg = err.to_string();
    assert!(
        msg.contains("topic.json") && msg.contains("at least 1 partition"),
        "{msg}"
    );
}

#[test]
fn second_open_of_a_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _log = open(dir.path());
    let err = sluice::log::Log::open(dir.path(), Default::default())
        .err()
        .unwrap();
    assert!(matches!(err, LogError::Locked { .. }), "{err}");
}

#[test]
fn deleted_topic_is_gone_after_reopen_and_its_writer_fails() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg("gone", 2, 1 << 20, FsyncPolicy::Never))
        .unwrap();
    let mut w = t.partition(0).writer().unwrap();
    let o = owned(0, 10, |i| i as i64);
    w.append(&records(&o), None).unwrap();
    assert!(log.total_bytes() > 0);
    log.delete_topic("gone").unwrap();
    assert_eq!(log.total_bytes(), 0);
    assert!(log.topic("gone").is_none());
    assert!(matches!(
        w.append(&records(&o), None),
        Err(LogError::TopicDeleted(_))
    ));
    assert!(matches!(
        log.delete_topic("gone"),
        Err(LogError::UnknownTopic(_))
    ));
    drop(w);
    drop(t);
    drop(log);
    let log = open(dir.path());
    assert!(log.topics().is_empty());
    assert!(!dir.path().join("topics/gone").exists());
    log.create_topic(cfg("gone", 1, 1 << 20, FsyncPolicy::Never))
        .unwrap();
}

#[test]
fn oversized_batches_name_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg("big", 1, 1 << 20, FsyncPolicy::Never))
        .unwrap();
    let mut w = t.partition(0).writer().unwrap();
    let big = vec![0u8; limits::MAX_RECORD_BYTES];
    let r = [Record {
        timestamp: 0,
        key: b"",
        value: &big,
        headers: &[],
    }];
    let msg = w.append(&r, None).unwrap_err().to_string();
    assert!(msg.contains("MAX_RECORD_BYTES"), "{msg}");
    let many = vec![
        Record {
            timestamp: 0,
            key: b"",
            value: b"",
            headers: &[]
        };
        limits::MAX_BATCH_RECORDS + 1
    ];
    let msg = w.append(&many, None).unwrap_err().to_string();
    assert!(msg.contains("MAX_BATCH_RECORDS"), "{msg}");
    let mid = vec![0u8; 3 << 20];
    let r = vec![
        Record {
            timestamp: 0,
            key: b"",
            value: &mid,
            headers: &[]
        };
        6
    ];
    let msg = w.append(&r, None).unwrap_err().to_string();
    assert!(msg.contains("MAX_BATCH_BYTES"), "{msg}");
    assert!(matches!(
        w.append(&[], None),
        Err(LogError::EmptyBatch { .. })
    ));
    assert_eq!(t.partition(0).end_offset(), 0);
}

#[test]
fn rolled_segments_are_sealed_durably_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg(
            "seal",
            1,
            limits::MIN_SEGMENT_BYTES,
            FsyncPolicy::Never,
        ))
        .unwrap();
    let p = t.partition(0).clone();
    let mut w = p.writer().unwrap();
    for b in 0..50 {
        let o = owned(b * 20, 20, |i| i as i64);
        w.append(&records(&o), None).unwrap();
    }
    let pdir = dir.path().join("topics/seal/0");
    let segs = segment_files(&pdir);
    assert!(segs.len() > 3);
    let last_base: u64 = segment_base(segs.last().unwrap());
    // Even under `never`, a roll queues the sealed segment for the syncer, which fsyncs it
    // and then writes its index files; the durable offset covers it afterwards. (The waits
    // are liveness bounds, not speed checks.)
    assert!(p.wait_durable(last_base, Duration::from_secs(30)));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let sealed = &segs[..segs.len() - 1];
    while !sealed
        .iter()
        .all(|s| s.with_extension("timeindex").exists())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "syncer never sealed {sealed:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(sealed.iter().all(|s| s.with_extension("index").exists()));
    assert!(
        !segs.last().unwrap().with_extension("index").exists(),
        "the active segment has none"
    );
}

#[test]
fn concurrent_reader_sees_only_whole_records_through_appends_and_truncations() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let t = log
        .create_topic(cfg(
            "race",
            1,
            limits::MIN_SEGMENT_BYTES,
            FsyncPolicy::Never,
        ))
        .unwrap();
    let p = t.partition(0).clone();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut w = p.writer().unwrap();
            // Content depends only on the offset, so re-appending after a truncation writes
            // the same records again: a reader may see any of them, never a torn one.
            for round in 0..300u64 {
                let from = p.end_offset();
                let o = owned(from, 1 + round % 37, |i| i as i64);
                w.append(&records(&o), None).unwrap();
                if round % 10 == 9 {
                    let end = p.end_offset();
                    w.truncate(end - end.min(25)).unwrap();
                }
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        s.spawn(|| {
            let mut r = p.reader();
            let mut at = 0;
            let mut seen = 0u64;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                let end = p.end_offset();
                at = at.min(end);
                match r.read(at, 100, 1 << 20, |v| {
                    assert_eq!(v.key, key(v.offset));
                    assert_eq!(v.value, value(v.offset), "offset {}", v.offset);
                    seen += 1;
                }) {
                    Ok(o) => at = o.next_offset,
                    // The end moved below `at` between our look and the read.
                    Err(LogError::OffsetOutOfRange { .. }) => at = 0,
                    Err(e) => panic!("reader failed during appends/truncations: {e}"),
                }
                if finished && at == p.end_offset() {
                    break;
                }
            }
            assert!(seen > 0);
        });
    });
    assert_records(&read_from(&p, 0), 0, p.end_offset());
}
