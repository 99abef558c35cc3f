//! `dedup-validate`: data quality on ingest as a Sluice plugin.
//!
//! For any stream whose values are maps with an id field: each record is first
//! checked against the declared schema (`schema.rs`: type, presence, range);
//! a record that fails goes to `dlq` as `{reason, record}`, the reason naming
//! the field and the rule. A valid record whose id was already let through
//! within `window_ms` of event time is a duplicate: dropped and counted in
//! `duplicates`. Every other record passes to `main` unchanged (same key,
//! timestamp and value bytes).
//!
//! The dedup horizon is event time, not a clock: each id remembers the latest
//! event time it was let through at, and a keyed timer forgets it once the
//! watermark passes that time plus `window_ms` — after which no record that is
//! not late can be within the window of it.

mod scan;
mod schema;

use serde::{Deserialize, Serialize};
use sluice_sdk::prelude::*;

pub use scan::{MAX_FIELDS, Scalar, scan};
pub use schema::{FieldRule, FieldType};

/// Default dedup horizon: 10 minutes.
pub const DEFAULT_WINDOW_MS: i64 = 600_000;
/// Default bound of ids remembered at once.
pub const DEFAULT_MAX_IDS: usize = 10_000_000;

/// The operator config: `{"id_field": "txn_id", "window_ms": 600000,
/// "schema": [{"field": "amount", "type": "integer", "min": 1}], "max_ids": 10000000}`;
/// `id_field` is required.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Field holding the record's id (a string or an integer).
    pub id_field: String,
    /// Dedup horizon in ms of event time.
    #[serde(default = "default_window_ms")]
    pub window_ms: i64,
    /// Declared fields, checked in this order.
    #[serde(default)]
    pub schema: Vec<FieldRule>,
    /// Most ids remembered at once; a new id past it fails the call naming the bound.
    #[serde(default = "default_max_ids")]
    pub max_ids: usize,
}

fn default_window_ms() -> i64 {
    DEFAULT_WINDOW_MS
}

fn default_max_ids() -> usize {
    DEFAULT_MAX_IDS
}

/// The dead letter of an invalid record: `{reason, record}` with the record's
/// value embedded as it was.
fn dead_letter(out: &mut Vec<u8>, reason: &str, record: &[u8]) {
    out.clear();
    // Writing MessagePack into a Vec cannot fail.
    let _ = rmp::encode::write_map_len(out, 2);
    let _ = rmp::encode::write_str(out, "reason");
    let _ = rmp::encode::write_str(out, reason);
    let _ = rmp::encode::write_str(out, "record");
    out.extend_from_slice(record);
}

/// The operator: the rules and the ids seen within the horizon.
#[derive(Serialize, Deserialize)]
pub struct DedupValidate {
    id_field: String,
    window_ms: i64,
    schema: Vec<FieldRule>,
    /// id → latest event time it was let through at.
    seen: KeyedState<String, i64>,
    forget: KeyedTimers<String>,
    #[serde(skip)]
    buf: Vec<u8>,
}

impl DedupValidate {
    /// Number of ids remembered.
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// The id of a record, or why it is invalid, using scanned `slots`
    /// (slot 0 is the id field, slot `i + 1` the schema's field `i`).
    fn check(&self, slots: &[Scalar<'_>]) -> Result<(), String> {
        match slots[0] {
            Scalar::Str(_) | Scalar::Int(_) => {}
            Scalar::Absent | Scalar::Nil => {
                return Err(format!("id field `{}` is missing", self.id_field));
            }
            other => {
                return Err(format!(
                    "id field `{}` must be a string or an integer, got a value of type {}",
                    self.id_field,
                    other.kind()
                ));
            }
        }
        for (rule, value) in self.schema.iter().zip(&slots[1..]) {
            rule.check(*value)?;
        }
        Ok(())
    }

    /// Whether a valid record with `id` at `ts` is a duplicate; if not,
    /// remembers it.
    fn is_duplicate(&mut self, ctx: &mut Ctx, id: &str, ts: i64) -> Result<bool, Error> {
        let window = self.window_ms;
        if let Some(kept) = self.seen.get_mut(id) {
            if ts.abs_diff(*kept) < window.unsigned_abs() {
                return Ok(true);
            }
            if ts > *kept {
                *kept = ts;
                self.forget
                    .set(ctx, ts.saturating_add(window), id.to_owned())?;
            }
            return Ok(false);
        }
        self.seen.insert(id.to_owned(), ts)?;
        self.forget
            .set(ctx, ts.saturating_add(window), id.to_owned())?;
        Ok(false)
    }
}

impl Operator for DedupValidate {
    type Config = Config;

