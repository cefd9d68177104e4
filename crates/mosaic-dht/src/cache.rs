//! [`Cache`]: resolved bootstraps kept in memory, with their age, and saved
//! to bytes (postcard) so that the next run does not start cold; and the
//! keys the DHT was found to hold nothing for (misses), kept for a short
//! time in memory only.
//!
//! The cache is plain data: it never reads the clock (every call that ages
//! an entry takes `now`) and never touches a file (it gives and takes
//! bytes). Every entry is a [`SignedBootstrap`], so whatever a cache file
//! holds is checked again when it is loaded: a damaged or forged entry is
//! dropped, never served.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use mosaic_core::{DhtTarget, PublicKey};
use serde::{Deserialize, Serialize};

use crate::config::CachePolicy;
use crate::error::DhtError;
use crate::signed::SignedBootstrap;

/// Format version of the bytes [`Cache::to_bytes`] writes.
pub const CACHE_FORMAT_VERSION: u32 = 1;

/// First bytes of a cache file, before the version.
const MAGIC: [u8; 8] = *b"MOSDHTC\0";

/// How a cached entry may be used at a given time (see [`CachePolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Younger than `fresh`: serve it, ask nothing.
    Fresh,
    /// Between `fresh` and `recheck`: serve it, and refresh it in the
    /// background.
    Revalidate,
    /// Older than `recheck`: ask the DHT first; serve it (stale) only if
    /// the DHT gives no valid answer.
    Expired,
}

/// A cached bootstrap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The item.
    pub item: SignedBootstrap,
    /// When the DHT last gave or confirmed it.
    pub fetched_at: SystemTime,
}

/// Resolved bootstraps by kind and key, and recent misses.
///
/// A miss ("the DHT holds nothing for this key and kind", noted with
/// [`insert_miss`](Self::insert_miss)) counts for
/// [`CachePolicy::miss_ttl`]; at most [`CachePolicy::capacity`] misses are
/// kept, the oldest going first. Misses are not saved by
/// [`to_bytes`](Self::to_bytes).
#[derive(Debug, Clone)]
pub struct Cache {
    policy: CachePolicy,
    entries: HashMap<(DhtTarget, PublicKey), CacheEntry>,
    /// When each miss was noted.
    misses: HashMap<(DhtTarget, PublicKey), SystemTime>,
    /// The misses in the order noted (an entry whose time differs from the
    /// map's was superseded, and is skipped).
    miss_order: VecDeque<((DhtTarget, PublicKey), SystemTime)>,
}

