//! `testing`: run an operator natively, exactly as the engine runs its Wasm
//! build, and look at what it produced.
//!
//! [`Harness`] encodes inputs into real ABI v1 batches, calls the same
//! [`Runtime`] the Wasm exports call, and reads outputs back from the `emit`
//! buffers the operator produced. It behaves like the host: outputs and counters
//! of a failed call are dropped; `on_watermark` is called only when a timer the
//! operator asked for is due (so a window helper that forgot its timer shows up
//! here, not in production); snapshots go through bytes.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # use sluice_sdk::{Ctx, Error, Operator, Record};
//! # #[derive(Serialize, Deserialize)] struct Echo;
//! # impl Operator for Echo {
//! #     type Config = ();
//! #     fn init(_: ()) -> Result<Self, Error> { Ok(Echo) }
//! #     fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> { ctx.forward("main", rec) }
//! # }
//! use sluice_sdk::testing::Harness;
//! use serde_json::json;
//!
//! let mut h = Harness::<Echo>::new(json!(null)).unwrap();
//! h.send(1_000, "k", &json!({"n": 1})).unwrap();
//! assert_eq!(h.take_json("main"), vec![json!({"n": 1})]);
//! ```

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::Error;
use crate::host::{Level, MetricKind};
use crate::operator::Operator;
use crate::output::parse_emitted;
use crate::record::{BATCH_HEADER_BYTES, BatchHeader, write_batch_header, write_record};
use crate::runtime::Runtime;

/// One input record for [`Harness::send_batch`].
#[derive(Debug, Clone)]
pub struct Input {
    timestamp: i64,
    key: Vec<u8>,
    value: Vec<u8>,
    partition: u32,
    source: u16,
}

impl Input {
    /// A record at event time `timestamp` whose value is `value` encoded as
    /// MessagePack (as the engine stores JSON it ingests), on partition 0 of
    /// source 0.
    ///
    /// # Panics
    /// If `value` cannot be encoded (a test bug: use [`Input::raw`] for bad bytes).
    pub fn new(timestamp: i64, key: impl AsRef<[u8]>, value: &(impl Serialize + ?Sized)) -> Self {
        let value = codec::encode(value).unwrap_or_else(|e| panic!("test input value: {e}"));
        Self::raw(timestamp, key, value)
    }

    /// A record whose value bytes are given as they are (to test bad input).
    pub fn raw(timestamp: i64, key: impl AsRef<[u8]>, value: impl Into<Vec<u8>>) -> Self {
        Input {
            timestamp,
            key: key.as_ref().to_vec(),
            value: value.into(),
            partition: 0,
            source: 0,
        }
    }

    /// Puts the record on input partition `partition`.
    pub fn partition(mut self, partition: u32) -> Self {
        self.partition = partition;
        self
    }

    /// Marks the record as coming from source `source` of the job.
    pub fn source(mut self, source: u16) -> Self {
        self.source = source;
        self
    }
}

/// One record the operator emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Event time of the record.
    pub timestamp: i64,
    /// Key bytes.
    pub key: Vec<u8>,
    /// Value bytes (MessagePack).
    pub value: Vec<u8>,
}

impl Output {
    /// The key as text (lossy for non-UTF-8 keys).
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }

    /// The value decoded to JSON, for readable assertions.
    ///
    /// # Panics
    /// If the value is not valid MessagePack (the test fails with the reason).
    pub fn json(&self) -> serde_json::Value {
        self.decode()
            .unwrap_or_else(|e| panic!("output value: {e}"))
    }

    /// The value decoded into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        codec::decode(&self.value)
    }
}

/// Runs one operator instance natively; see the [module docs](self).
pub struct Harness<O: Operator> {
    runtime: Runtime<O>,
    watermark: i64,
    /// The earliest timer the operator asked the host for.
    timer: Option<i64>,
    next_offset: BTreeMap<u32, u64>,
    outputs: BTreeMap<String, Vec<Output>>,
    counters: BTreeMap<String, i64>,
    gauges: BTreeMap<String, i64>,
    logs: Vec<(Level, String)>,
    batch: Vec<u8>,
    /// With `Some(delay)`, the watermark follows `max event time - delay`.
    out_of_orderness: Option<i64>,
    max_timestamp: i64,
}

