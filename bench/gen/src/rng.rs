//! Counter-based randomness: every draw is a function of `(seed, stream, counter)`.
//!
//! Generators never share a sequential RNG between events. Each event (or table entry) opens
//! its own short [`Rng`] keyed by the global seed, a stream constant naming what is being
//! drawn, and the event's position. Generation is therefore identical under any split,
//! parallelism or replay point (NEXMARK.md §1.8). The mixer is splitmix64's finaliser.

/// Weyl increment of splitmix64 (2^64 / golden ratio).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a bijective 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A short stream of draws for one `(seed, stream, counter)`; cheap to create per event.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// Opens the stream for `counter` (an event id, slot number or table index) under `seed`;
    /// `stream` separates independent uses of the same counter.
    #[inline]
    pub fn new(seed: u64, stream: u64, counter: u64) -> Rng {
        let k = mix64(seed ^ stream.wrapping_mul(GOLDEN));
        Rng {
            state: mix64(k ^ counter.wrapping_mul(0xD1B5_4A32_D192_ED03)),
        }
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// Uniform in `[0, n)` (multiply-shift; bias below 2^-32 for the bounds used here).
    /// `n` must be at least 1.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "Rng::below(0)");
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `[lo, hi]` (inclusive); `lo <= hi`.
    #[inline]
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (clamped to `[0, 1]`).
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Zipf-distributed ranks over `n` keys with exponent `s` (`s = 0` is uniform), sampled in
/// O(1) time and memory by rejection-inversion (Hörmann & Derflinger, 1996).
#[derive(Debug, Clone)]
pub struct Zipf {
    n: u64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

/// Rejection rounds before a Zipf draw settles for its last candidate; the acceptance
/// probability is above 0.9 per round, so this bound is never reached in practice.
const ZIPF_MAX_ROUNDS: u32 = 64;

impl Zipf {
    /// A sampler of ranks `0..n` (0 the most popular). `n >= 1`, `s >= 0` and finite.
    pub fn new(n: u64, s: f64) -> Zipf {
        assert!(n >= 1 && s >= 0.0 && s.is_finite(), "Zipf::new({n}, {s})");
        let mut z = Zipf {
            n,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            threshold: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(n as f64 + 0.5);
        z.threshold = 2.0 - z.h_integral_inv(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Always false: a sampler has at least one key.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Draws a rank in `0..n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        if self.s == 0.0 || self.n == 1 {
            return rng.below(self.n);
        }
        let mut k = 1.0;
        for _ in 0..ZIPF_MAX_ROUNDS {
            let u = self.h_integral_n + rng.unit() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inv(u);
            k = (x + 0.5).floor().clamp(1.0, self.n as f64);
            if k - x <= self.threshold || u >= self.h_integral(k + 0.5) - self.h(k) {
                break;
            }
        }
        k as u64 - 1
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.s) * log_x) * log_x
    }

    fn h_integral_inv(&self, x: f64) -> f64 {
        let mut t = x * (1.0 - self.s);
        if t < -1.0 {
            t = -1.0; // guards rounding at the lower end
        }
        (ln1p_over_x(t) * x).exp()
    }
}

/// `(e^x - 1) / x`, continuous at 0.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// `ln(1 + x) / x`, continuous at 0.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_counter_gives_same_draws_and_neighbours_differ() {
        let a: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(Rng::new(7, 1, 42), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .map(|_| 0)
            .scan(Rng::new(7, 1, 42), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(Rng::new(7, 1, 43).next_u64(), a[0]);
        assert_ne!(Rng::new(7, 2, 42).next_u64(), a[0]);
        assert_ne!(Rng::new(8, 1, 42).next_u64(), a[0]);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Rng::new(1, 1, 1);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            seen[r.below(7) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn zipf_rank_frequencies_follow_the_power_law() {
        let z = Zipf::new(1000, 1.0);
        let mut r = Rng::new(3, 3, 3);
        let mut counts = vec![0u32; 1000];
        let n = 200_000;
        for _ in 0..n {
            counts[z.sample(&mut r) as usize] += 1;
        }
        // H(1000, 1) ≈ 7.485: rank 0 ≈ 13.4 %, rank 1 ≈ 6.7 %, rank 9 ≈ 1.34 %.
        let share = |k: usize| counts[k] as f64 / n as f64;
        assert!((share(0) - 0.1336).abs() < 0.01, "{}", share(0));
        assert!((share(1) - 0.0668).abs() < 0.007, "{}", share(1));
        assert!((share(9) - 0.01336).abs() < 0.003, "{}", share(9));
    }

    #[test]
    fn zipf_with_exponent_zero_is_uniform() {
        let z = Zipf::new(4, 0.0);
        let mut r = Rng::new(3, 3, 3);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[z.sample(&mut r) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }
}
