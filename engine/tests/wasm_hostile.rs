//! Hostile guests at run time: traps, runaway loops, memory bombs and
//! garbage output each fail their own call with a clear error, deliver no
//! output, and leave the host, other instances and (where it makes sense)
//! the same instance working.

mod wasm_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sluice::wasm::{Emitted, ErrorKind, HostConfig, Instance, PluginError, WasmHost};
use wasm_support::*;

fn good_instance(host: &WasmHost, job: &str) -> Instance {
    let plugin = host
        .load(id("passthrough"), &good_guest())
        .expect("good guest loads");
    plugin.instantiate(label(job), &[]).expect("instantiates")
}

fn hostile_instance(host: &WasmHost, guest: &Guest) -> Instance {
    let plugin = host
        .load(id("hostile"), &guest.wasm())
        .expect("hostile guest passes validation");
    plugin
        .instantiate(label("job-h"), &[])
        .expect("instantiates")
}

fn process_err(inst: &mut Instance, key: &str) -> (PluginError, Emitted) {
    let mut out = Emitted::new();
    let b = batch(&[(100, 1, 2, "ok", b"v"), (101, 2, 2, key, b"")]);
    let err = inst.process(&b, &mut out).expect_err("the call must fail");
    (err, out)
}

/// The instance still processes a normal batch correctly.
fn assert_still_works(inst: &mut Instance) {
    let mut out = Emitted::new();
    inst.process(&batch(&[(7, 70, 0, "after", b"x")]), &mut out)
        .expect("instance still callable");
    let main: Vec<_> = out.iter_output("main").map(|r| r.key.to_vec()).collect();
    assert_eq!(main, vec![b"after".to_vec()]);
}

#[test]
fn trap_fails_only_that_call_and_the_instance_is_callable_again() {
    let host = test_host();
    let mut inst = good_instance(&host, "job-a");
    let mut bystander = good_instance(&host, "job-b");
    let (err, out) = process_err(&mut inst, "trap");
    assert_eq!(err.kind(), ErrorKind::Trap);
    let text = err.to_string();
    assert!(
        text.starts_with(
            "plugin `passthrough@1.0.0` (job `job-a`, operator 0, shard 0) failed in \
             `sluice_process` on records partition 2 offsets 100..=101: wasm trap: wasm \
             `unreachable` instruction executed"
        ),
        "{text}"
    );
    assert!(
        out.is_empty(),
        "the record emitted before the trap must not be delivered"
    );
    assert_still_works(&mut inst);
    assert_still_works(&mut bystander);

    let named = Guest {
        extra: "(func $explode (unreachable))".into(),
        ..Guest::process("(call $explode) (i32.const 0)")
    };
    let err = hostile_instance(&host, &named)
        .process(&batch(&[(0, 0, 0, "k", b"")]), &mut Emitted::new())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("executed (in guest function `explode`)"),
        "{err}"
    );

    let recursive = Guest {
        extra: "(func $deeper (call $deeper))".into(),
        ..Guest::process("(call $deeper) (i32.const 0)")
    };
    let mut inst = hostile_instance(&host, &recursive);
    for _ in 0..2 {
        let err = inst
            .process(&batch(&[(0, 0, 0, "k", b"")]), &mut Emitted::new())
            .unwrap_err();
        assert_fails_with(
            &err,
            ErrorKind::Trap,
            "wasm trap: call stack exhausted (in guest function `deeper`)",
        );
    }

    let mut always = hostile_instance(&host, &Guest::process("unreachable"));
    for _ in 0..3 {
        let err = always
            .process(&batch(&[(0, 0, 0, "k", b"")]), &mut Emitted::new())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Trap);
    }
}

#[test]
fn endless_loop_is_interrupted_at_the_deadline_while_others_run() {
    let host = test_host();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let mut inst = good_instance(&host, "job-b");
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut calls = 0u64;
            while !stop.load(Ordering::Relaxed) || calls == 0 {
                let mut out = Emitted::new();
                inst.process(&batch(&[(calls, 1, 0, "k", b"v")]), &mut out)
                    .expect("bystander works");
                assert_eq!(out.iter_output("main").count(), 1);
                calls += 1;
            }
            calls
        })
    };

    let mut spinner = hostile_instance(&host, &Guest::process("(loop $l (br $l)) (i32.const 0)"));
    let err = spinner
        .process(&batch(&[(5, 1, 1, "k", b"")]), &mut Emitted::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Deadline);
    let text = err.to_string();
    assert!(
        text.contains(
            "failed in `sluice_process` on records partition 1 offsets 5..=5: ran past its CPU \
             deadline of 500ms per call (call_deadline) and was interrupted — make the operator \
             do less work per call"
        ),
        "{text}"
    );

    // The same instance gets a fresh deadline on its next call.
    let err = spinner
        .process(&batch(&[(6, 1, 1, "k", b"")]), &mut Emitted::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Deadline);

    // A guest that loops on one special record recovers on the next batch.
    let mut inst = good_instance(&host, "job-a");
    let (err, out) = process_err(&mut inst, "spin");
    assert_eq!(err.kind(), ErrorKind::Deadline);
    assert!(out.is_empty());
    assert_still_works(&mut inst);

    stop.store(true, Ordering::Relaxed);
    let calls = worker.join().expect("bystander thread did not panic");
    assert!(calls > 0);
}