impl<O: Operator> Harness<O> {
    /// Initialises the operator with `config` (any serde value, typically
    /// `serde_json::json!({...})`, encoded to MessagePack as the engine does
    /// with the job spec's JSON).
    pub fn new(config: impl Serialize) -> Result<Self, Error> {
        let config = codec::encode(&config)?;
        Self::from_config_bytes(&config)
    }

    /// Initialises the operator as for a job that gives no config.
    pub fn without_config() -> Result<Self, Error> {
        Self::from_config_bytes(&[])
    }

    fn from_config_bytes(config: &[u8]) -> Result<Self, Error> {
        let mut harness = Harness {
            runtime: Runtime::new(),
            watermark: i64::MIN,
            timer: None,
            next_offset: BTreeMap::new(),
            outputs: BTreeMap::new(),
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            logs: Vec::new(),
            batch: Vec::new(),
            out_of_orderness: None,
            max_timestamp: i64::MIN,
        };
        let result = harness.runtime.init(config);
        harness.collect(result)?;
        Ok(harness)
    }

    /// Initialises a new instance with `config` and restores `snapshot` into it,
    /// as the engine does after a crash or for an upgrade.
    pub fn restore(config: impl Serialize, snapshot: &[u8]) -> Result<Self, Error> {
        let mut harness = Self::new(config)?;
        let result = harness.runtime.restore(snapshot);
        harness.collect(result)?;
        harness.watermark = harness.runtime_watermark();
        Ok(harness)
    }

    /// Makes the watermark follow the records sent, like a job with a bounded
    /// out-of-orderness of `delay_ms`: after each batch it advances to the
    /// largest event time seen minus `delay_ms` (see [`Harness::advance_watermark`]).
    pub fn with_out_of_orderness(mut self, delay_ms: i64) -> Self {
        self.out_of_orderness = Some(delay_ms);
        self
    }

    /// Sends one record (partition 0, source 0) as a batch of one.
    pub fn send(
        &mut self,
        timestamp: i64,
        key: impl AsRef<[u8]>,
        value: &(impl Serialize + ?Sized),
    ) -> Result<(), Error> {
        self.send_batch([Input::new(timestamp, key, value)])
    }

    /// Sends records as one batch. Offsets are numbered per partition from 0.
    pub fn send_batch(&mut self, records: impl IntoIterator<Item = Input>) -> Result<(), Error> {
        self.batch.clear();
        self.batch.resize(BATCH_HEADER_BYTES, 0);
        let mut count = 0u32;
        let mut max_ts = self.max_timestamp;
        // Each record carries the watermark in force before it, as the
        // engine computes it (sdk/ABI.md, "Time").
        let mut tag = self.watermark;
        for input in records {
            if let Some(delay) = self.out_of_orderness {
                tag = tag.max(max_ts.saturating_sub(delay));
            }
            let offset = self.next_offset.entry(input.partition).or_insert(0);
            write_record(
                &mut self.batch,
                *offset,
                input.timestamp,
                tag,
                input.partition,
                input.source,
                &input.key,
                &input.value,
            );
            *offset += 1;
            count += 1;
            max_ts = max_ts.max(input.timestamp);
        }
        let header = BatchHeader {
            count,
            flags: 0,
            watermark: self.watermark,
        };
        write_batch_header(&mut self.batch, header);
        let batch = std::mem::take(&mut self.batch);
        let result = self.runtime.process(&batch);
        self.batch = batch;
        self.collect(result)?;
        self.max_timestamp = max_ts;
        let mut wm = self.watermark;
        if let Some(delay) = self.out_of_orderness {
            wm = wm.max(max_ts.saturating_sub(delay));
        }
        // Also fires a timer the batch asked for at or below the current
        // watermark, which is due at once (sdk/ABI.md, `timer`).
        self.advance_watermark(wm)
    }

    /// Sends a record whose value bytes are given as they are.
    pub fn send_raw(
        &mut self,
        timestamp: i64,
        key: impl AsRef<[u8]>,
        value: &[u8],
    ) -> Result<(), Error> {
        self.send_batch([Input::raw(timestamp, key, value)])
    }

