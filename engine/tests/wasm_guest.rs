//! A well-behaved ABI v1 guest (hand-written WAT) driven through the host:
//! batch encoding, emit decoding, timers, metrics, fail messages, snapshot
//! and restore, watermarks.

mod wasm_support;

use sluice::wasm::{Batch, Emitted, ErrorKind, Instance, MetricKind, WasmHost};
use wasm_support::*;

fn instance(host: &WasmHost, config: &[u8]) -> Instance {
    let plugin = host
        .load(id("passthrough"), &good_guest())
        .expect("good guest loads");
    plugin
        .instantiate(label("job-a"), config)
        .expect("instantiates")
}

fn metrics(inst: &mut Instance) -> Vec<(MetricKind, String, i64)> {
    let mut all = Vec::new();
    inst.drain_metrics(|kind, name, value| all.push((kind, name.to_string(), value)));
    all
}

#[test]
fn records_pass_through_with_batch_encoding_intact() {
    let host = test_host();
    let mut inst = instance(&host, &[]);
    let mut batch = Batch::default();
    batch.set_watermark(900);
    batch
        .push(41, 1_000, 900, 3, 0, b"alice", b"\x91\x01")
        .unwrap();
    batch.push(42, 2_000, 901, 3, 0, b"", b"").unwrap();
    batch.push(7, 1_500, 902, 9, 2, b"bob", b"\xa3xyz").unwrap();
    let mut out = Emitted::new();
    inst.process(&batch, &mut out).unwrap();

    let main: Vec<_> = out
        .iter_output("main")
        .map(|r| (r.timestamp, r.key, r.value))
        .collect();
    assert_eq!(
        main,
        vec![
            (1_000, &b"alice"[..], &b"\x91\x01"[..]),
            (2_000, b"", b""),
            (1_500, b"bob", b"\xa3xyz")
        ]
    );
    // Each output carries the tag of the record it came from.
    let tags: Vec<i64> = out.iter_output("main").map(|r| r.watermark).collect();
    assert_eq!(tags, vec![900, 901, 902]);
    // The guest echoes each record header: offset, partition, source, reserved.
    let headers: Vec<_> = out
        .iter_output("headers")
        .map(|r| {
            let k = r.key;
            (
                u64::from_le_bytes(k[0..8].try_into().unwrap()),
                u32::from_le_bytes(k[8..12].try_into().unwrap()),
                u16::from_le_bytes(k[12..14].try_into().unwrap()),
                u16::from_le_bytes(k[14..16].try_into().unwrap()),
            )
        })
        .collect();
    assert_eq!(headers, vec![(41, 3, 0, 0), (42, 3, 0, 0), (7, 9, 2, 0)]);
    assert_eq!(out.outputs().collect::<Vec<_>>(), vec!["main", "headers"]);
    // Emission order across outputs: all of `main`, then all of `headers`.
    let order: Vec<_> = out.iter().map(|r| r.output).collect();
    assert_eq!(
        order,
        ["main", "main", "main", "headers", "headers", "headers"]
    );

    let m = metrics(&mut inst);
    assert!(
        m.contains(&(MetricKind::Gauge, "batch_watermark".into(), 900)),
        "{m:?}"
    );
    assert!(
        m.contains(&(MetricKind::Counter, "records_in".into(), 3)),
        "{m:?}"
    );
}

#[test]
fn config_names_a_key_the_guest_drops() {
    let host = test_host();
    let mut inst = instance(&host, &msgpack_str("spam"));
    let mut out = Emitted::new();
    let b = batch(&[
        (0, 1, 0, "ham", b"1"),
        (1, 2, 0, "spam", b"2"),
        (2, 3, 0, "eggs", b"3"),
    ]);
    inst.process(&b, &mut out).unwrap();
    let keys: Vec<_> = out.iter_output("main").map(|r| r.key.to_vec()).collect();
    assert_eq!(keys, vec![b"ham".to_vec(), b"eggs".to_vec()]);
}

#[test]
fn bad_config_fails_init_with_the_guest_message() {
    let host = test_host();
    let plugin = host.load(id("passthrough"), &good_guest()).unwrap();
    let err = plugin.instantiate(label("job-a"), &[0x2a]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestError);
    assert_eq!(err.function(), Some("sluice_init"));
    let text = err.to_string();
    assert!(
        text.starts_with(
            "plugin `passthrough@1.0.0` (job `job-a`, operator 0, shard 0) failed in `sluice_init`: \
             reported failure; the plugin said: config must be a MessagePack string"
        ),
        "{text}"
    );
}

