//! `operator`: the trait a plugin author implements.
//!
//! The runtime (in Wasm, through [`crate::export_operator!`]; natively, through
//! [`crate::testing::Harness`]) builds the operator from its config, feeds it
//! records, watermarks and timers, and snapshots it whole with serde.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ctx::Ctx;
use crate::error::Error;
use crate::record::Record;

/// A streaming operator: typed config in, records in, records out to named outputs.
///
/// The operator struct *is* its state: the SDK snapshots it with serde
/// (MessagePack, fields by name) and restores it after a crash or an upgrade, so
/// everything it keeps — including the SDK's [`crate::KeyedState`] and window
/// helpers — must be `Serialize + Deserialize`, and its output must depend only
/// on its config, its restored state and its input (no clocks, no randomness).
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use sluice_sdk::{Ctx, Error, Operator, Record};
///
/// #[derive(Deserialize)]
/// struct Config { min: u64 }
///
/// #[derive(Deserialize)]
/// struct Payment<'a> { payer: &'a str, amount: u64 }
///
/// #[derive(Serialize, Deserialize)]
/// struct BigPayments { min: u64 }
///
/// impl Operator for BigPayments {
///     type Config = Config;
///     fn init(config: Config) -> Result<Self, Error> {
///         Ok(BigPayments { min: config.min })
///     }
///     fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error> {
///         let p: Payment<'_> = rec.value()?;
///         if p.amount >= self.min {
///             ctx.forward("main", rec)?;
///         }
///         Ok(())
///     }
/// }
/// sluice_sdk::export_operator!(BigPayments);
/// ```
pub trait Operator: Serialize + DeserializeOwned + Sized + 'static {
    /// The operator's configuration: the `config` of the operator in the job
    /// spec. When the job gives none, it is decoded from `nil` (so `()` or an
    /// `Option` work) or else from an empty map (so a struct whose fields all
    /// have `#[serde(default)]` works).
    type Config: DeserializeOwned;

    /// Version of the snapshot layout of this operator. Bump it when a new plugin
    /// version can no longer read the state an older one wrote: restoring such a
    /// snapshot then fails with a message naming both versions, and the engine
    /// refuses the upgrade instead of running on misread state.
    const STATE_VERSION: u32 = 1;

    /// Builds the operator from its config. Return `Err` for a config that makes
    /// no sense; the message reaches whoever submitted the job.
    fn init(config: Self::Config) -> Result<Self, Error>;

    /// Handles one input record. Records of one partition arrive in offset order.
    fn process(&mut self, rec: &Record<'_>, ctx: &mut Ctx) -> Result<(), Error>;

    /// A timer set with [`Ctx::set_timer`] is due: the watermark has reached `ts`.
    /// Due timers fire in time order, before [`Operator::on_watermark`]. The
    /// window helpers set timers at window ends too, so this also sees times
    /// the operator did not set itself; ignore those.
    fn on_timer(&mut self, ts: i64, ctx: &mut Ctx) -> Result<(), Error> {
        let _ = (ts, ctx);
        Ok(())
    }

    /// The input watermark advanced to `wm`: close windows that ended (the
    /// window helpers' `fire`). Called whenever a timer is due and possibly at
    /// other times, so it must be harmless to call twice with the same `wm`.
    fn on_watermark(&mut self, wm: i64, ctx: &mut Ctx) -> Result<(), Error> {
        let _ = (wm, ctx);
        Ok(())
    }

    /// Called after a restore: `self` holds the snapshot's state and `fresh` is
    /// the operator [`Operator::init`] built from the job's current config.
    /// Copy over whatever should follow the current config rather than the
    /// snapshot (thresholds, for example), or return `Err` if the snapshot
    /// cannot serve the current config (the restore then fails and the engine
    /// keeps the old version running). By default the snapshot wins.
    fn on_restore(&mut self, fresh: Self) -> Result<(), Error> {
        let _ = fresh;
        Ok(())
    }
}
