//! [`ClaimSet`]: a concurrent set in which each key can be claimed exactly once.
//!
//! Built for single-use tokens (the OTT nonces of consumer admission): [`ClaimSet::claim`]
//! returns `true` to exactly one caller per key, however many threads race for it. Each entry
//! carries an expiry (epoch seconds) so that entries whose token can no longer be presented
//! are dropped by [`ClaimSet::prune`]; a claim never expires while it may still matter.
//!
//! The set is split into shards, each a `Mutex<HashMap>`; a key always maps to the same shard,
//! so check-and-insert happens under one lock and is atomic. Shards only spread contention.
//! The races (two claimers, claim against prune, claim against release) are model-checked
//! with loom in `tests/loom_claim.rs`.

use std::collections::HashMap;
use std::collections::hash_map::{DefaultHasher, Entry};
use std::hash::{BuildHasher, BuildHasherDefault, Hash};
use std::sync::PoisonError;

use crate::sync::Mutex;

/// Fixed-key SipHash: shard choice and map layout are deterministic (loom needs that) and keys
/// are not attacker-chosen in the intended use (nonces come from root-signed credentials).
type FixedState = BuildHasherDefault<DefaultHasher>;

/// Default number of shards.
#[cfg(not(aster_loom))]
pub const DEFAULT_SHARDS: usize = 16;
/// Default number of shards (kept at 2 under loom so models explore cross-shard interleavings
/// in a small state space).
#[cfg(aster_loom)]
pub const DEFAULT_SHARDS: usize = 2;

/// A concurrent set of claimed keys, each with an expiry; see the [module docs](self).
#[derive(Debug)]
pub struct ClaimSet<K> {
    shards: Box<[Mutex<HashMap<K, u64, FixedState>>]>,
    hasher: FixedState,
}

impl<K: Hash + Eq + Clone> Default for ClaimSet<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone> ClaimSet<K> {
    /// An empty set with [`DEFAULT_SHARDS`] shards.
    pub fn new() -> Self {
        Self::with_shards(DEFAULT_SHARDS)
    }

    /// An empty set with `shards` shards (at least one).
    pub fn with_shards(shards: usize) -> Self {
        let shards = (0..shards.max(1)).map(|_| Mutex::new(HashMap::with_hasher(FixedState::default()))).collect();
        ClaimSet { shards, hasher: FixedState::default() }
    }

    fn shard(&self, key: &K) -> &Mutex<HashMap<K, u64, FixedState>> {
        // Truncation is intended: only the low bits pick the shard.
        let h = self.hasher.hash_one(key) as usize;
        &self.shards[h % self.shards.len()]
    }

    /// Claims `key`. Returns `true` only for the first claim of a key that is not in the set;
    /// every later (or concurrent, losing) claim returns `false`. A losing claim extends the
    /// stored expiry to the later of the two, so the key is never pruned early.
    pub fn claim(&self, key: K, expires_at: u64) -> bool {
        let mut map = self.shard(&key).lock().unwrap_or_else(PoisonError::into_inner);
        match map.entry(key) {
            Entry::Occupied(mut e) => {
                if *e.get() < expires_at {
                    e.insert(expires_at);
                }
                false
            }
            Entry::Vacant(e) => {
                e.insert(expires_at);
                true
            }
        }
    }

    /// Undoes a claim (for a caller whose claim succeeded but who then failed to persist it).
    /// Returns whether the key was present.
    pub fn release(&self, key: &K) -> bool {
        self.shard(key).lock().unwrap_or_else(PoisonError::into_inner).remove(key).is_some()
    }

    /// Whether `key` is claimed.
    pub fn contains(&self, key: &K) -> bool {
        self.shard(key).lock().unwrap_or_else(PoisonError::into_inner).contains_key(key)
    }

    /// Removes every entry whose expiry is strictly before `cutoff`; returns how many.
    pub fn prune(&self, cutoff: u64) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = map.len();
            map.retain(|_, exp| *exp >= cutoff);
            removed += before - map.len();
        }
        removed
    }

    /// Number of claimed keys (a snapshot; shards are locked one after the other).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len()).sum()
    }

    /// Whether no key is claimed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every `(key, expiry)` pair (shard by shard; not an atomic view across shards).
    pub fn snapshot(&self) -> Vec<(K, u64)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            out.extend(map.iter().map(|(k, v)| (k.clone(), *v)));
        }
        out
    }
}

#[cfg(all(test, not(aster_loom)))]
mod tests {
    use super::*;

    #[test]
    fn first_claim_wins() {
        let s = ClaimSet::new();
        assert!(s.claim([1u8; 32], 10));
        assert!(!s.claim([1u8; 32], 10));
        assert!(s.claim([2u8; 32], 10));
        assert_eq!(s.len(), 2);
        assert!(s.contains(&[1u8; 32]));
    }

    #[test]
    fn losing_claim_extends_expiry() {
        let s = ClaimSet::with_shards(1);
        assert!(s.claim(7u32, 10));
        assert!(!s.claim(7u32, 20));
        assert_eq!(s.prune(15), 0, "expiry was extended to 20");
        assert_eq!(s.prune(21), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn prune_keeps_boundary_and_release_undoes() {
        let s = ClaimSet::new();
        assert!(s.claim(1u64, 5));
        assert!(s.claim(2u64, 6));
        assert_eq!(s.prune(6), 1, "expiry 5 < cutoff 6 goes, 6 stays");
        assert!(s.contains(&2));
        assert!(s.release(&2));
        assert!(!s.release(&2));
        assert!(s.claim(2u64, 6), "released key can be claimed again");
        let mut snap = s.snapshot();
        snap.sort();
        assert_eq!(snap, vec![(2, 6)]);
    }

    #[test]
    fn threads_race_for_one_key() {
        let s = std::sync::Arc::new(ClaimSet::new());
        let wins: usize = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || s.claim(42u32, 1))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum();
        assert_eq!(wins, 1);
    }
}
