//! Fantasy-sports scores (SCENARIOS.md §5): `{player_id, contest_id, points, ts}` on topic
//! `scores`, key = `contest_id`.
//!
//! Contests are drawn by Zipf popularity over `keys` contests. Contest `c` has a roster of
//! `players_per_contest` players, `player-<(c × players_per_contest + j) mod players>`, so
//! players can sit in several contests. Points follow a cricket-like mix: mostly 1–6, some
//! 8–25 for wickets and milestones, and occasional −2 penalties.

use serde::{Deserialize, Serialize};

use super::ScenarioConfig;
use crate::GenError;
use crate::encode::EventRecord;
use crate::rng::Zipf;

const STREAM_SLOT: u64 = 0x7363_6f72; // "scor"

/// One scoring event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Score {
    /// `player-<n>`.
    pub player_id: String,
    /// `contest-<n>`.
    pub contest_id: String,
    /// Points won (may be negative).
    pub points: i64,
    /// Event time, epoch ms.
    pub ts: i64,
}

impl EventRecord for Score {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.contest_id.as_bytes());
    }

    fn timestamp(&self) -> i64 {
        self.ts
    }
}

/// Everything that determines a scores stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoresConfig {
    /// Shared knobs; `keys` = number of contests.
    pub scenario: ScenarioConfig,
    /// Number of players overall.
    pub players: u64,
    /// Roster size of each contest.
    pub players_per_contest: u64,
}

impl Default for ScoresConfig {
    fn default() -> Self {
        ScoresConfig {
            scenario: ScenarioConfig {
                keys: 50,
                skew: 1.0,
                ..ScenarioConfig::default()
            },
            players: 100_000,
            players_per_contest: 1_000,
        }
    }
}

/// The scores stream in emission order.
#[derive(Debug, Clone)]
pub struct ScoresGenerator {
    cfg: ScoresConfig,
    zipf: Zipf,
    slot: u64,
}

impl ScoresGenerator {
    /// Validates `cfg`.
    pub fn new(cfg: ScoresConfig) -> Result<Self, GenError> {
        const G: &str = "scores";
        cfg.scenario.validate(G)?;
        if cfg.players == 0 || cfg.players_per_contest == 0 || cfg.players_per_contest > cfg.players
        {
            return Err(GenError::config(
                G,
                "players/players_per_contest",
                format!("is {}/{}", cfg.players, cfg.players_per_contest),
                "use 1 <= players_per_contest <= players",
            ));
        }
        Ok(ScoresGenerator {
            zipf: cfg.scenario.zipf(),
            cfg,
            slot: 0,
        })
    }
}

impl Iterator for ScoresGenerator {
    type Item = Score;

    fn next(&mut self) -> Option<Score> {
        let s = &self.cfg.scenario;
        if self.slot >= s.count {
            return None;
        }
        let slot = self.slot;
        self.slot += 1;
        let mut rng = s.rng(STREAM_SLOT, slot);
        let contest = self.zipf.sample(&mut rng);
        let seat = rng.below(self.cfg.players_per_contest);
        let player = (contest * self.cfg.players_per_contest + seat) % self.cfg.players;
        let r = rng.below(100);
        let points = match r {
            0..=4 => -2,
            5..=84 => [1, 1, 2, 4, 6][rng.below(5) as usize],
            _ => rng.between(8, 25) as i64,
        };
        Some(Score {
            player_id: format!("player-{player}"),
            contest_id: format!("contest-{contest}"),
            points,
            ts: s.event_time(slot),
        })
    }
}
