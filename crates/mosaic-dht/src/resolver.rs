//! [`Resolver`]: resolution through a [`Cache`] in front of the DHT.
//!
//! A cached bootstrap younger than the fresh age is served without a query;
//! between the fresh and the recheck age it is served at once and refreshed
//! in the background; older, the DHT is asked first and the cached value is
//! served, marked stale, only when the DHT gives no valid answer.
//!
//! A key the DHT holds nothing for is remembered as a miss for
//! [`CachePolicy::miss_ttl`](crate::CachePolicy::miss_ttl) (60 s by
//! default), and concurrent resolutions of one key and kind share one DHT
//! query (single flight): a flood of lookups, of known or unknown keys,
//! reaches the DHT at most once per key and kind at a time, and for a miss
//! at most once per TTL.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use mosaic_core::{DhtTarget, Message, PublicKey, QueryId, ServerBootstrap, UserBootstrap};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::cache::{Cache, Freshness};
use crate::error::DhtError;
use crate::node::Dht;
use crate::relay::dht_response;
use crate::signed::{Bootstrap, Resolved, SignedBootstrap, key_name};

/// Where a [`Resolver`] reads the time.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A [`Dht`] with a cache in front of resolution. Cloning is cheap and
/// shares the cache.
#[derive(Clone)]
pub struct Resolver {
    dht: Dht,
    shared: Arc<Shared>,
}

struct Shared {
    cache: Mutex<Cache>,
    clock: Arc<dyn Clock>,
    /// Keys being refreshed in the background.
    refreshing: Mutex<HashSet<(DhtTarget, PublicKey)>>,
    /// DHT queries under way, which later resolutions of the same key and
    /// kind wait for instead of asking again.
    flights: Mutex<HashMap<(DhtTarget, PublicKey), watch::Receiver<Flight>>>,
}

/// What one DHT query gave.
type Outcome = Result<Option<SignedBootstrap>, DhtError>;

/// A shared query: `None` while it runs, then its outcome (an error that
/// cannot be copied is `Err(None)`, and each waiter asks for itself).
type Flight = Option<Result<Option<SignedBootstrap>, Option<DhtError>>>;

/// Removes a flight from the table when its query ends, however it ends
/// (a dropped leader lets its waiters query themselves).
struct FlightGuard<'a> {
    shared: &'a Shared,
    id: (DhtTarget, PublicKey),
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.flights).remove(&self.id);
    }
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("dht", &self.dht)
            .field("cached", &self.cache().len())
            .finish()
    }
}

