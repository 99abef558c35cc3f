//! Ride hailing (SCENARIOS.md §2): `ride_request` and `driver_ping` events per grid cell
//! (topic `rides`, key = `cell`), with hot spots that concentrate requests in chosen cells
//! for a time so the surge-pricing job has something to price.
//!
//! The city is a square-ish grid of `keys` cells, `cols = ceil(sqrt(keys))` wide; cell `k` is
//! `"<k / cols>-<k % cols>"`. Requests pick cells by Zipf popularity (`skew`) unless an active
//! hot spot claims them; drivers are spread uniformly and move to a new random cell every
//! [`DRIVER_MOVE_MS`] of event time, so normal supply roughly tracks the average demand.

use serde::{Deserialize, Serialize};

use super::{ScenarioConfig, check_share};
use crate::GenError;
use crate::encode::EventRecord;
use crate::rng::{Rng, Zipf, mix64};

/// How long a driver stays in one cell.
pub const DRIVER_MOVE_MS: i64 = 300_000;

const STREAM_SLOT: u64 = 0x7269_6465; // "ride"
const STREAM_DRIVER_CELL: u64 = 0x6472_7672; // "drvr"

/// A rider asking for a ride.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RideRequest {
    /// `rider-<n>`.
    pub rider_id: String,
    /// `"<row>-<col>"`.
    pub cell: String,
    /// Event time, epoch ms.
    pub ts: i64,
}

/// A driver reporting position and availability.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DriverPing {
    /// `driver-<n>`.
    pub driver_id: String,
    /// `"<row>-<col>"`.
    pub cell: String,
    /// Free to take a ride.
    pub available: bool,
    /// Event time, epoch ms.
    pub ts: i64,
}

/// One event of the `rides` topic (externally tagged).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RideEvent {
    /// A request.
    RideRequest(RideRequest),
    /// A ping.
    DriverPing(DriverPing),
}

impl RideEvent {
    /// The cell (record key).
    pub fn cell(&self) -> &str {
        match self {
            RideEvent::RideRequest(r) => &r.cell,
            RideEvent::DriverPing(d) => &d.cell,
        }
    }
}

impl EventRecord for RideEvent {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.cell().as_bytes());
    }

    fn timestamp(&self) -> i64 {
        match self {
            RideEvent::RideRequest(r) => r.ts,
            RideEvent::DriverPing(d) => d.ts,
        }
    }
}

/// A cell that draws a share of all requests during `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HotSpot {
    /// Cell index in `0..keys`.
    pub cell: u64,
    /// Start, epoch ms (inclusive).
    pub from_ms: i64,
    /// End, epoch ms (exclusive).
    pub to_ms: i64,
    /// Share of requests sent to this cell while active.
    pub share: f64,
}

/// Everything that determines a rides stream.
#[derive(Debug, Clone, PartialEq)]
pub struct RidesConfig {
    /// Shared knobs; `keys` = number of cells.
    pub scenario: ScenarioConfig,
    /// Number of riders.
    pub riders: u64,
    /// Number of drivers.
    pub drivers: u64,
    /// Share of events that are driver pings.
    pub ping_share: f64,
    /// Share of pings that report the driver available.
    pub available_share: f64,
    /// Surge-making hot spots (checked in order; the first active one that claims wins).
    pub hot_spots: Vec<HotSpot>,
}

impl Default for RidesConfig {
    fn default() -> Self {
        RidesConfig {
            scenario: ScenarioConfig {
                keys: 100,
                ..ScenarioConfig::default()
            },
            riders: 100_000,
            drivers: 2_000,
            ping_share: 0.5,
            available_share: 0.8,
            hot_spots: Vec::new(),
        }
    }
}

impl RidesConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), GenError> {
        const G: &str = "rides";
        self.scenario.validate(G)?;
        check_share(G, "ping_share", self.ping_share)?;
        check_share(G, "available_share", self.available_share)?;
        if self.riders == 0 || self.drivers == 0 {
            let problem = format!("is {}/{}", self.riders, self.drivers);
            return Err(GenError::config(
                G,
                "riders/drivers",
                problem,
                "use at least 1 of each",
            ));
        }
        for h in &self.hot_spots {
            check_share(G, "hot_spots.share", h.share)?;
            if h.cell >= self.scenario.keys || h.from_ms > h.to_ms {
                return Err(GenError::config(
                    G,
                    "hot_spots",
                    format!(
                        "cell {} over {}..{} (keys = {})",
                        h.cell, h.from_ms, h.to_ms, self.scenario.keys
                    ),
                    "use a cell index below keys and from_ms <= to_ms",
                ));
            }
        }
        Ok(())
    }

    /// Grid width.
    pub fn cols(&self) -> u64 {
        (self.scenario.keys as f64).sqrt().ceil() as u64
    }

    /// Name of cell `k`: `"<row>-<col>"`.
    pub fn cell_name(&self, k: u64) -> String {
        let cols = self.cols();
        format!("{}-{}", k / cols, k % cols)
    }
}

/// The rides stream in emission order.
#[derive(Debug, Clone)]
pub struct RidesGenerator {
    cfg: RidesConfig,
    zipf: Zipf,
    slot: u64,
}

impl RidesGenerator {
    /// Validates `cfg`.
    pub fn new(cfg: RidesConfig) -> Result<Self, GenError> {
        cfg.validate()?;
        Ok(RidesGenerator {
            zipf: cfg.scenario.zipf(),
            cfg,
            slot: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RidesConfig {
        &self.cfg
    }

    /// Cell of `driver` at event time `ts`.
    pub fn driver_cell(&self, driver: u64, ts: i64) -> u64 {
        let period = ts.div_euclid(DRIVER_MOVE_MS) as u64;
        Rng::new(
            self.cfg.scenario.seed,
            STREAM_DRIVER_CELL ^ mix64(period),
            driver,
        )
        .below(self.cfg.scenario.keys)
    }
}

impl Iterator for RidesGenerator {
    type Item = RideEvent;

    fn next(&mut self) -> Option<RideEvent> {
        let s = &self.cfg.scenario;
        if self.slot >= s.count {
            return None;
        }
        let slot = self.slot;
        self.slot += 1;
        let mut rng = s.rng(STREAM_SLOT, slot);
        let ts = s.event_time(slot);
        if rng.chance(self.cfg.ping_share) {
            let driver = rng.below(self.cfg.drivers);
            return Some(RideEvent::DriverPing(DriverPing {
                driver_id: format!("driver-{driver}"),
                cell: self.cfg.cell_name(self.driver_cell(driver, ts)),
                available: rng.chance(self.cfg.available_share),
                ts,
            }));
        }
        let rider = rng.below(self.cfg.riders);
        let hot = self
            .cfg
            .hot_spots
            .iter()
            .find(|h| (h.from_ms..h.to_ms).contains(&ts) && rng.chance(h.share));
        let cell = match hot {
            Some(h) => h.cell,
            None => self.zipf.sample(&mut rng),
        };
        Some(RideEvent::RideRequest(RideRequest {
            rider_id: format!("rider-{rider}"),
            cell: self.cfg.cell_name(cell),
            ts,
        }))
    }
}
