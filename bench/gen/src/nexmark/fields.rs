//! Field value distributions of NEXMARK.md §1.7: prices, random strings, names, e-mails,
//! cards, cities, states, channels and URLs, and the `extra` padding.
//!
//! Per-seed tables (channel URLs, hot URLs, the padding pool) are built once per generator
//! from their own counter streams, so they are identical in every generator of one seed.
//! Writers append into caller-owned strings so the generator can reuse its scratch.

use crate::rng::Rng;

use super::config::{MAX_AVG_BYTES, StateCase};

/// First names (11).
pub const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
/// Last names (9).
pub const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
/// Cities (10).
pub const CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
/// States, upper case (6).
pub const STATES_UPPER: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
/// States, lower case (nexmark-rs).
pub const STATES_LOWER: [&str; 6] = ["az", "ca", "id", "or", "wa", "wy"];
/// The four hot channels; half of all bids use one of them.
pub const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
/// Number of cold channels `channel-0 .. channel-9999`.
pub const CHANNELS_NUMBER: u64 = 10_000;
/// A bid uses a hot channel with probability `1 - 1/HOT_CHANNELS_RATIO`.
pub const HOT_CHANNELS_RATIO: u64 = 2;
/// Shortest string `next_string` draws before trimming.
pub const MIN_STRING_LENGTH: u64 = 3;
/// Size of the padding pool `extra` strings are cut from (Flink cuts from a 1 MiB string
/// since 2024; 256 KiB stays in a core's L2 cache, which doubles generation speed).
pub const EXTRA_POOL_BYTES: usize = 256 << 10;

const _: () = assert!(EXTRA_POOL_BYTES > 2 * MAX_AVG_BYTES as usize);

/// Counter streams of the per-seed tables (distinct from the per-event stream).
const STREAM_CHANNEL_URL: u64 = 0x6368_616e; // "chan"
const STREAM_HOT_URL: u64 = 0x686f_7475; // "hotu"
const STREAM_POOL: u64 = 0x706f_6f6c; // "pool"

/// `round(100 × 10^(6U))`: log-uniform cents between $1 and $1M.
#[inline]
pub fn price(rng: &mut Rng) -> u64 {
    (100.0 * 10f64.powf(rng.unit() * 6.0)).round() as u64
}

/// Appends a string of `3 + U[0, max−3)` characters, each `special` with probability 1/13,
/// otherwise a–z; when `special` is a space the appended part is trimmed of spaces.
pub fn next_string(rng: &mut Rng, max: u64, special: u8, out: &mut String) {
    let len = MIN_STRING_LENGTH + rng.below(max - MIN_STRING_LENGTH);
    let mut buf = [0u8; 128];
    debug_assert!(len as usize <= buf.len());
    for b in buf.iter_mut().take(len as usize) {
        // One draw in [0, 13·26): the first 26 values (1/13) are the special character.
        let v = rng.below(13 * 26);
        *b = if v < 26 {
            special
        } else {
            b'a' + (v % 26) as u8
        };
    }
    let mut s = &buf[..len as usize];
    if special == b' ' {
        while let [b' ', rest @ ..] = s {
            s = rest;
        }
        while let [rest @ .., b' '] = s {
            s = rest;
        }
    }
    // Only ASCII letters and the ASCII special character were written.
    out.push_str(std::str::from_utf8(s).unwrap_or_default());
}

/// Appends `n` as a zero-padded 4-digit group.
fn push_4_digits(out: &mut String, n: u64) {
    debug_assert!(n < 10_000);
    for d in [n / 1000, n / 100 % 10, n / 10 % 10, n % 10] {
        out.push((b'0' + d as u8) as char);
    }
}

/// Appends a credit card number: four `U{0..9999}` groups, zero-padded, space-separated.
pub fn credit_card(rng: &mut Rng, out: &mut String) {
    for i in 0..4 {
        if i > 0 {
            out.push(' ');
        }
        push_4_digits(out, rng.below(10_000));
    }
}

/// The state names of `case`.
pub fn states(case: StateCase) -> &'static [&'static str; 6] {
    match case {
        StateCase::Upper => &STATES_UPPER,
        StateCase::Lower => &STATES_LOWER,
    }
}

/// Length of `extra` for an event whose other fields nominally take `current` bytes:
/// empty above `avg`, else uniform in `[target − δ, target + δ)` with `δ = round(0.2·target)`.
#[inline]
pub fn extra_len(rng: &mut Rng, current: u64, avg: u64) -> u64 {
    if current > avg {
        return 0;
    }
    let target = avg - current;
    let delta = (target as f64 * 0.2).round() as u64;
    let min = target - delta;
    if delta == 0 {
        min
    } else {
        min + rng.below(2 * delta)
    }
}

/// Per-seed tables shared by all events of one generator.
#[derive(Debug)]
pub struct Tables {
    /// Every cold channel's name and URL back to back, for locality of the hot path.
    channel_text: String,
    /// Per channel: where its name starts, where its URL starts (= name end), URL end.
    channel_spans: Vec<[u32; 3]>,
    /// Fixed URL of each hot channel (no `channel_id`).
    pub hot_urls: [String; 4],
    /// Random a–z characters that `extra` strings are cut from.
    pub pool: String,
}

