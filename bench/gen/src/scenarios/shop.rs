//! Sale-day shop (SCENARIOS.md §3): `click`, `cart` and `order` events (topic `shop`, key =
//! `user_id`) produced by user sessions.
//!
//! Up to `concurrent_sessions` sessions run at once; each slot starts a session if there is
//! room, then advances one running session (picked at random) by one step, so a session's
//! steps are spread over time and interleaved with others. A user is in at most one session
//! at a time. Each session is planned when it starts:
//! - it views the home page, then 1–6 product pages (products by Zipf popularity);
//! - with probability `convert_share` it adds 1–3 viewed products to the cart, checks out
//!   (`cart` action `checkout` naming the last product added) and orders each of them;
//! - else with probability `abandon_share` it adds 1–2 products (sometimes removes one) and
//!   leaves without checking out: an abandoned cart;
//! - otherwise it only browses.

use serde::{Deserialize, Serialize};

use super::{ScenarioConfig, check_share};
use crate::GenError;
use crate::encode::EventRecord;
use crate::rng::{Rng, Zipf};

const STREAM_SLOT: u64 = 0x7368_6f70; // "shop"
const STREAM_SESSION: u64 = 0x7365_7373; // "sess"
const STREAM_PRICE: u64 = 0x7072_6963; // "pric"
/// Redraws for a user not already in a session before scanning for one.
const MAX_USER_DRAWS: u32 = 16;
/// Most sessions that may run at once (bounds the session pool).
pub const MAX_CONCURRENT_SESSIONS: usize = 1_000_000;

/// A page view.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Click {
    /// `user-<n>`.
    pub user_id: String,
    /// `/`, `/search` or `/product/<id>`.
    pub page: String,
    /// The product shown, if any (nil otherwise).
    pub product_id: Option<String>,
    /// Event time, epoch ms.
    pub ts: i64,
}

/// A cart change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cart {
    /// `user-<n>`.
    pub user_id: String,
    /// `product-<n>` (for `checkout`: the last product added).
    pub product_id: String,
    /// `add`, `remove` or `checkout`.
    pub action: String,
    /// Event time, epoch ms.
    pub ts: i64,
}

/// One order line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    /// `order-<session>-<line>`.
    pub order_id: String,
    /// `user-<n>`.
    pub user_id: String,
    /// `product-<n>`.
    pub product_id: String,
    /// Units, 1–3.
    pub qty: u32,
    /// Price per unit in paise (fixed per product).
    pub price: u64,
    /// Event time, epoch ms.
    pub ts: i64,
}

/// One event of the `shop` topic (externally tagged).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShopEvent {
    /// A page view.
    Click(Click),
    /// A cart change.
    Cart(Cart),
    /// An order line.
    Order(Order),
}

impl ShopEvent {
    /// The user (record key).
    pub fn user_id(&self) -> &str {
        match self {
            ShopEvent::Click(c) => &c.user_id,
            ShopEvent::Cart(c) => &c.user_id,
            ShopEvent::Order(o) => &o.user_id,
        }
    }
}

impl EventRecord for ShopEvent {
    fn write_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.user_id().as_bytes());
    }

    fn timestamp(&self) -> i64 {
        match self {
            ShopEvent::Click(c) => c.ts,
            ShopEvent::Cart(c) => c.ts,
            ShopEvent::Order(o) => o.ts,
        }
    }
}

/// Everything that determines a shop stream.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopConfig {
    /// Shared knobs; `keys` = number of users, `skew` = user activity.
    pub scenario: ScenarioConfig,
    /// Number of products.
    pub products: u64,
    /// Zipf exponent of product popularity.
    pub product_skew: f64,
    /// Sessions running at once.
    pub concurrent_sessions: usize,
    /// Share of sessions that order.
    pub convert_share: f64,
    /// Share of sessions that fill a cart and leave.
    pub abandon_share: f64,
}

impl Default for ShopConfig {
    fn default() -> Self {
        ShopConfig {
            scenario: ScenarioConfig::default(),
            products: 1_000,
            product_skew: 1.0,
            concurrent_sessions: 100,
            convert_share: 0.3,
            abandon_share: 0.3,
        }
    }
}

impl ShopConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), GenError> {
        const G: &str = "shop";
        self.scenario.validate(G)?;
        check_share(G, "convert_share", self.convert_share)?;
        check_share(G, "abandon_share", self.abandon_share)?;
        check_share(
            G,
            "convert_share + abandon_share",
            self.convert_share + self.abandon_share,
        )?;
        if self.products == 0 || !(self.product_skew >= 0.0 && self.product_skew.is_finite()) {
            let problem = format!("products {} with skew {}", self.products, self.product_skew);
            return Err(GenError::config(
                G,
                "products",
                problem,
                "use at least 1 product and a skew >= 0",
            ));
        }
        let max = (self.scenario.keys as usize / 2).min(MAX_CONCURRENT_SESSIONS);
        if self.concurrent_sessions == 0 || self.concurrent_sessions > max {
            return Err(GenError::config(
                G,
                "concurrent_sessions",
                format!(
                    "is {} with {} users",
                    self.concurrent_sessions, self.scenario.keys
                ),
                "use 1..=min(keys / 2, MAX_CONCURRENT_SESSIONS) so users are free to start sessions",
            ));
        }
        Ok(())
    }

    /// Unit price of `product` in paise (₹10–₹5,000, fixed per seed).
    pub fn price_of(&self, product: u64) -> u64 {
        let mut rng = Rng::new(self.scenario.seed, STREAM_PRICE, product);
        (1_000.0 * 500f64.powf(rng.unit())).round() as u64
    }
}

