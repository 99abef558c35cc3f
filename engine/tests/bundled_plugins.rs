//! The bundled plugins speak ABI v1 (sdk/ABI.md), checked on the real Wasm
//! modules `build.rs` produced, through wasmtime.
//!
//! A deliberately small test-only host ([`Guest`]) instantiates a module with the
//! five `sluice` imports, writes batches the way the ABI describes and reads the
//! `emit` buffers back, so mistakes in the SDK's export glue show up here even
//! before the engine's own host exists. `sdk-selftest` is a test plugin built
//! alongside the bundled ones that does what its input records ask.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};
use sluice::bundled::{bundled_plugin, bundled_plugins};
use wasmtime::{
    Caller, Engine, ExternType, Instance, Linker, Memory, Module, Store, TypedFunc, ValType,
};

const SELFTEST_WASM: &str = concat!(env!("SLUICE_PLUGIN_WASM_DIR"), "/sdk_selftest.wasm");

/// What the host imports received during one call.
#[derive(Default, Debug)]
struct Calls {
    emits: Vec<(String, Vec<u8>)>,
    timers: Vec<i64>,
    logs: Vec<(i32, String)>,
    metrics: Vec<(i32, String, i64)>,
    failures: Vec<String>,
}

/// One output record read back from an `emit` buffer.
#[derive(Debug, Clone, PartialEq)]
struct Out {
    ts: i64,
    key: String,
    value: Value,
}

struct Guest {
    store: Store<Calls>,
    memory: Memory,
    buffer: TypedFunc<i32, i32>,
    init: TypedFunc<(i32, i32), i32>,
    restore: TypedFunc<(i32, i32), i32>,
    process: TypedFunc<(i32, i32), i32>,
    on_watermark: TypedFunc<i64, i32>,
    snapshot: TypedFunc<(), i64>,
    next_offset: u64,
}

fn read_guest(caller: &mut Caller<'_, Calls>, ptr: i32, len: i32) -> Vec<u8> {
    let memory = caller
        .get_export("memory")
        .and_then(|e| e.into_memory())
        .expect("memory export");
    let data = memory.data(&caller);
    data[ptr as u32 as usize..][..len as u32 as usize].to_vec()
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("the guest sends UTF-8")
}

/// Compiles `wasm` once per test binary (cranelift takes a while on a large module).
fn compiled(wasm: &[u8]) -> (Engine, Module) {
    static CACHE: Mutex<Vec<(Vec<u8>, Engine, Module)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap();
    if let Some((_, engine, module)) = cache.iter().find(|(bytes, ..)| bytes == wasm) {
        return (engine.clone(), module.clone());
    }
    let engine = Engine::default();
    let module = Module::new(&engine, wasm).expect("a valid module");
    cache.push((wasm.to_vec(), engine.clone(), module.clone()));
    (engine, module)
}