    fn init(c: Config) -> Result<Self, Error> {
        if c.id_field.is_empty() {
            return Err(Error::msg("id_field must name a field"));
        }
        if c.window_ms <= 0 {
            return Err(Error::msg(format!(
                "window_ms must be positive, got {}",
                c.window_ms
            )));
        }
        if c.schema.len() >= MAX_FIELDS {
            return Err(Error::msg(format!(
                "the schema declares {} fields; at most {} are supported",
                c.schema.len(),
                MAX_FIELDS - 1
            )));
        }
        for (i, rule) in c.schema.iter().enumerate() {
            rule.validate().map_err(Error::msg)?;
            if rule.field == c.id_field || c.schema[..i].iter().any(|r| r.field == rule.field) {
                return Err(Error::msg(format!(
                    "schema field `{}` is declared twice (or is the id field)",
                    rule.field
                )));
            }
        }
        Ok(DedupValidate {
            id_field: c.id_field,
            window_ms: c.window_ms,
            schema: c.schema,
            seen: KeyedState::with_max_keys(c.max_ids),
            forget: KeyedTimers::new(),
            buf: Vec::new(),
        })
    }

    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
        let mut names = [""; MAX_FIELDS];
        names[0] = &self.id_field;
        for (slot, rule) in names[1..].iter_mut().zip(&self.schema) {
            *slot = &rule.field;
        }
        let names = &names[..=self.schema.len()];
        let mut slots = [Scalar::Absent; MAX_FIELDS];
        let verdict = scan(rec.raw_value(), names, &mut slots).and_then(|()| self.check(&slots));
        if let Err(reason) = verdict {
            ctx.count("invalid", 1);
            dead_letter(&mut self.buf, &reason, rec.raw_value());
            return ctx.emit_raw(DLQ, rec.timestamp(), rec.key(), &self.buf);
        }
        let id: std::borrow::Cow<'_, str> = match slots[0] {
            Scalar::Str(s) => s.into(),
            Scalar::Int(n) => n.to_string().into(),
            _ => return Err(Error::msg("a checked id is a string or an integer")),
        };
        if self.is_duplicate(ctx, &id, rec.timestamp())? {
            ctx.count("duplicates", 1);
            return Ok(());
        }
        ctx.forward(MAIN, rec)
    }

    fn on_watermark(&mut self, wm: i64, _ctx: &mut Ctx) -> Result<(), Error> {
        while let Some((at, id)) = self.forget.pop_due(wm) {
            // A later pass of the id moved its horizon: that timer forgets it.
            if self
                .seen
                .get(id.as_str())
                .is_some_and(|kept| kept.saturating_add(self.window_ms) == at)
            {
                self.seen.remove(id.as_str());
            }
        }
        Ok(())
    }

    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        if fresh.id_field != self.id_field || fresh.window_ms != self.window_ms {
            return Err(Error::msg(format!(
                "the snapshot remembers ids of `{}` for {} ms but the config asks for `{}` for {} ms; a running job can change only its schema",
                self.id_field, self.window_ms, fresh.id_field, fresh.window_ms
            )));
        }
        self.schema = fresh.schema;
        Ok(())
    }
}

sluice_sdk::export_operator!(DedupValidate);