#[derive(Debug, Clone)]
enum Step {
    View(Option<u64>, &'static str),
    Add(u64),
    Remove(u64),
    Checkout(u64),
    Order(u64, u32),
}

#[derive(Debug, Clone)]
struct Session {
    number: u64,
    user: u64,
    steps: Vec<Step>,
    next: usize,
    order_lines: u32,
}

/// The shop stream in emission order.
#[derive(Debug, Clone)]
pub struct ShopGenerator {
    cfg: ShopConfig,
    users: Zipf,
    products: Zipf,
    slot: u64,
    sessions_started: u64,
    running: Vec<Session>,
    busy: Vec<bool>,
}

impl ShopGenerator {
    /// Validates `cfg`.
    pub fn new(cfg: ShopConfig) -> Result<Self, GenError> {
        cfg.validate()?;
        Ok(ShopGenerator {
            users: cfg.scenario.zipf(),
            products: Zipf::new(cfg.products, cfg.product_skew),
            busy: vec![false; cfg.scenario.keys as usize],
            running: Vec::with_capacity(cfg.concurrent_sessions),
            cfg,
            slot: 0,
            sessions_started: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ShopConfig {
        &self.cfg
    }

    /// Sessions started so far.
    pub fn sessions_started(&self) -> u64 {
        self.sessions_started
    }

    fn start_session(&mut self) {
        let number = self.sessions_started;
        self.sessions_started += 1;
        let mut rng = Rng::new(self.cfg.scenario.seed, STREAM_SESSION, number);
        let keys = self.cfg.scenario.keys;
        let mut user = self.users.sample(&mut rng);
        for attempt in 0..u64::from(MAX_USER_DRAWS) + keys {
            if !self.busy[user as usize] {
                break;
            }
            user = if attempt < u64::from(MAX_USER_DRAWS) {
                self.users.sample(&mut rng)
            } else {
                (user + 1) % keys
            };
        }
        // `validate` keeps concurrent sessions at most keys / 2, so a free user exists.
        assert!(
            !self.busy[user as usize],
            "shop: no free user for session {number}"
        );
        self.busy[user as usize] = true;

        let mut steps = vec![Step::View(None, "/")];
        if rng.chance(0.5) {
            steps.push(Step::View(None, "/search"));
        }
        let viewed: Vec<u64> = (0..rng.between(1, 6))
            .map(|_| self.products.sample(&mut rng))
            .collect();
        steps.extend(viewed.iter().map(|&p| Step::View(Some(p), "/product/")));
        let outcome = rng.unit();
        let pick = |rng: &mut Rng, n: u64| -> Vec<u64> {
            (0..n)
                .map(|_| viewed[rng.below(viewed.len() as u64) as usize])
                .collect()
        };
        if outcome < self.cfg.convert_share {
            let n = rng.between(1, 3);
            let items = pick(&mut rng, n);
            steps.extend(items.iter().map(|&p| Step::Add(p)));
            steps.push(Step::Checkout(items[items.len() - 1]));
            for &p in &items {
                steps.push(Step::Order(p, rng.between(1, 3) as u32));
            }
        } else if outcome < self.cfg.convert_share + self.cfg.abandon_share {
            let n = rng.between(1, 2);
            let items = pick(&mut rng, n);
            steps.extend(items.iter().map(|&p| Step::Add(p)));
            if rng.chance(0.3) {
                steps.push(Step::Remove(items[0]));
            }
        }
        self.running.push(Session {
            number,
            user,
            steps,
            next: 0,
            order_lines: 0,
        });
    }
}

impl Iterator for ShopGenerator {
    type Item = ShopEvent;

    fn next(&mut self) -> Option<ShopEvent> {
        let s = &self.cfg.scenario;
        if self.slot >= s.count {
            return None;
        }
        let slot = self.slot;
        self.slot += 1;
        let ts = s.event_time(slot);
        let mut rng = s.rng(STREAM_SLOT, slot);
        if self.running.len() < self.cfg.concurrent_sessions {
            self.start_session();
        }
        let i = rng.below(self.running.len() as u64) as usize;
        let session = &mut self.running[i];
        let step = session.steps[session.next].clone();
        session.next += 1;
        let user_id = format!("user-{}", session.user);
        let product = |p: u64| format!("product-{p}");
        let event = match step {
            Step::View(p, page) => ShopEvent::Click(Click {
                page: match p {
                    Some(p) => format!("{page}{p}"),
                    None => page.to_string(),
                },
                product_id: p.map(product),
                user_id,
                ts,
            }),
            Step::Add(p) | Step::Remove(p) | Step::Checkout(p) => ShopEvent::Cart(Cart {
                action: match step {
                    Step::Add(_) => "add",
                    Step::Remove(_) => "remove",
                    _ => "checkout",
                }
                .to_string(),
                product_id: product(p),
                user_id,
                ts,
            }),
            Step::Order(p, qty) => {
                session.order_lines += 1;
                ShopEvent::Order(Order {
                    order_id: format!("order-{}-{}", session.number, session.order_lines),
                    product_id: product(p),
                    qty,
                    price: self.cfg.price_of(p),
                    user_id,
                    ts,
                })
            }
        };
        if session.next == session.steps.len() {
            let done = self.running.swap_remove(i);
            self.busy[done.user as usize] = false;
        }
        Some(event)
    }
}