#[test]
fn memory_bomb_hits_the_memory_limit_and_memory_stays_bounded() {
    let host = test_host();
    let bomb = Guest::process(
        "(block $full (loop $grow
           (br_if $full (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
           (br $grow)))
         unreachable",
    );
    let mut inst = hostile_instance(&host, &bomb);
    for _ in 0..2 {
        let err = inst
            .process(&batch(&[(0, 0, 0, "k", b"")]), &mut Emitted::new())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MemoryLimit);
        let text = err.to_string();
        assert!(
            text.contains(
                "tried to grow its memory to 16.1 MiB, past the limit of 16 MiB per instance \
                 (max_memory_bytes), and then failed: wasm trap: wasm `unreachable` instruction executed"
            ),
            "{text}"
        );
        assert!(text.contains("raise the host's max_memory_bytes"), "{text}");
        assert!(inst.memory_bytes() <= TEST_MEMORY_LIMIT);
    }
    assert_still_works(&mut good_instance(&host, "job-b"));
}

#[test]
fn asking_for_4_gib_is_refused_and_the_instance_goes_on() {
    let host = test_host();
    let mut inst = good_instance(&host, "job-a");
    let before = inst.memory_bytes();
    let (err, out) = process_err(&mut inst, "grow");
    assert_eq!(err.kind(), ErrorKind::MemoryLimit);
    let text = err.to_string();
    assert!(
        text.contains(
            "tried to grow its memory to 4098 MiB, past the limit of 16 MiB per instance"
        ),
        "{text}"
    );
    assert!(text.contains("the plugin said: out of memory"), "{text}");
    assert!(out.is_empty());
    assert_eq!(inst.memory_bytes(), before);
    assert_still_works(&mut inst);
}

#[test]
fn a_refused_growth_the_guest_handles_is_not_an_error() {
    let host = test_host();
    let guest = Guest::process("(drop (memory.grow (i32.const 65536))) (i32.const 0)");
    let mut inst = hostile_instance(&host, &guest);
    inst.process(&batch(&[(0, 0, 0, "k", b"")]), &mut Emitted::new())
        .unwrap();
}

#[test]
fn emit_running_past_its_buffer_is_garbage_output() {
    let host = test_host();
    let mut inst = good_instance(&host, "job-a");
    let (err, out) = process_err(&mut inst, "garbage");
    assert_eq!(err.kind(), ErrorKind::GarbageOutput);
    let text = err.to_string();
    assert!(
        text.contains(
            "failed in `sluice_process` on records partition 2 offsets 100..=101: emitted garbage \
             output: the emit call has a record at byte 0 of its 24-byte buffer with key_len 1000 \
             and value_len 0, running 1000 bytes past the end — fix the plugin so it follows \
             sdk/ABI.md"
        ),
        "{text}"
    );
    assert!(out.is_empty());
    assert_still_works(&mut inst);
}

#[test]
fn bad_output_name_is_garbage_output() {
    let host = test_host();
    let mut inst = good_instance(&host, "job-a");
    let (err, out) = process_err(&mut inst, "badname");
    assert_fails_with(
        &err,
        ErrorKind::GarbageOutput,
        "the emit call names output \"BAD NAME\" (8 bytes); an output name is 1 to 64 bytes \
             of a-z, 0-9, _ or -",
    );
    assert!(out.is_empty());
    assert_still_works(&mut inst);
}

fn hostile_process_err(host: &WasmHost, body: &str) -> PluginError {
    let mut inst = hostile_instance(host, &Guest::process(body));
    inst.process(&batch(&[(0, 0, 0, "k", b"")]), &mut Emitted::new())
        .unwrap_err()
}

#[test]
fn each_abi_violation_in_a_call_gets_its_own_error() {
    let host = test_host();
    let cases = [
        (
            "(call $emit (i32.const 0) (i32.const 4) (i32.const 0x7fffffff) (i32.const 100)) (i32.const 0)",
            ErrorKind::GarbageOutput,
            "passed `sluice.emit` a buffer at 2147483647..+100 outside its 131072-byte memory",
        ),
        (
            "(call $fail (i32.const -16) (i32.const 64)) (i32.const 1)",
            ErrorKind::GarbageOutput,
            "passed `sluice.fail` a message at 4294967280..+64",
        ),
        (
            "(i32.const 7)",
            ErrorKind::GarbageOutput,
            "returned status 7; ABI v1 status is 0 (success) or 1 (failure)",
        ),
        (
            "(i32.const 1)",
            ErrorKind::GuestError,
            "reported failure without a message (it did not call `sluice.fail`)",
        ),
        (
            "(call $metric (i32.const 7) (i32.const 0) (i32.const 1) (i64.const 1)) (i32.const 0)",
            ErrorKind::GarbageOutput,
            "with kind 7; ABI v1 kinds are 0 (counter) and 1 (gauge)",
        ),
    ];
    for (body, kind, fragment) in cases {
        assert_fails_with(&hostile_process_err(&host, body), kind, fragment);
    }
}