impl Guest {
    fn new(wasm: &[u8]) -> Guest {
        let (engine, module) = compiled(wasm);
        let mut linker = Linker::new(&engine);
        linker
            .func_wrap(
                "sluice",
                "emit",
                |mut c: Caller<'_, Calls>, np: i32, nl: i32, p: i32, l: i32| {
                    let name = text(read_guest(&mut c, np, nl));
                    let records = read_guest(&mut c, p, l);
                    c.data_mut().emits.push((name, records));
                },
            )
            .unwrap()
            .func_wrap("sluice", "timer", |mut c: Caller<'_, Calls>, ts: i64| {
                c.data_mut().timers.push(ts)
            })
            .unwrap()
            .func_wrap(
                "sluice",
                "log",
                |mut c: Caller<'_, Calls>, level: i32, p: i32, l: i32| {
                    let line = text(read_guest(&mut c, p, l));
                    c.data_mut().logs.push((level, line));
                },
            )
            .unwrap()
            .func_wrap(
                "sluice",
                "metric",
                |mut c: Caller<'_, Calls>, kind: i32, np: i32, nl: i32, v: i64| {
                    let name = text(read_guest(&mut c, np, nl));
                    c.data_mut().metrics.push((kind, name, v));
                },
            )
            .unwrap()
            .func_wrap(
                "sluice",
                "fail",
                |mut c: Caller<'_, Calls>, p: i32, l: i32| {
                    let message = text(read_guest(&mut c, p, l));
                    c.data_mut().failures.push(message);
                },
            )
            .unwrap();
        let mut store = Store::new(&engine, Calls::default());
        let instance: Instance = linker
            .instantiate(&mut store, &module)
            .expect("instantiates");
        let version = instance
            .get_typed_func::<(), i32>(&mut store, "sluice_abi_version")
            .unwrap();
        assert_eq!(version.call(&mut store, ()).unwrap(), 1);
        Guest {
            memory: instance.get_memory(&mut store, "memory").unwrap(),
            buffer: instance
                .get_typed_func(&mut store, "sluice_buffer")
                .unwrap(),
            init: instance.get_typed_func(&mut store, "sluice_init").unwrap(),
            restore: instance
                .get_typed_func(&mut store, "sluice_restore")
                .unwrap(),
            process: instance
                .get_typed_func(&mut store, "sluice_process")
                .unwrap(),
            on_watermark: instance
                .get_typed_func(&mut store, "sluice_on_watermark")
                .unwrap(),
            snapshot: instance
                .get_typed_func(&mut store, "sluice_snapshot")
                .unwrap(),
            store,
            next_offset: 0,
        }
    }

    fn take_calls(&mut self) -> Calls {
        std::mem::take(self.store.data_mut())
    }

    /// Copies `bytes` into guest memory through `sluice_buffer`.
    fn hand_over(&mut self, bytes: &[u8]) -> (i32, i32) {
        let ptr = self
            .buffer
            .call(&mut self.store, bytes.len() as i32)
            .unwrap();
        assert_ne!(ptr, 0, "sluice_buffer failed");
        self.memory
            .write(&mut self.store, ptr as u32 as usize, bytes)
            .unwrap();
        (ptr, bytes.len() as i32)
    }

    /// Calls `sluice_init` with `config` as MessagePack; the status, or an error for a trap.
    fn init(&mut self, config: &Value) -> i32 {
        let config = rmp_serde::to_vec_named(config).unwrap();
        let (ptr, len) = self.hand_over(&config);
        self.init.call(&mut self.store, (ptr, len)).unwrap()
    }

    fn process(
        &mut self,
        records: &[(i64, &str, Value)],
        watermark: i64,
    ) -> Result<i32, wasmtime::Error> {
        let batch = encode_batch(records, watermark, self.next_offset);
        self.next_offset += records.len() as u64;
        self.process_raw(&batch)
    }

    fn process_raw(&mut self, batch: &[u8]) -> Result<i32, wasmtime::Error> {
        let (ptr, len) = self.hand_over(batch);
        self.process.call(&mut self.store, (ptr, len))
    }

    fn on_watermark(&mut self, wm: i64) -> i32 {
        self.on_watermark.call(&mut self.store, wm).unwrap()
    }

    fn snapshot(&mut self) -> Vec<u8> {
        let packed = self.snapshot.call(&mut self.store, ()).unwrap();
        assert_ne!(
            packed,
            -1,
            "snapshot failed: {:?}",
            self.store.data().failures
        );
        let (ptr, len) = (
            (packed as u64 >> 32) as usize,
            (packed as u64 & 0xffff_ffff) as usize,
        );
        self.memory.data(&self.store)[ptr..ptr + len].to_vec()
    }

    fn restore(&mut self, snapshot: &[u8]) -> i32 {
        let (ptr, len) = self.hand_over(snapshot);
        self.restore.call(&mut self.store, (ptr, len)).unwrap()
    }
}

/// An ABI v1 batch of `records` (values encoded as MessagePack maps), offsets
/// counting from `first_offset`, all on partition 0.
fn encode_batch(records: &[(i64, &str, Value)], watermark: i64, first_offset: u64) -> Vec<u8> {
    let mut batch = Vec::new();
    batch.extend_from_slice(&(records.len() as u32).to_le_bytes());
    batch.extend_from_slice(&0u32.to_le_bytes());
    batch.extend_from_slice(&watermark.to_le_bytes());
    for (offset, (ts, key, value)) in (first_offset..).zip(records) {
        let value = rmp_serde::to_vec_named(value).unwrap();
        batch.extend_from_slice(&offset.to_le_bytes());
        batch.extend_from_slice(&ts.to_le_bytes());
        batch.extend_from_slice(&watermark.to_le_bytes());
        batch.extend_from_slice(&0u32.to_le_bytes());
        batch.extend_from_slice(&[0; 4]);
        batch.extend_from_slice(&(key.len() as u32).to_le_bytes());
        batch.extend_from_slice(&(value.len() as u32).to_le_bytes());
        batch.extend_from_slice(key.as_bytes());
        batch.extend_from_slice(&value);
    }
    batch
}