    /// Advances the input watermark to `wm`, as the host does: later batches
    /// carry it, and `on_watermark(wm)` is called if a timer the operator asked
    /// for is due.
    pub fn advance_watermark(&mut self, wm: i64) -> Result<(), Error> {
        self.watermark = self.watermark.max(wm);
        match self.timer {
            Some(ts) if ts <= self.watermark => self.call_on_watermark(self.watermark),
            _ => Ok(()),
        }
    }

    /// Calls `on_watermark(wm)` whether or not a timer is due (the host may do
    /// that too; an operator must take it in its stride).
    pub fn call_on_watermark(&mut self, wm: i64) -> Result<(), Error> {
        self.watermark = self.watermark.max(wm);
        self.timer = None;
        let result = self.runtime.on_watermark(wm);
        self.collect(result)
    }

    /// Snapshots the operator's state to bytes.
    pub fn snapshot(&mut self) -> Result<Vec<u8>, Error> {
        match self.runtime.snapshot().map(<[u8]>::to_vec) {
            Ok(bytes) => self.collect(Ok(())).map(|()| bytes),
            Err(err) => self.collect(Err(err)).map(|()| Vec::new()),
        }
    }

    /// Removes and returns what was emitted to `output` so far, in order.
    pub fn take(&mut self, output: &str) -> Vec<Output> {
        self.outputs.remove(output).unwrap_or_default()
    }

    /// Like [`Harness::take`], with values decoded to JSON.
    pub fn take_json(&mut self, output: &str) -> Vec<serde_json::Value> {
        self.take(output).iter().map(Output::json).collect()
    }

    /// Like [`Harness::take`], with values decoded into `T`.
    pub fn take_values<T: DeserializeOwned>(&mut self, output: &str) -> Result<Vec<T>, Error> {
        self.take(output).iter().map(Output::decode).collect()
    }

    /// Names of the outputs holding records not yet taken.
    pub fn output_names(&self) -> Vec<&str> {
        self.outputs.keys().map(String::as_str).collect()
    }

    /// The total of counter `name` over all successful calls.
    pub fn counter(&self, name: &str) -> i64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// The last value of gauge `name`.
    pub fn gauge(&self, name: &str) -> Option<i64> {
        self.gauges.get(name).copied()
    }

    /// Log lines written so far.
    pub fn logs(&self) -> &[(Level, String)] {
        &self.logs
    }

    /// The earliest timer the operator has asked the host for, if any.
    pub fn requested_timer(&self) -> Option<i64> {
        self.timer
    }

    /// The current input watermark.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// The operator, to inspect its state.
    pub fn operator(&self) -> &O {
        // `new` returns an error unless init succeeded.
        self.runtime
            .operator()
            .expect("a harness always holds an initialised operator")
    }

    fn runtime_watermark(&mut self) -> i64 {
        self.runtime.ctx_mut().watermark
    }

    /// Reads what the host imports received during the last call, keeping
    /// outputs and metrics only if the call succeeded (as the host does).
    fn collect(&mut self, result: Result<(), Error>) -> Result<(), Error> {
        let calls = std::mem::take(&mut self.runtime.ctx_mut().host.calls);
        self.logs.extend(calls.logs);
        for ts in calls.timers {
            self.timer = Some(self.timer.map_or(ts, |t| t.min(ts)));
        }
        result?;
        for (name, bytes) in calls.emits {
            let records = parse_emitted(&bytes).map_err(|e| Error::Output {
                output: name.clone(),
                reason: format!("garbage output: {e}"),
            })?;
            let out = self.outputs.entry(name).or_default();
            out.extend(records.into_iter().map(|r| Output {
                timestamp: r.timestamp,
                key: r.key.to_vec(),
                value: r.value.to_vec(),
            }));
        }
        for (kind, name, value) in calls.metrics {
            match kind {
                MetricKind::Counter => *self.counters.entry(name).or_default() += value,
                MetricKind::Gauge => {
                    self.gauges.insert(name, value);
                }
            }
        }
        Ok(())
    }
}
