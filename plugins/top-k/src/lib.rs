//! `top-k`: leaderboards and top-N rankings as a Sluice plugin.
//!
//! Generic over three configured fields of the input values: a group
//! (`contest_id`), an entry (`player_id`) and an integer score (`points`).
//! Scores are summed per group, entry and tumbling window (`window_ms`); when
//! the watermark passes a window end, each group that had scores in the
//! window is reported:
//!
//! - mode `running` (the leaderboard): the window's sums are added to the
//!   group's running totals (`board.rs`); every entry whose total or rank
//!   changed goes to `main` as one row per entry, keyed `<group>/<entry>`,
//!   holding its total, rank and `as_of` (no window fields, so a view keeps
//!   one row per entry: the current standings);
//! - mode `window`: the group's best `n` entries of that window alone go to
//!   `main`, keyed `<group>/<entry>`, with `window_start`/`window_end`;
//!   with `phase: partial` they go out keyed by group instead, in the input's
//!   shape, for a second `top-k` after re-keying (a global top N over
//!   partitions).
//!
//! Both modes also emit the group's best `n` as one record on `top`, keyed by
//! group. Rows carry the configured field names. Late records go unchanged to
//! `late`; values without the fields go unchanged to `dlq` (`bad_records`).

mod board;
mod fields;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

pub use board::{Board, Change, Standing};
pub use fields::{NO_GROUP, Names, Row, Scored};

use fields::{Ranked, TopList};

/// Output of the per-group top lists.
pub const TOP: &str = "top";
/// Largest `n` accepted.
pub const MAX_N: usize = 10_000;
/// Default bound of entries per group.
pub const DEFAULT_MAX_ENTRIES_PER_GROUP: usize = 100_000;

/// How scores accumulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Running totals over all time (a leaderboard).
    Running,
    /// Each window on its own.
    Window,
}

/// Which half of a two-operator global ranking (window mode only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Rank and report (a single operator is its own final phase).
    Final,
    /// Send each partition's best `n` on, keyed by group, for a final phase.
    Partial,
}

/// The operator config; every field is optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `running` (default) or `window`.
    pub mode: Mode,
    /// `final` (default) or `partial` (window mode only).
    pub phase: Phase,
    /// Tumbling window in ms: how often standings are reported.
    pub window_ms: i64,
    /// Entries in a top list (and, in window mode, rows per window and group).
    pub n: usize,
    /// Field naming the group; `null`: all records in one group `all`.
    pub group_field: Option<String>,
    /// Field naming the ranked entry (string or integer).
    pub key_field: String,
    /// Integer field holding the score.
    pub score_field: String,
    /// Most entries one group may hold (running totals, or one window's).
    pub max_entries_per_group: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Running,
            phase: Phase::Final,
            window_ms: 10_000,
            n: 10,
            group_field: Some("contest_id".into()),
            key_field: "player_id".into(),
            score_field: "points".into(),
            max_entries_per_group: DEFAULT_MAX_ENTRIES_PER_GROUP,
        }
    }
}

/// The settings that follow the config across a restore.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Settings {
    mode: Mode,
    phase: Phase,
    window_ms: i64,
    n: usize,
    names: Names,
    max_entries_per_group: usize,
}

/// The operator: the window sums, and in running mode every group's board.
#[derive(Serialize, Deserialize)]
pub struct TopK {
    settings: Settings,
    windows: TumblingWindows<String, BTreeMap<String, i64>>,
    boards: KeyedState<String, Board>,
}

impl TopK {
    /// The running standings of `group` (running mode).
    pub fn board(&self, group: &str) -> Option<&Board> {
        self.boards.get(group)
    }

    fn add(&mut self, rec: &Record<'_>, ctx: &mut Ctx, s: &Scored<'_>) -> Result<(), Error> {
        let max = self.settings.max_entries_per_group;
        let full = || Error::Limit {
            limit: "max_entries_per_group",
            max: max as u64,
            what: format!("entry `{}` in group `{}`", s.key, s.group),
        };
        if let Some(board) = self.boards.get(s.group.as_ref())
            && board.len() >= max
            && !board.contains(&s.key)
        {
            return Err(full());
        }
        let mut refused = false;
        self.windows
            .add_record(rec, ctx, s.group.as_ref(), |sums| {
                let held = sums.len();
                match sums.get_mut(s.key.as_ref()) {
                    Some(sum) => *sum = sum.saturating_add(s.score),
                    None if held >= max => refused = true,
                    None => {
                        sums.insert(s.key.clone().into_owned(), s.score);
                    }
                }
            })?;
        if refused {
            return Err(full());
        }
        Ok(())
    }