/// Parses an `emit` buffer strictly (as the host must) into records.
fn parse_emit(mut buf: &[u8]) -> Vec<Out> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        assert!(buf.len() >= 24, "garbage output: short header");
        let ts = i64::from_le_bytes(buf[0..8].try_into().unwrap());
        let key_len = u32::from_le_bytes(buf[16..20].try_into().unwrap()) as usize;
        let value_len = u32::from_le_bytes(buf[20..24].try_into().unwrap()) as usize;
        let body = &buf[24..];
        assert!(
            body.len() >= key_len + value_len,
            "garbage output: lengths run past the end"
        );
        let key = String::from_utf8(body[..key_len].to_vec()).unwrap();
        let value: Value = rmp_serde::from_slice(&body[key_len..key_len + value_len]).unwrap();
        out.push(Out { ts, key, value });
        buf = &body[key_len + value_len..];
    }
    out
}

/// The records of each output in a call, checking there was one `emit` per output.
fn outputs(calls: &Calls) -> BTreeMap<String, Vec<Out>> {
    let mut by_name = BTreeMap::new();
    for (name, records) in &calls.emits {
        let previous = by_name.insert(name.clone(), parse_emit(records));
        assert!(
            previous.is_none(),
            "output `{name}` emitted twice in one call"
        );
    }
    by_name
}

fn bid(auction: u64, bidder: u64, price: u64, date_time: i64) -> Value {
    json!({"bid": {"auction": auction, "bidder": bidder, "price": price, "channel": "Google",
                   "url": "https://www.nexmark.com/a/b/c/item.htm?query=1", "date_time": date_time,
                   "extra": "padding"}})
}

#[test]
fn every_plugin_imports_only_sluice_and_exports_the_abi() {
    let engine = Engine::default();
    let selftest = std::fs::read(SELFTEST_WASM).expect("build.rs built sdk-selftest");
    let mut modules: Vec<(&str, &[u8])> =
        bundled_plugins().iter().map(|p| (p.name, p.wasm)).collect();
    modules.push(("sdk-selftest", &selftest));
    assert!(modules.iter().any(|(name, _)| *name == "nexmark"));
    let i32_ = ValType::I32;
    let i64_ = ValType::I64;
    let expected_exports: &[(&str, &[ValType], &[ValType])] = &[
        ("sluice_abi_version", &[], &[ValType::I32]),
        ("sluice_buffer", &[ValType::I32], &[ValType::I32]),
        (
            "sluice_init",
            &[ValType::I32, ValType::I32],
            &[ValType::I32],
        ),
        (
            "sluice_process",
            &[ValType::I32, ValType::I32],
            &[ValType::I32],
        ),
        ("sluice_on_watermark", &[ValType::I64], &[ValType::I32]),
        ("sluice_snapshot", &[], &[ValType::I64]),
        (
            "sluice_restore",
            &[ValType::I32, ValType::I32],
            &[ValType::I32],
        ),
    ];
    let allowed_imports: BTreeMap<&str, Vec<ValType>> = BTreeMap::from([
        (
            "emit",
            vec![i32_.clone(), i32_.clone(), i32_.clone(), i32_.clone()],
        ),
        ("timer", vec![i64_.clone()]),
        ("log", vec![i32_.clone(), i32_.clone(), i32_.clone()]),
        (
            "metric",
            vec![i32_.clone(), i32_.clone(), i32_.clone(), i64_.clone()],
        ),
        ("fail", vec![i32_.clone(), i32_.clone()]),
    ]);
    for (name, wasm) in modules {
        let module = Module::new(&engine, wasm).unwrap_or_else(|e| panic!("{name}: {e}"));
        for import in module.imports() {
            assert_eq!(
                import.module(),
                "sluice",
                "{name} imports {}::{}",
                import.module(),
                import.name()
            );
            let ExternType::Func(ty) = import.ty() else {
                panic!("{name} imports a non-function {}", import.name())
            };
            let params = allowed_imports
                .get(import.name())
                .unwrap_or_else(|| panic!("{name}: unknown import {}", import.name()));
            assert!(
                ty.params().zip(params).all(|(a, b)| ValType::eq(&a, b)),
                "{name}: {}",
                import.name()
            );
            assert_eq!(ty.params().len(), params.len(), "{name}: {}", import.name());
            assert_eq!(
                ty.results().len(),
                0,
                "{name}: {} returns nothing",
                import.name()
            );
        }
        assert!(
            matches!(module.get_export("memory"), Some(ExternType::Memory(_))),
            "{name} exports memory"
        );
        for (export, params, results) in expected_exports {
            let Some(ExternType::Func(ty)) = module.get_export(export) else {
                panic!("{name} does not export function {export}")
            };
            let got: Vec<ValType> = ty.params().collect();
            assert!(
                got.len() == params.len()
                    && got.iter().zip(*params).all(|(a, b)| ValType::eq(a, b)),
                "{name}: {export} params"
            );
            let got: Vec<ValType> = ty.results().collect();
            assert!(
                got.len() == results.len()
                    && got.iter().zip(*results).all(|(a, b)| ValType::eq(a, b)),
                "{name}: {export} results"
            );
        }
    }
}

