//! Real WebAssembly guests for the `wasm_*` tests, written in WAT and
//! compiled with the `wat` crate: a well-behaved ABI v1 pass-through/filter
//! operator (`good_guest`) and a builder for minimal and hostile modules
//! (`Guest`). They follow `sdk/ABI.md` byte for byte.
#![allow(dead_code)]

use std::time::Duration;

use sluice::wasm::{Batch, Emitted, HostConfig, InstanceLabel, PluginId, WasmHost};

/// Memory limit of test hosts.
pub const TEST_MEMORY_LIMIT: usize = 16 << 20;

/// A host with a short deadline so runaway-loop tests finish quickly, yet
/// long enough that a busy machine never interrupts a well-behaved call.
pub fn test_host() -> WasmHost {
    WasmHost::new(test_config()).expect("test host starts")
}

pub fn test_config() -> HostConfig {
    HostConfig {
        max_memory_bytes: TEST_MEMORY_LIMIT,
        call_deadline: Duration::from_millis(500),
        epoch_tick: Duration::from_millis(5),
        ..HostConfig::default()
    }
}

pub fn id(name: &str) -> PluginId {
    PluginId::new(name, "1.0.0")
}

pub fn label(job: &str) -> InstanceLabel {
    InstanceLabel::new(job, 0, 0)
}

/// The MessagePack encoding of a string (what the engine sends as config).
pub fn msgpack_str(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    rmp::encode::write_str(&mut out, s).expect("encoding into a Vec cannot fail");
    out
}

/// One input record: (offset, timestamp, partition, key, value).
pub type Rec<'a> = (u64, i64, u32, &'a str, &'a [u8]);