#[test]
fn output_beyond_the_per_call_limit_fails_the_call() {
    let host = WasmHost::new(HostConfig {
        max_output_bytes_per_call: 1000,
        ..test_config()
    })
    .unwrap();
    // 42 empty records of 24 bytes fit; the 43rd crosses 1000 bytes.
    let err = hostile_process_err(
        &host,
        "(memory.fill (i32.const 4096) (i32.const 0) (i32.const 1024))
         (i32.store8 (i32.const 0) (i32.const 0x6d))
         (call $emit (i32.const 0) (i32.const 1) (i32.const 4096) (i32.const 1008))
         (i32.const 0)",
    );
    assert_fails_with(
        &err,
        ErrorKind::OutputLimit,
        "emitted 1008 bytes in one call, more than the limit of 1000 bytes per call \
             (max_output_bytes_per_call)",
    );
}

#[test]
fn bad_buffer_and_snapshot_pointers_are_refused() {
    let host = test_host();
    let guest = Guest {
        buffer: r#"(func (export "sluice_buffer") (param i32) (result i32) (i32.const 131070))"#
            .into(),
        snapshot:
            r#"(func (export "sluice_snapshot") (result i64) (i64.const 0x0001fff000000100))"#
                .into(),
        ..Guest::default()
    };
    let mut inst = hostile_instance(&host, &guest);
    let err = inst
        .process(&batch(&[(0, 0, 0, "k", b"")]), &mut Emitted::new())
        .unwrap_err();
    assert_fails_with(
        &err,
        ErrorKind::GarbageOutput,
        "`sluice_buffer(57)` returned 131070, leaving no room for 57 bytes",
    );
    let err = inst.snapshot().unwrap_err();
    assert_fails_with(
        &err,
        ErrorKind::GarbageOutput,
        "returned a snapshot at 131056..+256, outside its 131072-byte memory",
    );

    let guest = Guest {
        buffer: r#"(func (export "sluice_buffer") (param i32) (result i32) (i32.const 0))"#.into(),
        snapshot: r#"(func (export "sluice_snapshot") (result i64) (i64.const -1))"#.into(),
        ..Guest::default()
    };
    let mut inst = hostile_instance(&host, &guest);
    let err = inst
        .process(&batch(&[(0, 0, 0, "k", b"")]), &mut Emitted::new())
        .unwrap_err();
    assert_fails_with(
        &err,
        ErrorKind::GuestError,
        "`sluice_buffer(57)` returned 0: the guest could not allocate room for 57 bytes",
    );
    assert_eq!(inst.snapshot().unwrap_err().kind(), ErrorKind::GuestError);
}

#[test]
fn emit_outside_process_and_on_watermark_is_refused() {
    let host = test_host();
    let guest = Guest {
        imports: ALL_IMPORTS.into(),
        snapshot: r#"(func (export "sluice_snapshot") (result i64)
            (i32.store8 (i32.const 0) (i32.const 0x6d))
            (call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0))
            (i64.const 0))"#
            .into(),
        ..Guest::default()
    };
    let mut inst = hostile_instance(&host, &guest);
    let err = inst.snapshot().unwrap_err();
    assert_fails_with(
        &err,
        ErrorKind::GarbageOutput,
        "failed in `sluice_snapshot`: called `sluice.emit` during `sluice_snapshot`; records \
             may be emitted only during sluice_process and sluice_on_watermark",
    );
}

#[test]
fn start_function_misbehaving_is_refused_at_load() {
    let host = test_host();
    let calls_import = Guest {
        imports: ALL_IMPORTS.into(),
        extra: "(func $start (call $timer (i64.const 5))) (start $start)".into(),
        ..Guest::default()
    };
    let err = host.load(id("starter"), &calls_import.wasm()).unwrap_err();
    assert_fails_with(
        &err,
        ErrorKind::GarbageOutput,
        "called `sluice.timer` while the host was not calling any of its exports (from a start function?)",
    );

    let spins = Guest {
        extra: "(func $start (loop $l (br $l))) (start $start)".into(),
        ..Guest::default()
    };
    let err = host.load(id("spinner"), &spins.wasm()).unwrap_err();
    assert_fails_with(
        &err,
        ErrorKind::Deadline,
        "ran past its CPU deadline of 500ms",
    );

    assert_still_works(&mut good_instance(&host, "job-a"));
}

#[test]
fn deadline_in_init_fails_instantiate() {
    let host = test_host();
    let guest = Guest {
        init: r#"(func (export "sluice_init") (param i32 i32) (result i32) (loop $l (br $l)) (i32.const 0))"#.into(),
        ..Guest::default()
    };
    let plugin = host.load(id("slow-init"), &guest.wasm()).unwrap();
    let err = plugin.instantiate(label("job-a"), &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Deadline);
    assert_eq!(err.function(), Some("sluice_init"));
}