fn nexmark(query: &str) -> Guest {
    let plugin = bundled_plugin("nexmark").expect("nexmark is bundled");
    let mut guest = Guest::new(plugin.wasm);
    assert_eq!(
        guest.init(&json!({"query": query})),
        0,
        "{:?}",
        guest.take_calls().failures
    );
    guest.take_calls();
    guest
}

#[test]
fn nexmark_q2_through_wasm_emits_bids_on_every_123rd_auction() {
    let mut q2 = nexmark("q2");
    let status = q2
        .process(
            &[
                (1_000, "10", bid(246, 1, 500, 1_000)),
                (1_001, "11", bid(247, 1, 600, 1_001)),
                (
                    1_002,
                    "12",
                    json!({"person": {"id": 1000, "name": "Kate Smith"}}),
                ),
                (1_003, "13", bid(0, 2, 700, 1_003)),
            ],
            i64::MIN,
        )
        .unwrap();
    assert_eq!(status, 0);
    let calls = q2.take_calls();
    let main = &outputs(&calls)["main"];
    assert_eq!(
        main,
        &vec![
            Out {
                ts: 1_000,
                key: "10".into(),
                value: json!({"auction": 246, "price": 500})
            },
            Out {
                ts: 1_003,
                key: "13".into(),
                value: json!({"auction": 0, "price": 700})
            },
        ]
    );
}

#[test]
fn nexmark_q7_through_wasm_asks_for_a_timer_and_fires_the_window_on_watermark() {
    let mut q7 = nexmark("q7");
    let bids = [
        (1_000, "1", bid(7, 1, 50, 1_000)),
        (2_000, "2", bid(8, 2, 90, 2_000)),
        (3_000, "3", bid(9, 3, 90, 3_000)),
        (12_000, "4", bid(9, 3, 10, 12_000)),
    ];
    assert_eq!(q7.process(&bids, i64::MIN).unwrap(), 0);
    let calls = q7.take_calls();
    assert!(calls.emits.is_empty());
    assert_eq!(calls.timers, vec![10_000], "the earliest window end");
    assert_eq!(q7.on_watermark(10_000), 0);
    let calls = q7.take_calls();
    let expected: Vec<Out> = [(8, 2, 2_000), (9, 3, 3_000)]
        .into_iter()
        .map(|(auction, bidder, date_time)| Out {
            ts: 9_999,
            key: auction.to_string(),
            value: json!({"auction": auction, "bidder": bidder, "price": 90, "date_time": date_time,
                          "window_start": 0, "window_end": 10_000}),
        })
        .collect();
    assert_eq!(outputs(&calls)["main"], expected);
    assert_eq!(calls.timers, vec![20_000], "re-asks for the next window");
    // A bid for the closed window goes to `late`, unchanged, and is counted.
    assert_eq!(
        q7.process(&[(5_000, "5", bid(1, 1, 999, 5_000))], 10_000)
            .unwrap(),
        0
    );
    let calls = q7.take_calls();
    assert_eq!(outputs(&calls)["late"][0].value, bid(1, 1, 999, 5_000));
    assert_eq!(calls.metrics, vec![(0, "late_events".to_string(), 1)]);
}

