//! `sluice-sdk`: write Sluice operators in plain Rust and build them into
//! WebAssembly plugins.
//!
//! An operator is a struct that implements [`Operator`]: a typed config, a
//! `process` callback per input [`Record`] (decode its value with serde,
//! borrowing strings from the batch), and optional `on_timer` /
//! `on_watermark` callbacks. It keeps its state in its own fields —
//! [`KeyedState`], [`KeyedTimers`], [`TumblingWindows`], [`SlidingWindows`],
//! [`SessionWindows`] or any serde type — and the SDK snapshots and restores
//! the whole struct. Through [`Ctx`] it emits records to named outputs, sets
//! event-time timers, logs and counts.
//!
//! [`export_operator!`] turns the crate into a plugin speaking ABI v1
//! (`sdk/ABI.md`) when built for `wasm32-unknown-unknown`; natively,
//! [`testing::Harness`] runs the same operator through the same runtime code,
//! so plugins are unit-tested with `cargo test`. `sdk/README.md` walks through
//! a plugin from an empty directory to a passing test.
//!
//! Module map: [`record`] reads batches; [`codec`] is the one MessagePack path;
//! `ctx`, `output` and `host` buffer what a call produces and hand it to the
//! host imports; `runtime` drives the call protocol and snapshots; `guest`
//! holds the Wasm exports; [`state`], `timers` and [`window`] are the state helpers;
//! [`testing`] is the native harness.

#![warn(missing_docs)]

pub mod codec;
mod ctx;
mod error;
#[doc(hidden)]
pub mod guest;
mod host;
mod key;
pub mod limits;
mod operator;
pub mod output;
pub mod record;
mod runtime;
pub mod state;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod timers;
pub mod window;

pub use ctx::{Ctx, LATE_EVENTS};
pub use error::{Error, Result};
pub use host::Level;
pub use key::{DecimalKey, decimal_key};
pub use operator::Operator;
pub use output::{DLQ, LATE, MAIN};
pub use record::Record;
pub use runtime::{Runtime, SNAPSHOT_FORMAT};
pub use state::KeyedState;
pub use timers::KeyedTimers;
pub use window::{Admit, Merge, SessionWindows, SlidingWindows, TumblingWindows, Window};

/// Items the export macro expands to; not part of the API.
#[doc(hidden)]
pub use guest as __guest;

/// The names most operators need: `use sluice_sdk::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Admit, Ctx, DLQ, Error, KeyedState, KeyedTimers, LATE, MAIN, Merge, Operator, Record,
        SessionWindows, SlidingWindows, TumblingWindows, Window, decimal_key,
    };
    pub use serde::{Deserialize, Serialize};
}

pub use serde;
