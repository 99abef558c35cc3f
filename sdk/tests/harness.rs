//! The runtime's call protocol as an operator author sees it through the
//! harness: config decoding, failed calls, timers, metrics, snapshots.

use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_sdk::testing::{Harness, Input};
use sluice_sdk::{Ctx, Error, KeyedState, Level, Operator, Record};

#[derive(Debug, Deserialize)]
struct Command<'a> {
    #[serde(borrow)]
    op: &'a str,
    #[serde(default)]
    at: i64,
}

/// Counts records per key; `{"op": "timer", "at": t}` sets a timer, `{"op": "fail"}` fails.
#[derive(Serialize, Deserialize)]
struct Probe {
    counts: KeyedState<String, u64>,
    fired: Vec<i64>,
}

impl Operator for Probe {
    type Config = ();

    fn init((): ()) -> Result<Self, Error> {
        Ok(Probe {
            counts: KeyedState::new(),
            fired: Vec::new(),
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        let command: Command<'_> = rec.value()?;
        *self.counts.get_or_default(rec.key_str()?)? += 1;
        ctx.count("records", 1);
        ctx.gauge("keys", self.counts.len() as i64);
        ctx.emit("seen", rec.timestamp(), rec.key(), &command.op)?;
        match command.op {
            "timer" => ctx.set_timer(command.at)?,
            "fail" => return Err(Error::msg("asked to fail")),
            "log" => ctx.info(format_args!("key {}", rec.key_str()?)),
            _ => {}
        }
        Ok(())
    }

    fn on_timer(&mut self, ts: i64, ctx: &mut Ctx) -> Result<(), Error> {
        self.fired.push(ts);
        ctx.emit("timers", ts, "t", &ts)
    }
}

#[test]
fn a_unit_config_accepts_a_job_without_config() {
    assert!(Harness::<Probe>::without_config().is_ok());
    assert!(Harness::<Probe>::new(json!(null)).is_ok());
    let err = Harness::<Probe>::new(json!({"x": 1}))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("operator config does not match `()`"),
        "{err}"
    );
}

#[test]
fn a_failed_batch_emits_and_counts_nothing() {
    let mut h = Harness::<Probe>::without_config().unwrap();
    let batch = [
        Input::new(1, "a", &json!({"op": "x"})),
        Input::new(2, "a", &json!({"op": "fail"})),
    ];
    let err = h.send_batch(batch).unwrap_err().to_string();
    assert_eq!(
        err,
        "record at offset 1 of partition 0 (source 0): asked to fail"
    );
    assert!(h.take("seen").is_empty());
    assert_eq!(h.counter("records"), 0);
    h.send(3, "b", &json!({"op": "x"})).unwrap();
    assert_eq!(h.counter("records"), 1);
    assert_eq!(
        h.gauge("keys"),
        Some(2),
        "state changes of the failed call stay"
    );
}

#[test]
fn timers_fire_in_order_once_the_watermark_reaches_them() {
    let mut h = Harness::<Probe>::without_config().unwrap();
    for at in [300, 100, 200, 100] {
        h.send(1, "k", &json!({"op": "timer", "at": at})).unwrap();
    }
    assert_eq!(h.requested_timer(), Some(100));
    h.advance_watermark(99).unwrap();
    assert!(h.take("timers").is_empty());
    h.advance_watermark(250).unwrap();
    assert_eq!(h.take_json("timers"), vec![json!(100), json!(200)]);
    assert_eq!(
        h.requested_timer(),
        Some(300),
        "the next one is asked for again"
    );
    let snapshot = h.snapshot().unwrap();
    let mut restored = Harness::<Probe>::restore(json!(null), &snapshot).unwrap();
    assert_eq!(
        restored.requested_timer(),
        Some(300),
        "restore asks for pending timers"
    );
    restored.advance_watermark(1_000).unwrap();
    assert_eq!(restored.take_json("timers"), vec![json!(300)]);
    assert_eq!(restored.operator().fired, vec![100, 200, 300]);
}

#[test]
fn a_timer_at_or_below_the_watermark_fires_right_after_the_call() {
    let mut h = Harness::<Probe>::without_config().unwrap();
    h.advance_watermark(500).unwrap();
    h.send(1, "k", &json!({"op": "timer", "at": 400})).unwrap();
    assert_eq!(h.take_json("timers"), vec![json!(400)]);
}

#[test]
fn logs_and_gauges_reach_the_host() {
    let mut h = Harness::<Probe>::without_config().unwrap();
    h.send(1, "k1", &json!({"op": "log"})).unwrap();
    assert_eq!(h.logs(), &[(Level::Info, "key k1".to_string())]);
    assert_eq!(h.gauge("keys"), Some(1));
}

/// The same state under a bumped state version.
#[derive(Serialize, Deserialize)]
struct ProbeV2(Probe);

impl Operator for ProbeV2 {
    type Config = ();
    const STATE_VERSION: u32 = 2;

    fn init((): ()) -> Result<Self, Error> {
        Probe::init(()).map(ProbeV2)
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        self.0.process(rec, ctx)
    }
}

#[test]
fn a_snapshot_of_another_state_version_is_refused_naming_both() {
    let mut old = Harness::<Probe>::without_config().unwrap();
    let snapshot = old.snapshot().unwrap();
    let err = Harness::<ProbeV2>::restore(json!(null), &snapshot)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("state version 1") && err.contains("state version 2"),
        "{err}"
    );
    let err = Harness::<Probe>::restore(json!(null), b"not a snapshot")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a sluice-sdk snapshot"), "{err}");
}

#[test]
fn a_state_that_does_not_decode_is_refused_with_advice() {
    #[derive(Serialize, Deserialize)]
    struct Other {
        counts: Vec<String>,
    }
    impl Operator for Other {
        type Config = ();
        fn init((): ()) -> Result<Self, Error> {
            Ok(Other {
                counts: vec!["x".into()],
            })
        }
        fn process(&mut self, _: &Record<'_>, _: &mut Ctx) -> Result<(), Error> {
            Ok(())
        }
    }
    let snapshot = Harness::<Other>::without_config()
        .unwrap()
        .snapshot()
        .unwrap();
    let err = Harness::<Probe>::restore(json!(null), &snapshot)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("raise `STATE_VERSION`"), "{err}");
}
