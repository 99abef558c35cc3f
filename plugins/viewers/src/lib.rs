//! `viewers`: concurrent viewers per live stream as a Sluice plugin.
//!
//! Input: topic `heartbeats`, key = `stream_id`, values `{viewer_id, stream_id,
//! bitrate_kbps, buffering_ms, ts}` (docs/events.md). Per stream and tumbling
//! window (`window_ms`, default 30 s): the exact number of distinct viewers,
//! the heartbeats and the share of them that report buffering, and the peak of
//! distinct viewers over this and every earlier window of the stream. Emitted
//! on `main` when the watermark passes the window end, key = `stream_id`,
//! timestamp = `window_end − 1`. Late heartbeats go unchanged to `late`; values
//! that do not decode go unchanged to `dlq` (counter `bad_records`).
//!
//! The peak is state across windows: windows fire in end order, so it depends
//! only on the input. The topic must be partitioned by `stream_id` (as it is).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

/// Default window: 30 s.
pub const DEFAULT_WINDOW_MS: i64 = 30_000;
/// Default bound of distinct viewers counted per stream and window.
pub const DEFAULT_MAX_VIEWERS: usize = 1_000_000;

/// The operator config: `{"window_ms": 30000, "max_viewers": 1000000}`, both optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Tumbling window size in ms.
    pub window_ms: i64,
    /// Most distinct viewers remembered per stream and window; past it the
    /// count saturates and the result says `viewers_exact: false`.
    pub max_viewers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            window_ms: DEFAULT_WINDOW_MS,
            max_viewers: DEFAULT_MAX_VIEWERS,
        }
    }
}

#[derive(Deserialize)]
struct Heartbeat<'a> {
    #[serde(borrow)]
    viewer_id: &'a str,
    #[serde(borrow)]
    stream_id: &'a str,
    buffering_ms: u64,
}

/// One stream's heartbeats in one window.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Audience {
    viewers: BTreeSet<String>,
    /// A viewer was not remembered because of `max_viewers`.
    saturated: bool,
    beats: u64,
    buffering_beats: u64,
    buffering_ms: u64,
}

/// One stream's window (the `main` output value).
#[derive(Serialize)]
struct Report<'a> {
    stream_id: &'a str,
    viewers: u64,
    viewers_exact: bool,
    beats: u64,
    buffering_beats: u64,
    buffering_ratio: f64,
    buffering_ms: u64,
    peak_viewers: u64,
    window_start: i64,
    window_end: i64,
}

/// The operator: open windows and each stream's peak so far.
#[derive(Serialize, Deserialize)]
pub struct Viewers {
    window_ms: i64,
    max_viewers: usize,
    windows: TumblingWindows<String, Audience>,
    peaks: KeyedState<String, u64>,
}

impl Operator for Viewers {
    type Config = Config;

    fn init(c: Config) -> Result<Self, Error> {
        if c.window_ms <= 0 {
            return Err(Error::msg(format!(
                "window_ms must be positive, got {}",
                c.window_ms
            )));
        }
        if c.max_viewers == 0 {
            return Err(Error::msg("max_viewers must be at least 1, got 0"));
        }
        Ok(Viewers {
            window_ms: c.window_ms,
            max_viewers: c.max_viewers,
            windows: TumblingWindows::new(c.window_ms),
            peaks: KeyedState::new(),
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        let beat: Heartbeat<'_> = match rec.value() {
            Ok(beat) => beat,
            Err(err) => {
                ctx.warn(format_args!(
                    "heartbeat at offset {} of partition {} sent to dlq: {err}",
                    rec.offset(),
                    rec.partition()
                ));
                ctx.count("bad_records", 1);
                return ctx.forward(DLQ, rec);
            }
        };
        let max = self.max_viewers;
        self.windows.add_record(rec, ctx, beat.stream_id, |a| {
            a.beats += 1;
            if beat.buffering_ms > 0 {
                a.buffering_beats += 1;
                a.buffering_ms = a.buffering_ms.saturating_add(beat.buffering_ms);
            }
            if !a.viewers.contains(beat.viewer_id) {
                if a.viewers.len() < max {
                    a.viewers.insert(beat.viewer_id.to_owned());
                } else {
                    a.saturated = true;
                }
            }
        })?;
        Ok(())
    }

    fn on_watermark(&mut self, _wm: i64, ctx: &mut Ctx) -> Result<(), Error> {
        let peaks = &mut self.peaks;
        self.windows.fire(ctx, |ctx, stream, window, a| {
            let viewers = a.viewers.len() as u64;
            let peak = peaks.get_or_default(stream.as_str())?;
            *peak = (*peak).max(viewers);
            let report = Report {
                stream_id: stream,
                viewers,
                viewers_exact: !a.saturated,
                beats: a.beats,
                buffering_beats: a.buffering_beats,
                buffering_ratio: a.buffering_beats as f64 / a.beats.max(1) as f64,
                buffering_ms: a.buffering_ms,
                peak_viewers: *peak,
                window_start: window.start,
                window_end: window.end,
            };
            ctx.emit(MAIN, window.max_timestamp(), stream, &report)
        })
    }

    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        if fresh.window_ms != self.window_ms {
            return Err(Error::msg(format!(
                "the snapshot's windows are {} ms but the config asks for {} ms; a running job cannot change its window (start a new job)",
                self.window_ms, fresh.window_ms
            )));
        }
        self.max_viewers = fresh.max_viewers;
        Ok(())
    }
}

sluice_sdk::export_operator!(Viewers);