#[test]
fn outputs_accumulate_across_successful_calls() {
    let host = test_host();
    let mut inst = instance(&host, &[]);
    let mut out = Emitted::new();
    inst.process(&batch(&[(0, 10, 0, "a", b"")]), &mut out)
        .unwrap();
    inst.process(&batch(&[(1, 20, 0, "b", b"")]), &mut out)
        .unwrap();
    let ts: Vec<_> = out.iter_output("main").map(|r| r.timestamp).collect();
    assert_eq!(ts, vec![10, 20]);
    out.clear();
    inst.process(&Batch::default(), &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn timer_keeps_the_earliest_request_until_on_watermark() {
    let host = test_host();
    let mut inst = instance(&host, &[]);
    let mut out = Emitted::new();
    assert_eq!(inst.next_timer(), None);
    inst.process(
        &batch(&[(0, 5_000, 0, "a", b""), (1, 3_000, 0, "b", b"")]),
        &mut out,
    )
    .unwrap();
    assert_eq!(inst.next_timer(), Some(4_000));
    inst.process(&batch(&[(2, 9_000, 0, "c", b"")]), &mut out)
        .unwrap();
    assert_eq!(inst.next_timer(), Some(4_000));
    // The request is forgotten just before the call; this guest does not
    // re-request, so none is left.
    inst.on_watermark(4_000, &mut out).unwrap();
    assert_eq!(inst.next_timer(), None);
}

#[test]
fn on_watermark_emits_reports_a_gauge_and_failure_keeps_the_timer() {
    let host = test_host();
    let mut inst = instance(&host, &[]);
    let mut out = Emitted::new();
    inst.process(
        &batch(&[(0, 100, 0, "a", b""), (1, 200, 0, "b", b"")]),
        &mut out,
    )
    .unwrap();
    out.clear();
    metrics(&mut inst);

    let err = inst.on_watermark(666, &mut out).unwrap_err();
    assert_fails_with(
        &err,
        ErrorKind::GuestError,
        "failed in `sluice_on_watermark`: reported failure; the plugin said: watermark 666 is cursed",
    );
    assert_eq!(
        inst.next_timer(),
        Some(1_100),
        "a failed call must not lose the pending timer"
    );

    inst.on_watermark(1_100, &mut out).unwrap();
    let fired = outputs(&out);
    let mut value = vec![0xcf];
    value.extend_from_slice(&2u64.to_be_bytes());
    assert_eq!(
        fired,
        vec![("fired".to_string(), 1_100, b"wm".to_vec(), value)]
    );
    assert_eq!(
        metrics(&mut inst),
        vec![(MetricKind::Gauge, "watermark".into(), 1_100)]
    );
}

#[test]
fn failed_call_delivers_nothing_names_its_records_and_the_instance_goes_on() {
    let host = test_host();
    let mut inst = instance(&host, &[]);
    let mut out = Emitted::new();
    inst.process(&batch(&[(0, 1, 0, "first", b"")]), &mut out)
        .unwrap();
    metrics(&mut inst);
    let before = outputs(&out);

    // The guest emits the two good records and reports `records_in` before failing.
    let b = batch(&[
        (10, 1, 4, "x", b""),
        (11, 2, 4, "y", b""),
        (12, 3, 4, "fail", b""),
    ]);
    let err = inst.process(&b, &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::GuestError);
    assert_eq!(
        err.to_string(),
        "plugin `passthrough@1.0.0` (job `job-a`, operator 0, shard 0) failed in `sluice_process` \
         on records partition 4 offsets 10..=12: reported failure; the plugin said: record with \
         key `fail` is refused by the test guest — fix the input or the plugin's configuration as \
         the message says"
    );
    assert_eq!(err.records().len(), 1);
    assert_eq!(
        outputs(&out),
        before,
        "outputs of a failed call must not be delivered"
    );
    assert_eq!(
        inst.next_timer(),
        Some(1_001),
        "timers of a failed call are dropped"
    );
    assert!(
        metrics(&mut inst).is_empty(),
        "metrics of a failed call are dropped"
    );

    inst.process(&batch(&[(13, 4, 4, "z", b"")]), &mut out)
        .unwrap();
    assert_eq!(out.iter_output("main").count(), 2);
}

#[test]
fn snapshot_and_restore_round_trip_into_a_new_instance() {
    let host = test_host();
    let mut first = instance(&host, &[]);
    let mut out = Emitted::new();
    first
        .process(
            &batch(&[
                (0, 1, 0, "a", b""),
                (1, 2, 0, "b", b""),
                (2, 3, 0, "c", b""),
            ]),
            &mut out,
        )
        .unwrap();
    let snapshot = first.snapshot().unwrap();
    assert_eq!(snapshot, 3u64.to_le_bytes());

    let mut second = instance(&host, &[]);
    second.restore(&snapshot).unwrap();
    out.clear();
    second.on_watermark(50, &mut out).unwrap();
    let value = out.iter().next().unwrap().value.to_vec();
    assert_eq!(
        value[1..],
        3u64.to_be_bytes(),
        "the restored state counts three records"
    );
    assert_eq!(second.snapshot().unwrap(), snapshot);
}

#[test]
fn restore_refusals_are_reported() {
    let host = test_host();
    let mut inst = instance(&host, &[]);
    let err = inst.restore(b"short").unwrap_err();
    assert_fails_with(
        &err,
        ErrorKind::GuestError,
        "failed in `sluice_restore`: reported failure; the plugin said: snapshot must be exactly 8 bytes",
    );

    let mut used = instance(&host, &[]);
    used.process(&Batch::default(), &mut Emitted::new())
        .unwrap();
    let err = used.restore(&0u64.to_le_bytes()).unwrap_err();
    assert_fails_with(&err, ErrorKind::Usage, "restore right after instantiate");
}

#[test]
fn log_lines_beyond_the_rate_limit_are_dropped_and_counted() {
    let host = WasmHost::new(sluice::wasm::HostConfig {
        log_lines_per_second: 5,
        ..test_config()
    })
    .unwrap();
    let mut inst = instance(&host, &[]);
    assert_eq!(inst.logs_suppressed(), 0);
    // One record with key `log` makes the guest write 20 lines in one call.
    inst.process(&batch(&[(0, 1, 0, "log", b"")]), &mut Emitted::new())
        .unwrap();
    assert!(inst.logs_suppressed() > 0);
}

#[test]
fn memory_bytes_reports_the_guest_memory() {
    let host = test_host();
    let inst = instance(&host, &[]);
    assert_eq!(inst.memory_bytes(), 32 * 64 * 1024);
}

#[test]
fn module_info_describes_the_module() {
    let host = test_host();
    let bytes = good_guest();
    let info = host.validate(&id("passthrough"), &bytes).unwrap();
    use sha2::Digest;
    assert_eq!(info.digest, hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(info.size, bytes.len());
    assert_eq!(info.abi_version, 1);
    assert_eq!(
        info.imports,
        [
            "sluice::emit",
            "sluice::timer",
            "sluice::log",
            "sluice::metric",
            "sluice::fail"
        ]
    );
    for export in [
        "memory",
        "sluice_process",
        "sluice_snapshot",
        "sluice_restore",
    ] {
        assert!(
            info.exports.iter().any(|e| e == export),
            "{export} missing from {:?}",
            info.exports
        );
    }
}

#[test]
fn empty_config_still_comes_through_sluice_buffer() {
    let host = test_host();
    // init succeeds only when handed the pointer sluice_buffer returned.
    let strict = Guest {
        init: r#"(func (export "sluice_init") (param $ptr i32) (param $len i32) (result i32)
            (i32.eqz (i32.and (i32.eq (local.get $ptr) (i32.const 1024)) (i32.eqz (local.get $len)))))"#
            .into(),
        ..Guest::default()
    };
    let plugin = host.load(id("strict"), &strict.wasm()).unwrap();
    plugin
        .instantiate(label("job-a"), &[])
        .expect("init saw (1024, 0)");
    // A guest that answers 0 for an empty buffer is fine too.
    let zero = Guest {
        buffer: r#"(func (export "sluice_buffer") (param i32) (result i32) (i32.const 0))"#.into(),
        ..Guest::default()
    };
    let plugin = host.load(id("zero"), &zero.wasm()).unwrap();
    plugin
        .instantiate(label("job-a"), &[])
        .unwrap()
        .restore(&[])
        .unwrap();
}