/// Locks a mutex; a panic elsewhere while it was held leaves plain data
/// that is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Resolver {
    /// A resolver with an empty cache following the node's
    /// [`CachePolicy`](crate::CachePolicy).
    pub fn new(dht: Dht) -> Resolver {
        let cache = Cache::new(dht.config().cache);
        Resolver::with_cache(dht, cache)
    }

    /// A resolver starting from a cache (for instance one loaded with
    /// [`Cache::load`]).
    pub fn with_cache(dht: Dht, cache: Cache) -> Resolver {
        Resolver::with_clock(dht, cache, Arc::new(SystemClock))
    }

    /// A resolver reading the time from `clock`.
    pub fn with_clock(dht: Dht, cache: Cache, clock: Arc<dyn Clock>) -> Resolver {
        Resolver {
            dht,
            shared: Arc::new(Shared {
                cache: Mutex::new(cache),
                clock,
                refreshing: Mutex::new(HashSet::new()),
                flights: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The DHT node.
    pub fn dht(&self) -> &Dht {
        &self.dht
    }

    /// The cache, locked (keep the guard short: resolutions wait for it).
    pub fn cache(&self) -> MutexGuard<'_, Cache> {
        lock(&self.shared.cache)
    }

    /// Puts an item into the cache as fetched now, for instance the
    /// item just published.
    pub fn remember(&self, item: SignedBootstrap) {
        let now = self.shared.clock.now();
        self.cache().insert(item, now);
    }

    /// The user bootstrap of a key. See [`resolve`](Self::resolve).
    pub async fn resolve_user(
        &self,
        key: &PublicKey,
    ) -> Result<Option<Resolved<UserBootstrap>>, DhtError> {
        Ok(self
            .resolve(DhtTarget::User, key)
            .await?
            .and_then(Resolved::into_user))
    }

    /// The server bootstrap of a key. See [`resolve`](Self::resolve).
    pub async fn resolve_server(
        &self,
        key: &PublicKey,
    ) -> Result<Option<Resolved<ServerBootstrap>>, DhtError> {
        Ok(self
            .resolve(DhtTarget::Server, key)
            .await?
            .and_then(Resolved::into_server))
    }

    /// The most recent valid bootstrap of a kind for a key, from the cache
    /// while it is fresh, else from the DHT (see the module documentation).
    /// An error is returned only when nothing is cached either.
    pub async fn resolve(
        &self,
        target: DhtTarget,
        key: &PublicKey,
    ) -> Result<Option<Resolved<Bootstrap>>, DhtError> {
        Ok(self
            .resolve_item(target, key)
            .await?
            .map(|(item, fetched_at, stale)| item.into_resolved(fetched_at, stale)))
    }

    /// The most recent valid item of a kind for a key, with its sequence
    /// number, signature and exact text, through the cache (a stale item
    /// is still authentic: the client checks it). What a server relays in a
    /// DHT Response; see [`answer_lookup`](Self::answer_lookup).
    pub async fn lookup_raw(
        &self,
        target: DhtTarget,
        key: &PublicKey,
    ) -> Result<Option<SignedBootstrap>, DhtError> {
        Ok(self
            .resolve_item(target, key)
            .await?
            .map(|(item, _, _)| item))
    }

    /// The item, when the DHT gave or confirmed it, and whether it is
    /// stale.
    async fn resolve_item(
        &self,
        target: DhtTarget,
        key: &PublicKey,
    ) -> Result<Option<(SignedBootstrap, SystemTime, bool)>, DhtError> {
        let now = self.shared.clock.now();
        let cached = {
            let cache = self.cache();
            cache
                .lookup(target, key, now)
                .map(|(entry, freshness)| (entry.clone(), freshness))
        };
        match cached {
            Some((entry, Freshness::Fresh)) => {
                return Ok(Some((entry.item, entry.fetched_at, false)));
            }
            Some((entry, Freshness::Revalidate)) => {
                self.refresh_in_background(target, *key);
                return Ok(Some((entry.item, entry.fetched_at, false)));
            }
            Some((_, Freshness::Expired)) => {}
            None => {
                if self.cache().is_missing(target, key, now) {
                    return Ok(None);
                }
            }
        }
        let outcome = self.query(target, key).await;
        if let Ok(Some(item)) = outcome {
            // The query noted the item in the cache; the entry kept may be
            // newer still.
            let entry = self.cache().get(target, key).cloned();
            return Ok(Some(match entry {
                Some(entry) if entry.item.seq() >= item.seq() => {
                    (entry.item, entry.fetched_at, false)
                }
                _ => (item, self.shared.clock.now(), false),
            }));
        }
        let cached = self.cache().get(target, key).cloned();
        match (outcome, cached) {
            (Ok(_), None) => Ok(None),
            (Err(error), None) => Err(error),
            (outcome, Some(entry)) => {
                match outcome {
                    Ok(_) => warn!(
                        key = %key_name(target, key),
                        "the DHT holds no bootstrap any more; serving the cached one as stale"
                    ),
                    Err(error) => warn!(
                        key = %key_name(target, key),
                        %error,
                        "no valid answer from the DHT; serving the cached bootstrap as stale"
                    ),
                }
                Ok(Some((entry.item, entry.fetched_at, true)))
            }
        }
    }

    /// One DHT query for a key and kind, shared with every resolution of
    /// the same key and kind that starts while it runs. Its answer is noted
    /// in the cache (an item, or a miss) before the waiters see it.
    async fn query(&self, target: DhtTarget, key: &PublicKey) -> Outcome {
        let id = (target, *key);
        loop {
            let joined = {
                let mut flights = lock(&self.shared.flights);
                match flights.get(&id) {
                    Some(rx) => Ok(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        flights.insert(id, rx);
                        Err(tx)
                    }
                }
            };
            let mut rx = match joined {
                Ok(rx) => rx,
                Err(tx) => return self.lead(target, key, tx).await,
            };
            // `Err`: the leader was dropped before it finished; try again.
            let shared = match rx.wait_for(Option::is_some).await {
                Ok(done) => match &*done {
                    Some(Ok(found)) => Some(Ok(found.clone())),
                    Some(Err(error)) => Some(Err(error.as_ref().and_then(DhtError::duplicate))),
                    None => None,
                },
                Err(_) => None,
            };
            match shared {
                Some(Ok(found)) => return Ok(found),
                Some(Err(Some(error))) => return Err(error),
                // An error that cannot be shared: ask ourselves.
                Some(Err(None)) => return self.dht.lookup_raw(target, key).await,
                None => tokio::task::yield_now().await,
            }
        }
    }

    /// Runs the query of a flight, notes its answer and tells the waiters.
    async fn lead(&self, target: DhtTarget, key: &PublicKey, tx: watch::Sender<Flight>) -> Outcome {
        let _guard = FlightGuard {
            shared: &self.shared,
            id: (target, *key),
        };
        let outcome = self.dht.lookup_raw(target, key).await;
        let now = self.shared.clock.now();
        match &outcome {
            Ok(Some(item)) => {
                self.cache().insert(item.clone(), now);
            }
            Ok(None) => self.cache().insert_miss(target, key, now),
            Err(_) => {}
        }
        tx.send_replace(Some(match &outcome {
            Ok(found) => Ok(found.clone()),
            Err(error) => Err(error.duplicate()),
        }));
        outcome
    }

    /// Looks a key up and builds the DHT Response a server sends for a
    /// DHT Lookup (SPEC-NOTES D-9).
    pub async fn answer_lookup(
        &self,
        query_id: QueryId,
        target: DhtTarget,
        key: &PublicKey,
    ) -> Message {
        let outcome = self.lookup_raw(target, key).await;
        if let Err(error) = &outcome {
            debug!(key = %key_name(target, key), %error, "DHT Lookup failed");
        }
        dht_response(query_id, target, *key, &outcome)
    }

    /// Starts refreshing a key's entry in the background, unless that is
    /// already under way.
    fn refresh_in_background(&self, target: DhtTarget, key: PublicKey) {
        if !lock(&self.shared.refreshing).insert((target, key)) {
            return;
        }
        let this = self.clone();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            lock(&self.shared.refreshing).remove(&(target, key));
            return;
        };
        runtime.spawn(async move {
            match this.query(target, &key).await {
                Ok(Some(_)) => {}
                Ok(None) => {
                    debug!(key = %key_name(target, &key), "background refresh found nothing")
                }
                Err(error) => {
                    debug!(key = %key_name(target, &key), %error, "background refresh failed")
                }
            }
            lock(&this.shared.refreshing).remove(&(target, key));
        });
    }
}
