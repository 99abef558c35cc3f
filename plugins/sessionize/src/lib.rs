//! `sessionize`: clickstream sessions per user as a Sluice plugin.
//!
//! Input: topic `shop`, key = `user_id`, values `{"click": {...}}`,
//! `{"cart": {...}}` or `{"order": {...}}` (docs/events.md). A user's events
//! less than `gap_ms` apart in event time form one session (the SDK's
//! `SessionWindows`: an event bridging two sessions merges them; one exactly
//! `gap_ms` after the last starts a new session). When the watermark passes
//! `last event + gap_ms`, the session is emitted on `main`, key = user,
//! timestamp = `window_end − 1`, value `Session` (see the README for the
//! fields). Events of an already emitted session go unchanged to `late`; a
//! value that does not decode goes unchanged to `dlq` (counter `bad_records`).

mod activity;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

pub use activity::Activity;

/// Default inactivity gap that ends a session: 30 minutes.
pub const DEFAULT_GAP_MS: i64 = 30 * 60 * 1_000;
/// Default and largest number of distinct pages a session reports.
pub const DEFAULT_MAX_PAGES: usize = 20;
/// Upper bound of `max_pages`.
pub const MAX_PAGES_LIMIT: usize = 1_000;

/// The operator config: `{"gap_ms": 1800000, "max_pages": 20}`, both optional.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Inactivity that ends a session, in ms.
    pub gap_ms: i64,
    /// Most distinct pages listed per session (the alphabetically first ones).
    pub max_pages: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            gap_ms: DEFAULT_GAP_MS,
            max_pages: DEFAULT_MAX_PAGES,
        }
    }
}

/// The parts of a shop event a session counts.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ShopEvent<'a> {
    Click(#[serde(borrow)] Click<'a>),
    Cart(#[serde(borrow)] Cart<'a>),
    Order(IgnoredAny),
}

#[derive(Deserialize)]
struct Click<'a> {
    #[serde(borrow)]
    page: &'a str,
}

#[derive(Deserialize)]
struct Cart<'a> {
    #[serde(borrow)]
    action: &'a str,
}

/// One finished session (the `main` output value).
#[derive(Serialize)]
struct Session<'a> {
    user_id: &'a str,
    session_start: i64,
    session_end: i64,
    events: u64,
    page_views: u64,
    pages: &'a [String],
    cart_adds: u64,
    checked_out: bool,
    ordered: bool,
    abandoned: bool,
    window_start: i64,
    window_end: i64,
}

/// The operator: the open sessions of every user.
#[derive(Serialize, Deserialize)]
pub struct Sessionize {
    gap_ms: i64,
    max_pages: usize,
    sessions: SessionWindows<String, Activity>,
}

impl Operator for Sessionize {
    type Config = Config;

    fn init(c: Config) -> Result<Self, Error> {
        if c.gap_ms <= 0 {
            return Err(Error::msg(format!(
                "gap_ms must be positive, got {}",
                c.gap_ms
            )));
        }
        if c.max_pages > MAX_PAGES_LIMIT {
            return Err(Error::msg(format!(
                "max_pages must be at most {MAX_PAGES_LIMIT}, got {}",
                c.max_pages
            )));
        }
        Ok(Sessionize {
            gap_ms: c.gap_ms,
            max_pages: c.max_pages,
            sessions: SessionWindows::new(c.gap_ms),
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        let (user, event) = match rec.key_str().and_then(|u| Ok((u, rec.value()?))) {
            Ok(decoded) => decoded,
            Err(err) => {
                ctx.warn(format_args!(
                    "shop event at offset {} of partition {} sent to dlq: {err}",
                    rec.offset(),
                    rec.partition()
                ));
                ctx.count("bad_records", 1);
                return ctx.forward(DLQ, rec);
            }
        };
        let max_pages = self.max_pages;
        self.sessions
            .add_record(rec, ctx, user, |a: &mut Activity| {
                a.events += 1;
                match event {
                    ShopEvent::Click(c) => a.view(c.page, max_pages),
                    ShopEvent::Cart(c) => a.cart(c.action),
                    ShopEvent::Order(_) => a.ordered = true,
                }
                a.cap_pages(max_pages);
            })?;
        Ok(())
    }

    fn on_watermark(&mut self, _wm: i64, ctx: &mut Ctx) -> Result<(), Error> {
        let gap = self.gap_ms;
        self.sessions.fire(ctx, |ctx, user, window, a| {
            let session = Session {
                user_id: user,
                session_start: window.start,
                session_end: window.end - gap,
                events: a.events,
                page_views: a.page_views,
                pages: &a.pages,
                cart_adds: a.cart_adds,
                checked_out: a.checked_out,
                ordered: a.ordered,
                abandoned: a.is_abandoned(),
                window_start: window.start,
                window_end: window.end,
            };
            ctx.count("sessions", 1);
            ctx.emit(MAIN, window.max_timestamp(), user, &session)
        })
    }

    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        if fresh.gap_ms != self.gap_ms {
            return Err(Error::msg(format!(
                "the snapshot's sessions were cut with gap_ms {} but the config asks for {}; a running job cannot change its gap (start a new job)",
                self.gap_ms, fresh.gap_ms
            )));
        }
        self.max_pages = fresh.max_pages;
        Ok(())
    }
}

sluice_sdk::export_operator!(Sessionize);