impl Cache {
    /// An empty cache.
    pub fn new(policy: CachePolicy) -> Cache {
        Cache {
            policy,
            entries: HashMap::new(),
            misses: HashMap::new(),
            miss_order: VecDeque::new(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> &CachePolicy {
        &self.policy
    }

    /// Number of entries (bootstraps; misses are not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of a key, however old.
    pub fn get(&self, target: DhtTarget, key: &PublicKey) -> Option<&CacheEntry> {
        self.entries.get(&(target, *key))
    }

    /// How an entry fetched at `fetched_at` may be used at `now`. A clock
    /// that went backwards counts as age zero.
    pub fn freshness(&self, fetched_at: SystemTime, now: SystemTime) -> Freshness {
        let age = now.duration_since(fetched_at).unwrap_or(Duration::ZERO);
        if age < self.policy.fresh {
            Freshness::Fresh
        } else if age < self.policy.recheck {
            Freshness::Revalidate
        } else {
            Freshness::Expired
        }
    }

    /// The entry of a key and how it may be used at `now`.
    pub fn lookup(
        &self,
        target: DhtTarget,
        key: &PublicKey,
        now: SystemTime,
    ) -> Option<(&CacheEntry, Freshness)> {
        self.get(target, key)
            .map(|entry| (entry, self.freshness(entry.fetched_at, now)))
    }

    /// Records what the DHT gave at `now` and returns the entry kept. An
    /// item never replaces a cached one with a higher sequence number (an
    /// older item does not win): then the cached item stays, and only its
    /// time is renewed. When the cache is full, the entry fetched longest
    /// ago makes room.
    pub fn insert(&mut self, item: SignedBootstrap, now: SystemTime) -> &CacheEntry {
        let id = (item.target(), *item.key());
        self.misses.remove(&id);
        if !self.entries.contains_key(&id) && self.entries.len() >= self.policy.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.fetched_at)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        let entry = self.entries.entry(id).or_insert_with(|| CacheEntry {
            item: item.clone(),
            fetched_at: now,
        });
        if item.seq() >= entry.item.seq() {
            entry.item = item;
        }
        entry.fetched_at = now;
        entry
    }

    /// Notes at `now` that the DHT holds nothing for a key and kind, so
    /// that [`is_missing`](Self::is_missing) says so for
    /// [`CachePolicy::miss_ttl`]. Nothing is noted when the TTL is zero or
    /// a bootstrap of the key is cached.
    pub fn insert_miss(&mut self, target: DhtTarget, key: &PublicKey, now: SystemTime) {
        let id = (target, *key);
        if self.policy.miss_ttl.is_zero() || self.entries.contains_key(&id) {
            return;
        }
        self.misses.insert(id, now);
        self.miss_order.push_back((id, now));
        self.prune_misses(now);
    }

    /// Whether a miss of this key and kind was noted less than
    /// [`CachePolicy::miss_ttl`] before `now` (a clock that went backwards
    /// counts as age zero).
    pub fn is_missing(&self, target: DhtTarget, key: &PublicKey, now: SystemTime) -> bool {
        self.misses
            .get(&(target, *key))
            .is_some_and(|&at| self.miss_is_recent(at, now))
    }

    /// Number of misses kept (some may have expired since).
    pub fn misses(&self) -> usize {
        self.misses.len()
    }

    fn miss_is_recent(&self, at: SystemTime, now: SystemTime) -> bool {
        now.duration_since(at).unwrap_or(Duration::ZERO) < self.policy.miss_ttl
    }

    /// Drops expired misses, superseded order entries, and the oldest
    /// misses beyond the capacity.
    fn prune_misses(&mut self, now: SystemTime) {
        while let Some(&(id, at)) = self.miss_order.front() {
            let current = self.misses.get(&id) == Some(&at);
            let over = self.misses.len() > self.policy.capacity
                || self.miss_order.len() > self.policy.capacity.saturating_mul(2);
            if current && !over && self.miss_is_recent(at, now) {
                break;
            }
            self.miss_order.pop_front();
            if current {
                self.misses.remove(&id);
            }
        }
    }

    /// Forgets a key's entry, returning it.
    pub fn remove(&mut self, target: DhtTarget, key: &PublicKey) -> Option<CacheEntry> {
        self.entries.remove(&(target, *key))
    }

    /// The cache as bytes, to save in a file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut entries: Vec<FileEntry> = self
            .entries
            .values()
            .map(|e| FileEntry {
                target: e.item.target().as_u8(),
                key: e.item.key().to_bytes(),
                seq: e.item.seq(),
                signature: e.item.signature().to_vec(),
                value: e.item.value().to_vec(),
                fetched_at: e
                    .fetched_at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            })
            .collect();
        // The same cache gives the same bytes.
        entries.sort_by_key(|e| (e.target, e.key));
        let file = File {
            magic: MAGIC,
            version: CACHE_FORMAT_VERSION,
            entries,
        };
        // Serialising plain integers and byte vectors into a Vec cannot
        // fail; an empty file would be refused on load, never misread.
        postcard::to_allocvec(&file).unwrap_or_default()
    }

    /// Reads bytes written by [`to_bytes`](Self::to_bytes). Every entry is
    /// checked again (signature and text); entries that fail are dropped,
    /// and so are entries beyond the policy's capacity. Bytes that are not
    /// a cache are [`DhtError::CacheCorrupt`]; another format version is
    /// [`DhtError::CacheVersion`].
    pub fn load(bytes: &[u8], policy: CachePolicy) -> Result<Cache, DhtError> {
        let (file, rest) =
            postcard::take_from_bytes::<File>(bytes).map_err(|_| DhtError::CacheCorrupt)?;
        if file.magic != MAGIC || !rest.is_empty() {
            return Err(DhtError::CacheCorrupt);
        }
        if file.version != CACHE_FORMAT_VERSION {
            return Err(DhtError::CacheVersion {
                found: file.version,
                expected: CACHE_FORMAT_VERSION,
            });
        }
        let mut cache = Cache::new(policy);
        let mut dropped = 0usize;
        for entry in file.entries {
            match entry.check() {
                Some((item, fetched_at)) => {
                    cache.insert(item, fetched_at);
                }
                None => dropped += 1,
            }
        }
        if dropped > 0 {
            tracing::warn!(dropped, "dropped invalid entries from the DHT cache file");
        }
        Ok(cache)
    }
}

/// The saved form of a cache.
#[derive(Serialize, Deserialize)]
struct File {
    magic: [u8; 8],
    version: u32,
    entries: Vec<FileEntry>,
}

/// The saved form of an entry.
#[derive(Serialize, Deserialize)]
struct FileEntry {
    target: u8,
    key: [u8; 32],
    seq: i64,
    signature: Vec<u8>,
    value: Vec<u8>,
    /// Seconds since the Unix epoch.
    fetched_at: u64,
}

impl FileEntry {
    /// The checked item and its time, or `None` if anything is wrong.
    fn check(self) -> Option<(SignedBootstrap, SystemTime)> {
        let target = DhtTarget::from_u8(self.target).ok()?;
        let key = PublicKey::from_bytes(&self.key).ok()?;
        let signature: [u8; 64] = self.signature.as_slice().try_into().ok()?;
        let item = SignedBootstrap::verify(target, key, self.seq, signature, self.value).ok()?;
        let fetched_at =
            SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(self.fetched_at))?;
        Some((item, fetched_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed::tests::{secret, server_bootstrap, user_bootstrap};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn policy() -> CachePolicy {
        CachePolicy::default()
    }

    #[test]
    fn ages() {
        let mut cache = Cache::new(policy());
        let key = secret(1).public();
        assert!(cache.lookup(DhtTarget::User, &key, at(0)).is_none());
        let item = SignedBootstrap::sign(&secret(1), 1, user_bootstrap(2).into());
        cache.insert(item.clone(), at(1000));
        let state = |now| cache.lookup(DhtTarget::User, &key, now).map(|(_, f)| f);
        assert_eq!(state(at(1000)), Some(Freshness::Fresh));
        assert_eq!(state(at(500)), Some(Freshness::Fresh));
        assert_eq!(state(at(1000 + 1799)), Some(Freshness::Fresh));
        assert_eq!(state(at(1000 + 1800)), Some(Freshness::Revalidate));
        assert_eq!(state(at(1000 + 3599)), Some(Freshness::Revalidate));
        assert_eq!(state(at(1000 + 3600)), Some(Freshness::Expired));
        // The server bootstrap of the same key is another entry.
        assert!(cache.get(DhtTarget::Server, &key).is_none());
        assert_eq!(cache.get(DhtTarget::User, &key).unwrap().item, item);
    }

    #[test]
    fn an_older_item_does_not_win() {
        let mut cache = Cache::new(policy());
        let s = secret(1);
        let newer = SignedBootstrap::sign(&s, 5, user_bootstrap(2).into());
        let older = SignedBootstrap::sign(&s, 4, user_bootstrap(3).into());
        cache.insert(newer.clone(), at(10));
        let kept = cache.insert(older, at(20));
        assert_eq!(kept.item, newer);
        assert_eq!(kept.fetched_at, at(20));
        let newest = SignedBootstrap::sign(&s, 6, user_bootstrap(4).into());
        assert_eq!(cache.insert(newest.clone(), at(30)).item, newest);
        assert_eq!(cache.len(), 1);
        assert!(cache.remove(DhtTarget::User, &s.public()).is_some());
        assert!(cache.is_empty());
    }

    #[test]
    fn capacity_drops_the_oldest() {
        let mut cache = Cache::new(CachePolicy {
            capacity: 2,
            ..policy()
        });
        for n in 1..=3u8 {
            let item = SignedBootstrap::sign(&secret(n), 1, user_bootstrap(9).into());
            cache.insert(item, at(u64::from(n)));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get(DhtTarget::User, &secret(1).public()).is_none());
        assert!(cache.get(DhtTarget::User, &secret(3).public()).is_some());
    }

    #[test]
    fn misses_expire_make_way_and_yield_to_items() {
        let mut cache = Cache::new(CachePolicy {
            capacity: 2,
            ..policy()
        });
        let (a, b, c) = (secret(1).public(), secret(2).public(), secret(3).public());
        cache.insert_miss(DhtTarget::User, &a, at(100));
        assert!(cache.is_missing(DhtTarget::User, &a, at(100)));
        assert!(cache.is_missing(DhtTarget::User, &a, at(159)));
        assert!(!cache.is_missing(DhtTarget::User, &a, at(160)));
        assert!(!cache.is_missing(DhtTarget::Server, &a, at(100)));
        // Beyond the capacity, the oldest miss goes.
        cache.insert_miss(DhtTarget::User, &b, at(101));
        cache.insert_miss(DhtTarget::User, &c, at(102));
        assert_eq!(cache.misses(), 2);
        assert!(!cache.is_missing(DhtTarget::User, &a, at(102)));
        assert!(cache.is_missing(DhtTarget::User, &b, at(102)));
        // Noting a miss again renews it; expired ones are dropped.
        cache.insert_miss(DhtTarget::User, &b, at(150));
        cache.insert_miss(DhtTarget::User, &a, at(170));
        assert_eq!(cache.misses(), 2);
        assert!(cache.is_missing(DhtTarget::User, &b, at(170)));
        assert!(!cache.is_missing(DhtTarget::User, &c, at(170)));
        // An item found later replaces the miss; no miss is noted over it.
        let item = SignedBootstrap::sign(&secret(1), 1, user_bootstrap(2).into());
        cache.insert(item, at(171));
        assert!(!cache.is_missing(DhtTarget::User, &a, at(171)));
        cache.insert_miss(DhtTarget::User, &a, at(172));
        assert!(!cache.is_missing(DhtTarget::User, &a, at(172)));
        // A zero TTL keeps none.
        let mut off = Cache::new(CachePolicy {
            miss_ttl: Duration::ZERO,
            ..policy()
        });
        off.insert_miss(DhtTarget::User, &a, at(1));
        assert!(!off.is_missing(DhtTarget::User, &a, at(1)));
        assert_eq!(off.misses(), 0);
    }

    #[test]
    fn bytes_round_trip() {
        let mut cache = Cache::new(policy());
        let a = SignedBootstrap::sign(&secret(1), 7, user_bootstrap(2).into());
        let b = SignedBootstrap::sign(&secret(1), 2, server_bootstrap("x.example").into());
        cache.insert(a.clone(), at(100));
        cache.insert(b.clone(), at(200));
        let bytes = cache.to_bytes();
        assert_eq!(bytes, cache.to_bytes());
        let loaded = Cache::load(&bytes, policy()).unwrap();
        assert_eq!(loaded.len(), 2);
        let key = secret(1).public();
        assert_eq!(
            loaded.get(DhtTarget::User, &key),
            Some(&CacheEntry {
                item: a,
                fetched_at: at(100)
            })
        );
        assert_eq!(loaded.get(DhtTarget::Server, &key).unwrap().item, b);
        let empty = Cache::new(policy()).to_bytes();
        assert!(Cache::load(&empty, policy()).unwrap().is_empty());
    }

    #[test]
    fn damaged_bytes_are_refused_or_dropped() {
        let mut cache = Cache::new(policy());
        let item = SignedBootstrap::sign(&secret(1), 7, user_bootstrap(2).into());
        cache.insert(item, at(100));
        let bytes = cache.to_bytes();
        assert!(matches!(
            Cache::load(&[], policy()),
            Err(DhtError::CacheCorrupt)
        ));
        assert!(matches!(
            Cache::load(b"not a cache", policy()),
            Err(DhtError::CacheCorrupt)
        ));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Cache::load(&longer, policy()),
            Err(DhtError::CacheCorrupt)
        ));
        let mut version = bytes.clone();
        version[8] = 9;
        assert!(matches!(
            Cache::load(&version, policy()),
            Err(DhtError::CacheVersion {
                found: 9,
                expected: 1
            })
        ));
        // A flipped byte in the text: the entry no longer verifies and is
        // dropped; the rest of the file still loads.
        let mut forged = bytes.clone();
        let last = forged.len() - 2;
        forged[last] ^= 1;
        assert!(Cache::load(&forged, policy()).unwrap().is_empty());
        // Every truncation is an error or a smaller cache, never a panic.
        for len in 0..bytes.len() {
            if let Ok(c) = Cache::load(&bytes[..len], policy()) {
                assert!(c.len() <= 1);
            }
        }
    }
}