#[test]
fn a_bad_config_fails_init_with_a_message_naming_the_problem() {
    let plugin = bundled_plugin("nexmark").unwrap();
    let mut guest = Guest::new(plugin.wasm);
    assert_eq!(guest.init(&json!({"query": "q99"})), 1);
    let failures = guest.take_calls().failures;
    assert!(
        failures.len() == 1
            && failures[0].contains("q99")
            && failures[0].contains("nexmark::Config"),
        "{failures:?}"
    );
    // And a record before a successful init is refused, not a crash.
    assert_eq!(
        guest
            .process(&[(1, "1", bid(1, 1, 1, 1))], i64::MIN)
            .unwrap(),
        1
    );
    assert!(guest.take_calls().failures[0].contains("before a successful sluice_init"));
}

fn selftest() -> Guest {
    let wasm = std::fs::read(SELFTEST_WASM).expect("build.rs built sdk-selftest");
    let mut guest = Guest::new(&wasm);
    assert_eq!(guest.init(&json!({"prefix": "p-"})), 0);
    guest.take_calls();
    guest
}

#[test]
fn a_failed_call_delivers_nothing_and_the_next_call_works() {
    let mut guest = selftest();
    let status = guest.process(
        &[
            (1, "a", json!({"cmd": "count"})),
            (2, "a", json!({"cmd": "fail", "message": "no"})),
        ],
        0,
    );
    assert_eq!(status.unwrap(), 1);
    let calls = guest.take_calls();
    assert!(
        calls.emits.is_empty(),
        "outputs of a failed call are not emitted"
    );
    assert_eq!(calls.failures.len(), 1);
    assert!(
        calls.failures[0].starts_with("record at offset 1 of partition 0"),
        "{:?}",
        calls.failures
    );
    assert!(calls.failures[0].ends_with(": no"));
    assert_eq!(
        guest
            .process(&[(3, "a", json!({"cmd": "count"}))], 0)
            .unwrap(),
        0
    );
    let calls = guest.take_calls();
    // The state change of the failed call's first record stays (the host, not
    // the guest, decides whether to retry from a snapshot).
    assert_eq!(
        outputs(&calls)["main"],
        vec![Out {
            ts: 3,
            key: "p-a".into(),
            value: json!(2)
        }]
    );
}

#[test]
fn a_panic_traps_with_its_message_and_the_next_call_works() {
    let mut guest = selftest();
    let trap = guest.process(&[(1, "a", json!({"cmd": "panic", "message": "boom"}))], 0);
    assert!(trap.is_err(), "a panic traps");
    let calls = guest.take_calls();
    assert!(calls.emits.is_empty());
    assert!(
        calls.failures.iter().any(|f| f.contains("boom")),
        "{:?}",
        calls.failures
    );
    for round in 1..=3 {
        assert_eq!(
            guest
                .process(&[(2, "b", json!({"cmd": "count"}))], 0)
                .unwrap(),
            0
        );
        let calls = guest.take_calls();
        assert_eq!(
            outputs(&calls)["main"],
            vec![Out {
                ts: 2,
                key: "p-b".into(),
                value: json!(round)
            }]
        );
    }
}