    fn top_list(
        ctx: &mut Ctx,
        st: &Settings,
        group: &str,
        window: Window,
        best: &[(&String, i64)],
        entries: usize,
    ) -> Result<(), Error> {
        let list = TopList {
            names: &st.names,
            group,
            top: best
                .iter()
                .enumerate()
                .map(|(i, (key, score))| Ranked {
                    names: &st.names,
                    rank: i as u64 + 1,
                    key,
                    score: *score,
                })
                .collect(),
            entries: entries as u64,
            window,
        };
        ctx.emit(TOP, window.max_timestamp(), group, &list)
    }

    fn fire_running(&mut self, ctx: &mut Ctx) -> Result<(), Error> {
        let st = &self.settings;
        let boards = &mut self.boards;
        self.windows.fire(ctx, |ctx, group, window, sums| {
            let board = boards.get_or_default(group.as_str())?;
            let at = window.max_timestamp();
            for c in board.apply(sums) {
                let row = Row {
                    names: &st.names,
                    group,
                    key: &c.key,
                    score: c.score,
                    rank: Some(c.rank),
                    as_of: Some(window.end),
                    window: None,
                };
                ctx.emit(MAIN, at, st.names.entry_key(group, &c.key), &row)?;
            }
            Self::top_list(ctx, st, group, window, &board.top(st.n), board.len())
        })
    }

    fn fire_window(&mut self, ctx: &mut Ctx) -> Result<(), Error> {
        let st = &self.settings;
        self.windows.fire(ctx, |ctx, group, window, sums| {
            let mut best = board::ranked(sums.iter().map(|(k, v)| (k, *v)));
            best.truncate(st.n);
            let at = window.max_timestamp();
            for (i, (key, score)) in best.iter().enumerate() {
                let partial = st.phase == Phase::Partial;
                let row = Row {
                    names: &st.names,
                    group,
                    key,
                    score: *score,
                    rank: (!partial).then_some(i as u64 + 1),
                    as_of: None,
                    window: (!partial).then_some(window),
                };
                if partial {
                    ctx.emit(MAIN, at, group, &row)?;
                } else {
                    ctx.emit(MAIN, at, st.names.entry_key(group, key), &row)?;
                }
            }
            if st.phase == Phase::Final {
                Self::top_list(ctx, st, group, window, &best, sums.len())?;
            }
            Ok(())
        })
    }
}

impl Operator for TopK {
    type Config = Config;

    fn init(c: Config) -> Result<Self, Error> {
        if c.window_ms <= 0 {
            return Err(Error::msg(format!(
                "window_ms must be positive, got {}",
                c.window_ms
            )));
        }
        if c.n == 0 || c.n > MAX_N {
            return Err(Error::msg(format!("n must be 1 to {MAX_N}, got {}", c.n)));
        }
        if c.max_entries_per_group == 0 {
            return Err(Error::msg("max_entries_per_group must be at least 1"));
        }
        if (c.mode, c.phase) == (Mode::Running, Phase::Partial) {
            return Err(Error::msg(
                "phase `partial` needs mode `window`: running totals must live in one place; key the input by the group instead",
            ));
        }
        let empty = [
            Some(&c.key_field),
            Some(&c.score_field),
            c.group_field.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(String::is_empty);
        if empty {
            return Err(Error::msg("field names must not be empty"));
        }
        Ok(TopK {
            settings: Settings {
                mode: c.mode,
                phase: c.phase,
                window_ms: c.window_ms,
                n: c.n,
                names: Names {
                    group: c.group_field,
                    key: c.key_field,
                    score: c.score_field,
                },
                max_entries_per_group: c.max_entries_per_group,
            },
            windows: TumblingWindows::new(c.window_ms),
            boards: KeyedState::new(),
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        match self.settings.names.extract(rec.raw_value()) {
            Ok(scored) => self.add(rec, ctx, &scored),
            Err(err) => {
                ctx.warn(format_args!(
                    "record at offset {} of partition {} sent to dlq: {err}",
                    rec.offset(),
                    rec.partition()
                ));
                ctx.count("bad_records", 1);
                ctx.forward(DLQ, rec)
            }
        }
    }

    fn on_watermark(&mut self, _wm: i64, ctx: &mut Ctx) -> Result<(), Error> {
        match self.settings.mode {
            Mode::Running => self.fire_running(ctx),
            Mode::Window => self.fire_window(ctx),
        }
    }

    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        let (old, new) = (&self.settings, &fresh.settings);
        if (old.mode, old.phase, old.window_ms, &old.names)
            != (new.mode, new.phase, new.window_ms, &new.names)
        {
            return Err(Error::msg(format!(
                "the snapshot ranks {:?} ({:?} mode, {:?} phase, {} ms windows) but the config asks for {:?} ({:?}, {:?}, {} ms); a running job can change only `n` and `max_entries_per_group`",
                old.names,
                old.mode,
                old.phase,
                old.window_ms,
                new.names,
                new.mode,
                new.phase,
                new.window_ms
            )));
        }
        self.settings.n = new.n;
        self.settings.max_entries_per_group = new.max_entries_per_group;
        Ok(())
    }
}

sluice_sdk::export_operator!(TopK);
