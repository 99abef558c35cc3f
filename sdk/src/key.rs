//! `key`: output keys made from integers without allocating.
//!
//! Sluice keys are bytes; the bundled schemas use decimal ASCII for integer ids
//! (docs/events.md). [`DecimalKey`] formats one on the stack for `Ctx::emit`.

/// An integer formatted as decimal ASCII, usable wherever a key is expected.
#[derive(Clone, Copy)]
pub struct DecimalKey {
    digits: [u8; 20],
    start: u8,
}

impl DecimalKey {
    /// The decimal digits of `n`.
    pub fn new(mut n: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        DecimalKey {
            digits,
            start: start as u8,
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written.
        std::str::from_utf8(self.as_ref()).unwrap_or_default()
    }
}

impl AsRef<[u8]> for DecimalKey {
    fn as_ref(&self) -> &[u8] {
        &self.digits[self.start as usize..]
    }
}

impl std::fmt::Debug for DecimalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DecimalKey({})", self.as_str())
    }
}

/// Shorthand for [`DecimalKey::new`].
pub fn decimal_key(n: u64) -> DecimalKey {
    DecimalKey::new(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decimal_key_matches_to_string(n in any::<u64>()) {
            let key = decimal_key(n);
            prop_assert_eq!(key.as_str(), n.to_string());
        }
    }

    #[test]
    fn zero_and_max_format() {
        assert_eq!(decimal_key(0).as_str(), "0");
        assert_eq!(decimal_key(u64::MAX).as_str(), "18446744073709551615");
    }
}