impl Tables {
    /// Builds the tables of `seed`.
    pub fn new(seed: u64) -> Tables {
        let mut channel_text = String::new();
        let mut channel_spans = Vec::with_capacity(CHANNELS_NUMBER as usize);
        for n in 0..CHANNELS_NUMBER {
            let mut rng = Rng::new(seed, STREAM_CHANNEL_URL, n);
            let mut url = base_url(&mut rng);
            if rng.below(10) > 0 {
                // Flink writes Math.abs(Integer.reverse(n)); abs(i32::MIN) stays negative there.
                let id = (n as i32).reverse_bits().wrapping_abs();
                url.push_str("&channel_id=");
                url.push_str(&id.to_string());
            }
            let name_start = channel_text.len() as u32;
            channel_text.push_str("channel-");
            channel_text.push_str(&n.to_string());
            let url_start = channel_text.len() as u32;
            channel_text.push_str(&url);
            channel_spans.push([name_start, url_start, channel_text.len() as u32]);
        }
        let hot_urls =
            std::array::from_fn(|i| base_url(&mut Rng::new(seed, STREAM_HOT_URL, i as u64)));
        let mut pool = String::with_capacity(EXTRA_POOL_BYTES);
        for i in 0..EXTRA_POOL_BYTES / 8 {
            let mut rng = Rng::new(seed, STREAM_POOL, i as u64);
            for _ in 0..8 {
                pool.push((b'a' + rng.below(26) as u8) as char);
            }
        }
        Tables {
            channel_text,
            channel_spans,
            hot_urls,
            pool,
        }
    }

    /// Name (`channel-N`) and cached URL of cold channel `n` (90 % carry `&channel_id=`).
    #[inline]
    pub fn channel(&self, n: usize) -> (&str, &str) {
        let [name, url, end] = self.channel_spans[n].map(|x| x as usize);
        (&self.channel_text[name..url], &self.channel_text[url..end])
    }

    /// Appends `len` padding bytes taken at a random offset of the pool.
    #[inline]
    pub fn extra(&self, rng: &mut Rng, len: u64, out: &mut String) {
        let len = len as usize;
        debug_assert!(len < self.pool.len());
        let off = rng.below((self.pool.len() - len + 1) as u64) as usize;
        // The pool is ASCII, so every offset is a character boundary.
        out.push_str(&self.pool[off..off + len]);
    }
}

/// `https://www.nexmark.com/<s1>/<s2>/<s3>/item.htm?query=1`, `s = next_string(5, '_')`.
fn base_url(rng: &mut Rng) -> String {
    let mut url = String::from("https://www.nexmark.com/");
    for _ in 0..3 {
        next_string(rng, 5, b'_', &mut url);
        url.push('/');
    }
    url.push_str("item.htm?query=1");
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_trimmed_lowercase_within_bounds() {
        for i in 0..2000 {
            let mut rng = Rng::new(1, 2, i);
            let mut s = String::new();
            next_string(&mut rng, 20, b' ', &mut s);
            assert!(s.len() <= 19, "{s:?}");
            assert_eq!(s.trim(), s);
            assert!(s.bytes().all(|b| b == b' ' || b.is_ascii_lowercase()));
        }
    }

    #[test]
    fn bid_extra_lengths_span_54_to_81() {
        let mut lo = u64::MAX;
        let mut hi = 0;
        for i in 0..10_000 {
            let n = extra_len(&mut Rng::new(1, 3, i), 32, 100);
            lo = lo.min(n);
            hi = hi.max(n);
        }
        assert_eq!((lo, hi), (54, 81));
        assert_eq!(extra_len(&mut Rng::new(1, 3, 0), 101, 100), 0);
    }

    #[test]
    fn channel_urls_carry_bit_reversed_ids_most_of_the_time() {
        let t = Tables::new(9);
        let urls: Vec<&str> = (0..CHANNELS_NUMBER as usize)
            .map(|n| t.channel(n).1)
            .collect();
        assert_eq!(t.channel(42).0, "channel-42");
        let with_id = urls.iter().filter(|u| u.contains("&channel_id=")).count();
        assert!((8_700..9_300).contains(&with_id), "{with_id}");
        // 2 = 0b10 reversed in 32 bits is 2^30.
        if urls[2].contains("&channel_id=") {
            assert!(urls[2].ends_with("&channel_id=1073741824"), "{}", urls[2]);
        }
        for u in t
            .hot_urls
            .iter()
            .map(String::as_str)
            .chain(urls.iter().copied())
        {
            let parts: Vec<&str> = u.split('/').collect();
            assert_eq!(parts[..3], ["https:", "", "www.nexmark.com"]);
            for s in &parts[3..6] {
                assert!((3..=4).contains(&s.len()), "{u}");
            }
            assert!(parts[6].starts_with("item.htm?query=1"), "{u}");
        }
        assert_eq!(Tables::new(9).channel_text, t.channel_text);
        assert_ne!(Tables::new(10).channel_text, t.channel_text);
    }
}
