//! Live-stream heartbeats (SCENARIOS.md §4): `{viewer_id, stream_id, bitrate_kbps,
//! buffering_ms, ts}` on topic `heartbeats`, key = `stream_id`.
//!
//! `viewers` viewers beat in round-robin (slot `s` is viewer `s mod viewers`), so each viewer
//! beats every `viewers / rate` seconds of event time. A viewer watches one stream, chosen by
//! Zipf popularity over `keys` streams, and re-chooses every `switch_every` beats, so viewer
//! counts per stream drift over time. Bitrate is a per-viewer rung of a ladder that sometimes
//! drops one rung; buffering is 0 except in a `buffering_share` of beats.

use serde::{Deserialize, Serialize};

use super::{ScenarioConfig, check_share};
use crate::GenError;
use crate::encode::EventRecord;
use crate::rng::{Rng, Zipf, mix64};

/// Bitrate ladder in kbit/s.
pub const BITRATES_KBPS: [u32; 5] = [400, 800, 1_600, 3_000, 6_000];

const STREAM_SLOT: u64 = 0x6265_6174; // "beat"
const STREAM_CHOICE: u64 = 0x7761_7463; // "watc"
const STREAM_RUNG: u64 = 0x7275_6e67; // "rung"

/// One heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Heartbeat {
    /// `viewer-<n>`.
    pub viewer_id: String,
    /// `stream-<n>`.
    pub stream_id: String,
    /// Current bitrate.
    pub bitrate_kbps: u32,
    /// Time spent buffering since the last beat.
    pub buffering_ms: u32,
    /// Event time, epoch ms.
    pub ts: i64,
}

impl EventRecord for Heartbeat {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.stream_id.as_bytes());
    }

    fn timestamp(&self) -> i64 {
        self.ts
    }
}

/// Everything that determines a heartbeats stream.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatsConfig {
    /// Shared knobs; `keys` = number of streams, `skew` = stream popularity.
    pub scenario: ScenarioConfig,
    /// Number of viewers.
    pub viewers: u64,
    /// Beats before a viewer picks a stream again.
    pub switch_every: u64,
    /// Share of beats that report buffering.
    pub buffering_share: f64,
}

impl Default for HeartbeatsConfig {
    fn default() -> Self {
        HeartbeatsConfig {
            scenario: ScenarioConfig {
                keys: 20,
                skew: 1.0,
                ..ScenarioConfig::default()
            },
            viewers: 5_000,
            switch_every: 60,
            buffering_share: 0.05,
        }
    }
}

/// The heartbeats stream in emission order.
#[derive(Debug, Clone)]
pub struct HeartbeatsGenerator {
    cfg: HeartbeatsConfig,
    zipf: Zipf,
    slot: u64,
}

impl HeartbeatsGenerator {
    /// Validates `cfg`.
    pub fn new(cfg: HeartbeatsConfig) -> Result<Self, GenError> {
        const G: &str = "heartbeats";
        cfg.scenario.validate(G)?;
        check_share(G, "buffering_share", cfg.buffering_share)?;
        if cfg.viewers == 0 || cfg.switch_every == 0 {
            let problem = format!(
                "viewers {} / switch_every {}",
                cfg.viewers, cfg.switch_every
            );
            return Err(GenError::config(
                G,
                "viewers/switch_every",
                problem,
                "use at least 1 of each",
            ));
        }
        Ok(HeartbeatsGenerator {
            zipf: cfg.scenario.zipf(),
            cfg,
            slot: 0,
        })
    }

    /// The stream viewer `v` watches at its beat number `beat`.
    pub fn stream_of(&self, v: u64, beat: u64) -> u64 {
        let epoch = beat / self.cfg.switch_every;
        self.zipf.sample(&mut Rng::new(
            self.cfg.scenario.seed,
            STREAM_CHOICE ^ mix64(epoch),
            v,
        ))
    }
}

impl Iterator for HeartbeatsGenerator {
    type Item = Heartbeat;

    fn next(&mut self) -> Option<Heartbeat> {
        let s = &self.cfg.scenario;
        if self.slot >= s.count {
            return None;
        }
        let slot = self.slot;
        self.slot += 1;
        let (v, beat) = (slot % self.cfg.viewers, slot / self.cfg.viewers);
        let mut rng = s.rng(STREAM_SLOT, slot);
        let rung = Rng::new(s.seed, STREAM_RUNG, v).below(BITRATES_KBPS.len() as u64) as usize;
        let rung = if rung > 0 && rng.chance(0.1) {
            rung - 1
        } else {
            rung
        };
        let buffering_ms = if rng.chance(self.cfg.buffering_share) {
            rng.between(100, 5_000) as u32
        } else {
            0
        };
        Some(Heartbeat {
            viewer_id: format!("viewer-{v}"),
            stream_id: format!("stream-{}", self.stream_of(v, beat)),
            bitrate_kbps: BITRATES_KBPS[rung],
            buffering_ms,
            ts: s.event_time(slot),
        })
    }
}