#[test]
fn outputs_timers_logs_and_counters_reach_the_host_once_per_call() {
    let mut guest = selftest();
    let records = [
        (1, "a", json!({"cmd": "emit", "output": "alerts", "n": 2})),
        (2, "b", json!({"cmd": "emit", "output": "main", "n": 1})),
        (3, "c", json!({"cmd": "emit", "output": "alerts", "n": 1})),
        (4, "d", json!({"cmd": "log", "line": "hello"})),
        (5, "e", json!({"cmd": "log", "line": "again"})),
        (6, "f", json!({"cmd": "timer", "at": 500})),
        (7, "g", json!({"cmd": "timer", "at": 100})),
    ];
    assert_eq!(guest.process(&records, 0).unwrap(), 0);
    let calls = guest.take_calls();
    let out = outputs(&calls);
    assert_eq!(out["alerts"].len(), 3);
    assert_eq!(
        out["alerts"][2],
        Out {
            ts: 3,
            key: "p-c".into(),
            value: json!({"key": "c", "n": 0})
        }
    );
    assert_eq!(out["main"].len(), 1);
    assert_eq!(
        calls.logs,
        vec![(2, "hello".to_string()), (2, "again".to_string())]
    );
    assert_eq!(calls.metrics, vec![(0, "selftest_logs".to_string(), 2)]);
    assert_eq!(calls.timers, vec![100]);
    assert_eq!(guest.on_watermark(100), 0);
    let calls = guest.take_calls();
    assert_eq!(
        outputs(&calls)["timers"],
        vec![Out {
            ts: 100,
            key: "timer".into(),
            value: json!(100)
        }]
    );
    assert_eq!(
        calls.timers,
        vec![500],
        "the next pending timer is asked for again"
    );
}

#[test]
fn a_snapshot_restored_into_a_new_instance_continues_identically() {
    let mut first = selftest();
    let setup = [
        (1, "a", json!({"cmd": "count"})),
        (2, "a", json!({"cmd": "count"})),
        (3, "b", json!({"cmd": "window"})),
        (4, "c", json!({"cmd": "timer", "at": 2_000})),
    ];
    assert_eq!(first.process(&setup, 0).unwrap(), 0);
    first.take_calls();
    let snapshot = first.snapshot();

    let mut second = selftest();
    assert_eq!(
        second.restore(&snapshot),
        0,
        "{:?}",
        second.take_calls().failures
    );
    let restore_calls = second.take_calls();
    assert_eq!(
        restore_calls.timers,
        vec![1_000],
        "restore asks for the pending window timer"
    );
    second.next_offset = first.next_offset;

    let more = [
        (5, "a", json!({"cmd": "count"})),
        (6, "b", json!({"cmd": "window"})),
    ];
    for guest in [&mut first, &mut second] {
        assert_eq!(guest.process(&more, 0).unwrap(), 0);
        assert_eq!(guest.on_watermark(2_000), 0);
    }
    let (a, b) = (first.take_calls(), second.take_calls());
    assert_eq!(a.emits, b.emits);
    let out = outputs(&b);
    assert_eq!(
        out["windows"],
        vec![Out {
            ts: 999,
            key: "b".into(),
            value: json!([0, 1_000, 2])
        }]
    );
    // The window helper's timer (its end, 1 000) reaches `on_timer` too.
    let timer_values: Vec<Value> = out["timers"].iter().map(|o| o.value.clone()).collect();
    assert_eq!(timer_values, vec![json!(1_000), json!(2_000)]);
    assert_eq!(first.snapshot(), second.snapshot());

    let mut garbage = snapshot.clone();
    garbage[0] = b'X';
    let mut third = selftest();
    assert_eq!(third.restore(&garbage), 1);
    assert!(third.take_calls().failures[0].contains("not a sluice-sdk snapshot"));
}

#[test]
fn a_malformed_batch_is_refused_with_a_message() {
    let mut guest = selftest();
    let mut batch = vec![0u8; 16];
    batch[0] = 3; // announces three records, carries none
    assert_eq!(guest.process_raw(&batch).unwrap(), 1);
    let failures = guest.take_calls().failures;
    assert!(failures[0].contains("malformed batch"), "{failures:?}");
}

