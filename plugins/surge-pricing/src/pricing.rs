//! `pricing`: the surge formula. Pure functions of a window's counts and the
//! config, so the operator and its tests agree on every bit of the result.

use serde::{Deserialize, Serialize};

/// How counts turn into a multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pricing {
    /// Slope: how fast the multiplier grows with demand over supply.
    pub k: f64,
    /// Largest multiplier.
    pub cap: f64,
    /// Decimal places the multiplier is rounded to; `None` = no rounding.
    pub decimals: Option<u32>,
}

impl Pricing {
    /// `requests / max(drivers, 1)`.
    pub fn ratio(requests: u64, drivers: u64) -> f64 {
        requests as f64 / drivers.max(1) as f64
    }

    /// `clamp(1 + k × (ratio − 1), 1, cap)`, rounded to `decimals` places
    /// (half away from zero) and clamped again so rounding never passes `cap`.
    pub fn multiplier(&self, ratio: f64) -> f64 {
        let m = (1.0 + self.k * (ratio - 1.0)).clamp(1.0, self.cap);
        match self.decimals {
            Some(d) => {
                let scale = 10f64.powi(d as i32);
                ((m * scale).round() / scale).clamp(1.0, self.cap)
            }
            None => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_multiplier_is_clamped_and_rounded() {
        let p = Pricing {
            k: 0.5,
            cap: 3.0,
            decimals: Some(1),
        };
        assert_eq!(p.multiplier(Pricing::ratio(0, 0)), 1.0);
        assert_eq!(p.multiplier(Pricing::ratio(3, 2)), 1.3, "1.25 rounds up");
        assert_eq!(p.multiplier(Pricing::ratio(14, 3)), 2.8, "2.8333…");
        assert_eq!(p.multiplier(Pricing::ratio(100, 1)), 3.0);
        let exact = Pricing {
            decimals: None,
            ..p
        };
        assert_eq!(
            exact.multiplier(Pricing::ratio(14, 3)),
            1.0 + 0.5 * (14.0 / 3.0 - 1.0)
        );
        let odd_cap = Pricing { cap: 2.75, ..p };
        assert_eq!(
            odd_cap.multiplier(10.0),
            2.75,
            "rounding does not pass the cap"
        );
    }
}
