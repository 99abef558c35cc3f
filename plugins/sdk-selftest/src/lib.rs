//! `sdk-selftest`: a plugin that does whatever its input records tell it to, so
//! the engine's tests can drive every SDK feature through the real Wasm ABI:
//! outputs, keyed state, timers, logs, counters, errors and panics.
//!
//! Each record's value is a [`Command`]. Not bundled with the engine
//! (`package.metadata.sluice.bundled = false`); built to Wasm for tests only.

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;
use sluice_sdk::{Level, TumblingWindows};

/// What one input record asks the plugin to do.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", tag = "cmd")]
pub enum Command<'a> {
    /// Emit `n` copies of `{key, n: i}` to `output`.
    Emit { output: &'a str, n: u32 },
    /// Add 1 to the keyed count of the record key and emit the new count to `main`.
    Count,
    /// Set a timer at `at`.
    Timer { at: i64 },
    /// Count the record into a 1-second tumbling window per key.
    Window,
    /// Write a log line and bump the counter `selftest_logs`.
    Log { line: &'a str },
    /// Emit one record to `main`, then fail the call with `message`.
    Fail { message: &'a str },
    /// Emit one record to `main`, then panic with `message`.
    Panic { message: &'a str },
}

/// Config: a prefix for emitted keys, and how slow to be.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Prefixed to every key the plugin emits.
    pub prefix: String,
    /// Rounds of busy arithmetic before each record: a deliberately slow operator (for
    /// backpressure tests). Keep one call (`batch_max_records` × this) well inside the
    /// host's call deadline.
    pub spin: u32,
}

/// The operator; its keyed counts and windows are its state.
#[derive(Serialize, Deserialize)]
pub struct SelfTest {
    prefix: String,
    spin: u32,
    counts: KeyedState<String, u64>,
    windows: TumblingWindows<String, u64>,
}

#[derive(Serialize)]
struct Numbered<'a> {
    key: &'a str,
    n: u32,
}

impl Operator for SelfTest {
    type Config = Config;

    fn init(config: Config) -> Result<Self, Error> {
        Ok(SelfTest {
            prefix: config.prefix,
            spin: config.spin,
            counts: KeyedState::new(),
            windows: TumblingWindows::new(1_000),
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        spin(self.spin);
        let key = rec.key_str()?;
        let out_key = format!("{}{key}", self.prefix);
        match rec.value::<Command<'_>>()? {
            Command::Emit { output, n } => {
                for n in 0..n {
                    ctx.emit(output, rec.timestamp(), &out_key, &Numbered { key, n })?;
                }
            }
            Command::Count => {
                let count = self.counts.get_or_default(key)?;
                *count += 1;
                ctx.emit(MAIN, rec.timestamp(), &out_key, &*count)?;
            }
            Command::Timer { at } => ctx.set_timer(at)?,
            Command::Window => {
                self.windows.add_record(rec, ctx, key, |n| *n += 1)?;
            }
            Command::Log { line } => {
                ctx.log(Level::Warn, line);
                ctx.count("selftest_logs", 1);
            }
            Command::Fail { message } => {
                ctx.emit(MAIN, rec.timestamp(), &out_key, "before failing")?;
                return Err(Error::msg(message));
            }
            Command::Panic { message } => {
                ctx.emit(MAIN, rec.timestamp(), &out_key, "before panicking")?;
                panic!("{message}");
            }
        }
        Ok(())
    }

    fn on_timer(&mut self, ts: i64, ctx: &mut Ctx) -> Result<(), Error> {
        ctx.emit("timers", ts, "timer", &ts)
    }

    fn on_watermark(&mut self, _wm: i64, ctx: &mut Ctx) -> Result<(), Error> {
        self.windows.fire(ctx, |ctx, key, window, count| {
            ctx.emit(
                "windows",
                window.max_timestamp(),
                key,
                &(window.start, window.end, *count),
            )
        })
    }
}

/// Burns `rounds` rounds of arithmetic the compiler cannot remove.
fn spin(rounds: u32) {
    let mut x = 0x9e37_79b9_u64;
    for _ in 0..rounds {
        x = std::hint::black_box(x.rotate_left(5) ^ 0x5851_f42d);
    }
    std::hint::black_box(x);
}

sluice_sdk::export_operator!(SelfTest);
