//! `state`: keyed state that snapshots deterministically.
//!
//! [`KeyedState`] is an ordered map from key to value with a bound on the
//! number of keys. It lives inside the operator struct and is snapshotted with
//! it; being a `BTreeMap`, its iteration order and its snapshot bytes depend only
//! on its contents, never on insertion history or a random hasher.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::limits::DEFAULT_MAX_KEYS;

/// Per-key state of an operator: `K → V`, ordered by key, with at most
/// `max_keys` keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Ord, V: Serialize",
    deserialize = "K: Deserialize<'de> + Ord, V: Deserialize<'de>"
))]
pub struct KeyedState<K, V> {
    entries: BTreeMap<K, V>,
    max_keys: usize,
}

impl<K: Ord, V> Default for KeyedState<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Ord, V> KeyedState<K, V> {
    /// Empty state bounded by [`DEFAULT_MAX_KEYS`].
    pub fn new() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }

    /// Empty state holding at most `max_keys` keys; adding one more fails with
    /// [`Error::Limit`].
    pub fn with_max_keys(max_keys: usize) -> Self {
        KeyedState {
            entries: BTreeMap::new(),
            max_keys,
        }
    }

    /// The bound on the number of keys.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.get(key)
    }

    /// The value of `key`, mutably.
    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.get_mut(key)
    }

    /// The value of `key`, inserting `V::default()` first if it has none. The
    /// key is copied (`to_owned`) only when it is new.
    pub fn get_or_default<Q>(&mut self, key: &Q) -> Result<&mut V, Error>
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
        V: Default,
    {
        if !self.entries.contains_key(key) {
            self.check_room()?;
            self.entries.insert(key.to_owned(), V::default());
        }
        // Present: either it was, or it was just inserted.
        self.entries
            .get_mut(key)
            .ok_or_else(|| Error::msg("keyed state lost a key"))
    }

    /// Sets the value of `key`, returning the previous one.
    pub fn insert(&mut self, key: K, value: V) -> Result<Option<V>, Error> {
        if !self.entries.contains_key(&key) {
            self.check_room()?;
        }
        Ok(self.entries.insert(key, value))
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.remove(key)
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
        self.entries.retain(keep);
    }

    /// All entries in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> + '_ {
        self.entries.iter()
    }

    /// All entries in key order, values mutable.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&K, &mut V)> + '_ {
        self.entries.iter_mut()
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    fn check_room(&self) -> Result<(), Error> {
        if self.entries.len() >= self.max_keys {
            return Err(Error::Limit {
                limit: "KeyedState::max_keys",
                max: self.max_keys as u64,
                what: "a new key".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    #[test]
    fn snapshot_bytes_do_not_depend_on_insertion_order() {
        let mut a = KeyedState::<String, u64>::new();
        let mut b = KeyedState::<String, u64>::new();
        for k in ["x", "a", "m"] {
            *a.get_or_default(k).unwrap() += 1;
        }
        for k in ["m", "x", "a"] {
            *b.get_or_default(k).unwrap() += 1;
        }
        assert_eq!(codec::encode(&a).unwrap(), codec::encode(&b).unwrap());
        let back: KeyedState<String, u64> = codec::decode(&codec::encode(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn a_new_key_past_the_bound_is_refused_but_existing_keys_update() {
        let mut state = KeyedState::<u64, u64>::with_max_keys(1);
        *state.get_or_default(&1).unwrap() = 5;
        let err = state.get_or_default(&2).unwrap_err().to_string();
        assert!(
            err.contains("KeyedState::max_keys") && err.contains("(1)"),
            "{err}"
        );
        *state.get_or_default(&1).unwrap() += 1;
        assert_eq!(state.get(&1), Some(&6));
        assert!(state.insert(3, 0).is_err());
    }
}