/// CPU time of this thread: unlike wall time, not inflated by other processes
/// sharing the machine.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Throughput of the nexmark queries through wasmtime, for a rough number while
/// the engine's host is written (run with `--ignored --nocapture`). Not an
/// assertion: timings belong to the benchmarks in bench/.
#[test]
#[ignore]
fn nexmark_throughput_probe() {
    const RECORDS: usize = 1_000;
    const BATCHES: usize = 500;
    for query in ["q0", "q1", "q2", "q5", "q7", "q11"] {
        let mut guest = nexmark(query);
        let records: Vec<(i64, String, Value)> = (0..RECORDS as u64)
            .map(|i| {
                let ts = i as i64;
                (
                    ts,
                    i.to_string(),
                    bid(1000 + i % 97, 2000 + i % 13, 100 + i % 1000, ts),
                )
            })
            .collect();
        let refs: Vec<(i64, &str, Value)> = records
            .iter()
            .map(|(t, k, v)| (*t, k.as_str(), v.clone()))
            .collect();
        let batch = encode_batch(&refs, i64::MIN, 0);
        let started = thread_cpu_seconds();
        for _ in 0..BATCHES {
            assert_eq!(guest.process_raw(&batch).unwrap(), 0);
            guest.take_calls();
        }
        let per_second = (RECORDS * BATCHES) as f64 / (thread_cpu_seconds() - started);
        println!(
            "{query}: {:.2} M records per CPU-second through wasmtime (the test host copies every emit)",
            per_second / 1e6
        );
    }
}

/// A Rust guest cannot unwind its shadow stack on a trap, so each trap leaks the
/// frames it was in (a few hundred bytes; about 2 000 traps exhaust the 1 MiB
/// stack, see sdk/ABI.md). Two hundred in a row must still leave it working.
#[test]
fn two_hundred_traps_in_a_row_leave_the_instance_working() {
    let mut guest = selftest();
    for round in 1..=200 {
        let trap = guest.process(&[(1, "a", json!({"cmd": "panic", "message": "boom"}))], 0);
        assert!(trap.is_err());
        guest.take_calls();
        assert_eq!(
            guest
                .process(&[(2, "b", json!({"cmd": "count"}))], 0)
                .unwrap(),
            0,
            "after {round} traps"
        );
        guest.take_calls();
    }
}

mod garbage {
    use proptest::prelude::*;

    use super::*;

    fn nexmark_q11() -> Guest {
        nexmark("q11")
    }

    /// A well-formed batch around an arbitrary value, to reach the decoder.
    fn batch_with_value(value: &[u8]) -> Vec<u8> {
        let mut batch = Vec::new();
        batch.extend_from_slice(&1u32.to_le_bytes());
        batch.extend_from_slice(&0u32.to_le_bytes());
        batch.extend_from_slice(&i64::MIN.to_le_bytes());
        batch.extend_from_slice(&0u64.to_le_bytes());
        batch.extend_from_slice(&1i64.to_le_bytes());
        batch.extend_from_slice(&[0; 8]);
        batch.extend_from_slice(&1u32.to_le_bytes());
        batch.extend_from_slice(&(value.len() as u32).to_le_bytes());
        batch.push(b'k');
        batch.extend_from_slice(value);
        batch
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Outside input (batches, values, snapshots) makes a call fail with a
        /// message, never trap, and the instance keeps working.
        #[test]
        fn garbage_input_fails_calls_without_trapping(
            batch in proptest::collection::vec(any::<u8>(), 0..300),
            value in proptest::collection::vec(any::<u8>(), 0..80),
            snapshot in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let mut guest = nexmark_q11();
            let mut tagged = vec![0x81, 0xa3, b'b', b'i', b'd'];
            tagged.extend_from_slice(&value);
            for batch in [batch, batch_with_value(&value), batch_with_value(&tagged)] {
                let status = guest.process_raw(&batch).expect("outside input must not trap");
                prop_assert!(status == 0 || status == 1);
                let failures = guest.take_calls().failures;
                prop_assert_eq!(failures.len(), status as usize, "one message per failed call");
            }
            let mut framed = b"SLUICESN\x01\0\0\0\x01\0\0\0".to_vec();
            framed.extend_from_slice(&snapshot);
            for bytes in [&snapshot, &framed] {
                let status = guest.restore(bytes);
                prop_assert!(status == 0 || status == 1);
                if status == 1 {
                    prop_assert_eq!(guest.take_calls().failures.len(), 1);
                    // A failed restore leaves no operator: init again.
                    prop_assert_eq!(guest.init(&json!({"query": "q11"})), 0);
                }
            }
            let status = guest.process(&[(5, "k", bid(1, 2, 3, 5))], i64::MIN).unwrap();
            prop_assert_eq!(status, 0, "{:?}", guest.take_calls().failures);
        }
    }
}