pub fn batch(records: &[Rec<'_>]) -> Batch {
    let mut batch = Batch::default();
    for &(offset, ts, partition, key, value) in records {
        batch
            .push(offset, ts, ts - 4_000, partition, 0, key.as_bytes(), value)
            .expect("fits");
    }
    batch
}

/// (output, timestamp, key, value) of every emitted record.
pub fn outputs(out: &Emitted) -> Vec<(String, i64, Vec<u8>, Vec<u8>)> {
    out.iter()
        .map(|r| {
            (
                r.output.to_string(),
                r.timestamp,
                r.key.to_vec(),
                r.value.to_vec(),
            )
        })
        .collect()
}

// Memory layout of the good guest.
const STATE_DROP_LEN: u32 = 1032; // i32: length of the key to drop
const STATE_DROP_KEY: u32 = 1040; // up to 31 bytes
const SCRATCH: u32 = 4096;
const WM_RECORD: u32 = 8192;
const INPUT: u32 = 65536;
const INPUT_CAP: u32 = 512 * 1024;
const MAIN_OUT: u32 = 640 * 1024;
const HDR_OUT: u32 = 1152 * 1024;

/// Strings the good guest uses, placed from address 16 on.
const STRINGS: &[(&str, &str)] = &[
    ("main", "main"),
    ("headers", "headers"),
    ("fired", "fired"),
    ("bad_name", "BAD NAME"),
    ("records_in", "records_in"),
    ("batch_watermark", "batch_watermark"),
    ("watermark", "watermark"),
    (
        "bad_config",
        "config must be a MessagePack string of at most 31 bytes",
    ),
    (
        "fail_msg",
        "record with key `fail` is refused by the test guest",
    ),
    ("oom", "out of memory"),
    ("wm_fail", "watermark 666 is cursed"),
    ("wm_log", "watermark advanced"),
    ("log_line", "processing a record with key log"),
    ("bad_snapshot", "snapshot must be exactly 8 bytes"),
    ("key_trap", "trap"),
    ("key_fail", "fail"),
    ("key_spin", "spin"),
    ("key_grow", "grow"),
    ("key_garbage", "garbage"),
    ("key_badname", "badname"),
    ("key_log", "log"),
];

/// Replaces each `<<name>>` with `(i32.const ptr) (i32.const len)` of that
/// string, and appends the data segments.
fn with_strings(template: &str) -> String {
    let mut wat = template.to_string();
    let mut data = String::new();
    let mut at = 16u32;
    for (name, text) in STRINGS {
        wat = wat.replace(
            &format!("<<{name}>>"),
            &format!("(i32.const {at}) (i32.const {})", text.len()),
        );
        data.push_str(&format!("  (data (i32.const {at}) \"{text}\")\n"));
        at += (text.len() as u32).next_multiple_of(8);
    }
    assert!(at < STATE_DROP_LEN, "strings overlap the state");
    assert!(!wat.contains("<<"), "unknown string in template");
    wat.replace(";;DATA", &data)
}

/// The well-behaved test operator. Per record of a batch it emits the
/// record unchanged to `main` and a record to `headers` whose key is 16
/// raw header bytes (offset, then partition, source, reserved); it requests a
/// timer at `ts + 1000`, and reports the counter `records_in` and the gauge
/// `batch_watermark`. A MessagePack string config names a key to drop.
/// Special keys misbehave: `trap`, `fail`, `spin`, `grow` (4 GiB),
/// `garbage` (emit running past the end), `badname`, `log` (20 lines). Each
/// first emits what the batch produced so far. `on_watermark(wm)` emits one
/// record (`fired`, ts = wm, key `wm`, value = MessagePack u64 of records
/// seen) and fails for wm = 666. The snapshot is the count of records seen.
pub fn good_guest() -> Vec<u8> {
    let template = format!(
        r#"(module
  (import "sluice" "emit" (func $emit (param i32 i32 i32 i32)))
  (import "sluice" "timer" (func $timer (param i64)))
  (import "sluice" "log" (func $log (param i32 i32 i32)))
  (import "sluice" "metric" (func $metric (param i32 i32 i32 i64)))
  (import "sluice" "fail" (func $fail (param i32 i32)))
  (memory (export "memory") 32)
;;DATA
  (global $count (mut i64) (i64.const 0))
  (global $m (mut i32) (i32.const 0))
  (global $h (mut i32) (i32.const 0))
  (global $n (mut i64) (i64.const 0))

  (func (export "sluice_abi_version") (result i32) (i32.const 1))

  (func (export "sluice_buffer") (param $len i32) (result i32)
    (if (result i32) (i32.gt_u (local.get $len) (i32.const {INPUT_CAP}))
      (then (i32.const 0)) (else (i32.const {INPUT}))))

  (func $eq (param $a i32) (param $alen i32) (param $b i32) (param $blen i32) (result i32)
    (local $i i32)
    (if (i32.ne (local.get $alen) (local.get $blen)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $alen)))
        (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $i)))
                    (i32.load8_u (i32.add (local.get $b) (local.get $i))))
          (then (return (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 1))

  (func (export "sluice_init") (param $ptr i32) (param $len i32) (result i32)
    (local $b i32)
    (i32.store (i32.const {STATE_DROP_LEN}) (i32.const 0))
    (if (i32.eqz (local.get $len)) (then (return (i32.const 0))))
    (local.set $b (i32.load8_u (local.get $ptr)))
    (if (i32.or
          (i32.ne (i32.and (local.get $b) (i32.const 0xe0)) (i32.const 0xa0))
          (i32.ne (i32.add (i32.and (local.get $b) (i32.const 0x1f)) (i32.const 1)) (local.get $len)))
      (then (call $fail <<bad_config>>) (return (i32.const 1))))
    (i32.store (i32.const {STATE_DROP_LEN}) (i32.and (local.get $b) (i32.const 0x1f)))
    (memory.copy (i32.const {STATE_DROP_KEY}) (i32.add (local.get $ptr) (i32.const 1))
                 (i32.and (local.get $b) (i32.const 0x1f)))
    (i32.const 0))

  (func $flush
    (if (i32.gt_u (global.get $m) (i32.const {MAIN_OUT}))
      (then (call $emit <<main>> (i32.const {MAIN_OUT}) (i32.sub (global.get $m) (i32.const {MAIN_OUT})))))
    (if (i32.gt_u (global.get $h) (i32.const {HDR_OUT}))
      (then (call $emit <<headers>> (i32.const {HDR_OUT}) (i32.sub (global.get $h) (i32.const {HDR_OUT})))))
    (call $metric (i32.const 0) <<records_in>> (global.get $n))
    (global.set $count (i64.add (global.get $count) (global.get $n))))

  (func (export "sluice_process") (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $j i32) (local $cnt i32) (local $p i32) (local $ts i64) (local $wm i64)
    (local $klen i32) (local $vlen i32) (local $k i32) (local $v i32)
    (global.set $m (i32.const {MAIN_OUT}))
    (global.set $h (i32.const {HDR_OUT}))
    (global.set $n (i64.const 0))
    (local.set $cnt (i32.load (local.get $ptr)))
    (call $metric (i32.const 1) <<batch_watermark>> (i64.load offset=8 (local.get $ptr)))
    (local.set $p (i32.add (local.get $ptr) (i32.const 16)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $cnt)))
        (local.set $ts (i64.load offset=8 (local.get $p)))
        (local.set $wm (i64.load offset=16 (local.get $p)))
        (local.set $klen (i32.load offset=32 (local.get $p)))
        (local.set $vlen (i32.load offset=36 (local.get $p)))
        (local.set $k (i32.add (local.get $p) (i32.const 40)))
        (local.set $v (i32.add (local.get $k) (local.get $klen)))
        (if (call $eq (local.get $k) (local.get $klen) <<key_trap>>)
          (then (call $flush) (unreachable)))
        (if (call $eq (local.get $k) (local.get $klen) <<key_fail>>)
          (then (call $flush) (call $fail <<fail_msg>>) (return (i32.const 1))))
        (if (call $eq (local.get $k) (local.get $klen) <<key_spin>>)
          (then (call $flush) (loop $forever (br $forever))))
        (if (call $eq (local.get $k) (local.get $klen) <<key_grow>>)
          (then (call $flush)
            (if (i32.eq (memory.grow (i32.const 65536)) (i32.const -1))
              (then (call $fail <<oom>>) (unreachable)))))
        (if (call $eq (local.get $k) (local.get $klen) <<key_garbage>>)
          (then (call $flush)
            (i64.store (i32.const {SCRATCH}) (i64.const 0))
            (i32.store (i32.const {SCRATCH_KEY_LEN}) (i32.const 1000))
            (i32.store (i32.const {SCRATCH_VALUE_LEN}) (i32.const 0))
            (call $emit <<main>> (i32.const {SCRATCH}) (i32.const 24))))
        (if (call $eq (local.get $k) (local.get $klen) <<key_badname>>)
          (then (call $flush) (call $emit <<bad_name>> (i32.const {SCRATCH}) (i32.const 0))))
        (if (call $eq (local.get $k) (local.get $klen) <<key_log>>)
          (then
            (local.set $j (i32.const 0))
            (block $logged
              (loop $again
                (br_if $logged (i32.ge_u (local.get $j) (i32.const 20)))
                (call $log (i32.const 3) <<log_line>>)
                (local.set $j (i32.add (local.get $j) (i32.const 1)))
                (br $again)))))
        (if (i32.eqz (i32.and
              (i32.ne (i32.load (i32.const {STATE_DROP_LEN})) (i32.const 0))
              (call $eq (local.get $k) (local.get $klen)
                        (i32.const {STATE_DROP_KEY}) (i32.load (i32.const {STATE_DROP_LEN})))))
          (then
            (i64.store (global.get $m) (local.get $ts))
            (i64.store offset=8 (global.get $m) (local.get $wm))
            (i32.store offset=16 (global.get $m) (local.get $klen))
            (i32.store offset=20 (global.get $m) (local.get $vlen))
            (memory.copy (i32.add (global.get $m) (i32.const 24)) (local.get $k) (local.get $klen))
            (memory.copy (i32.add (i32.add (global.get $m) (i32.const 24)) (local.get $klen))
                         (local.get $v) (local.get $vlen))
            (global.set $m (i32.add (global.get $m)
                                    (i32.add (i32.const 24) (i32.add (local.get $klen) (local.get $vlen)))))
            (i64.store (global.get $h) (local.get $ts))
            (i64.store offset=8 (global.get $h) (local.get $wm))
            (i32.store offset=16 (global.get $h) (i32.const 16))
            (i32.store offset=20 (global.get $h) (i32.const 0))
            (memory.copy (i32.add (global.get $h) (i32.const 24)) (local.get $p) (i32.const 8))
            (memory.copy (i32.add (global.get $h) (i32.const 32))
                         (i32.add (local.get $p) (i32.const 24)) (i32.const 8))
            (global.set $h (i32.add (global.get $h) (i32.const 40)))
            (call $timer (i64.add (local.get $ts) (i64.const 1000)))))
        (global.set $n (i64.add (global.get $n) (i64.const 1)))
        (local.set $p (i32.add (local.get $v) (local.get $vlen)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $flush)
    (i32.const 0))

  (func (export "sluice_on_watermark") (param $wm i64) (result i32)
    (local $i i32)
    (if (i64.eq (local.get $wm) (i64.const 666))
      (then (call $fail <<wm_fail>>) (return (i32.const 1))))
    (call $metric (i32.const 1) <<watermark>> (local.get $wm))
    (call $log (i32.const 3) <<wm_log>>)
    (i64.store (i32.const {WM_RECORD}) (local.get $wm))
    (i64.store offset=8 (i32.const {WM_RECORD}) (i64.sub (local.get $wm) (i64.const 1)))
    (i32.store offset=16 (i32.const {WM_RECORD}) (i32.const 2))
    (i32.store offset=20 (i32.const {WM_RECORD}) (i32.const 9))
    (i32.store16 offset=24 (i32.const {WM_RECORD}) (i32.const 0x6d77))
    (i32.store8 offset=26 (i32.const {WM_RECORD}) (i32.const 0xcf))
    (block $done
      (loop $byte
        (br_if $done (i32.ge_u (local.get $i) (i32.const 8)))
        (i64.store8 offset=27 (i32.add (i32.const {WM_RECORD}) (local.get $i))
          (i64.shr_u (global.get $count)
                     (i64.extend_i32_u (i32.sub (i32.const 56) (i32.mul (local.get $i) (i32.const 8))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte)))
    (call $emit <<fired>> (i32.const {WM_RECORD}) (i32.const 35))
    (i32.const 0))

  (func (export "sluice_snapshot") (result i64)
    (i64.store (i32.const {SCRATCH}) (global.get $count))
    (i64.or (i64.shl (i64.const {SCRATCH}) (i64.const 32)) (i64.const 8)))

  (func (export "sluice_restore") (param $ptr i32) (param $len i32) (result i32)
    (if (i32.ne (local.get $len) (i32.const 8))
      (then (call $fail <<bad_snapshot>>) (return (i32.const 1))))
    (global.set $count (i64.load (local.get $ptr)))
    (i32.const 0))
)"#,
        SCRATCH_KEY_LEN = SCRATCH + 16,
        SCRATCH_VALUE_LEN = SCRATCH + 20,
    );
    wat::parse_str(with_strings(&template)).expect("good guest WAT compiles")
}

/// A minimal ABI v1 module whose parts tests replace to make it hostile.
/// Each field is a complete WAT module field; an empty string leaves it out.
#[derive(Clone)]
pub struct Guest {
    pub imports: String,
    pub memory: String,
    pub abi_version: String,
    pub buffer: String,
    pub init: String,
    pub process: String,
    pub watermark: String,
    pub snapshot: String,
    pub restore: String,
    pub extra: String,
}

impl Default for Guest {
    fn default() -> Guest {
        Guest {
            imports: String::new(),
            memory: r#"(memory (export "memory") 2)"#.into(),
            abi_version: r#"(func (export "sluice_abi_version") (result i32) (i32.const 1))"#
                .into(),
            buffer: r#"(func (export "sluice_buffer") (param i32) (result i32) (i32.const 1024))"#
                .into(),
            init: r#"(func (export "sluice_init") (param i32 i32) (result i32) (i32.const 0))"#
                .into(),
            process:
                r#"(func (export "sluice_process") (param i32 i32) (result i32) (i32.const 0))"#
                    .into(),
            watermark:
                r#"(func (export "sluice_on_watermark") (param i64) (result i32) (i32.const 0))"#
                    .into(),
            snapshot: r#"(func (export "sluice_snapshot") (result i64) (i64.const 0))"#.into(),
            restore:
                r#"(func (export "sluice_restore") (param i32 i32) (result i32) (i32.const 0))"#
                    .into(),
            extra: String::new(),
        }
    }
}

/// The five `sluice` imports, declared as `$emit`, `$timer`, `$log`,
/// `$metric`, `$fail`.
pub const ALL_IMPORTS: &str = r#"
  (import "sluice" "emit" (func $emit (param i32 i32 i32 i32)))
  (import "sluice" "timer" (func $timer (param i64)))
  (import "sluice" "log" (func $log (param i32 i32 i32)))
  (import "sluice" "metric" (func $metric (param i32 i32 i32 i64)))
  (import "sluice" "fail" (func $fail (param i32 i32)))"#;

impl Guest {
    /// A guest whose `sluice_process(ptr, len)` runs `body` (locals `$ptr`,
    /// `$len`; must leave an i32 status), with all imports declared.
    pub fn process(body: &str) -> Guest {
        Guest {
            imports: ALL_IMPORTS.into(),
            process: format!(
                r#"(func (export "sluice_process") (param $ptr i32) (param $len i32) (result i32) {body})"#
            ),
            ..Guest::default()
        }
    }

    pub fn wat(&self) -> String {
        let parts = [
            &self.imports,
            &self.memory,
            &self.abi_version,
            &self.buffer,
            &self.init,
            &self.process,
            &self.watermark,
            &self.snapshot,
            &self.restore,
            &self.extra,
        ];
        let mut wat = String::from("(module\n");
        for part in parts {
            wat.push_str(part);
            wat.push('\n');
        }
        wat.push(')');
        wat
    }

    pub fn wasm(&self) -> Vec<u8> {
        let wat = self.wat();
        match wat::parse_str(&wat) {
            Ok(bytes) => bytes,
            Err(e) => panic!("test WAT does not compile: {e}\n{wat}"),
        }
    }
}

/// Asserts the error's kind and that its message contains `fragment`.
#[track_caller]
pub fn assert_fails_with(
    err: &sluice::wasm::PluginError,
    kind: sluice::wasm::ErrorKind,
    fragment: &str,
) {
    assert_eq!(err.kind(), kind, "{err}");
    assert!(
        err.to_string().contains(fragment),
        "expected {fragment:?} in:\n{err}"
    );
}
