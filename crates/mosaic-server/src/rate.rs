//! Token buckets: a sustained rate with a burst allowance, per connection
//! ([`TokenBucket`]) and per IP address or key ([`Buckets`]).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use tokio::time::Instant;

/// Entries a [`Buckets`] map holds before the idle ones are dropped.
const PRUNE_AT: usize = 4096;

/// Allows `rate` events per second on average and `burst` at once.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            rate: f64::from(rate),
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self) -> bool {
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
    }

    /// Follows a changed rate or burst (a configuration reload), keeping the
    /// tokens in hand up to the new burst.
    fn set(&mut self, rate: u32, burst: u32) {
        self.rate = f64::from(rate);
        self.burst = f64::from(burst);
        self.tokens = self.tokens.min(self.burst);
    }

    /// Whether the bucket is full, so forgetting it changes nothing.
    fn is_full(&mut self) -> bool {
        self.refill();
        self.tokens >= self.burst
    }
}

/// One token bucket per key (an IP address, a public key), made on first
/// use; full buckets are forgotten when the map grows, so it stays as large
/// as the set of recently active keys.
#[derive(Debug)]
pub(crate) struct Buckets<K> {
    map: Mutex<HashMap<K, TokenBucket>>,
}

impl<K: Hash + Eq> Buckets<K> {
    pub(crate) fn new() -> Buckets<K> {
        Buckets {
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `key`'s bucket, which refills at `rate` per
    /// second up to `burst`.
    pub(crate) fn try_take(&self, key: K, rate: u32, burst: u32) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= PRUNE_AT {
            map.retain(|_, bucket| !bucket.is_full());
        }
        let bucket = map
            .entry(key)
            .or_insert_with(|| TokenBucket::new(rate, burst));
        bucket.set(rate, burst);
        bucket.try_take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_rate() {
        let mut b = TokenBucket::new(10, 3);
        assert!(b.try_take() && b.try_take() && b.try_take());
        assert!(!b.try_take());
        tokio::time::advance(std::time::Duration::from_millis(100)).await;
        assert!(b.try_take());
        assert!(!b.try_take());
    }

    #[tokio::test(start_paused = true)]
    async fn buckets_are_per_key_and_forgotten_when_full() {
        let buckets = Buckets::new();
        assert!(buckets.try_take(1, 10, 2) && buckets.try_take(1, 10, 2));
        assert!(!buckets.try_take(1, 10, 2), "key 1 has spent its burst");
        assert!(buckets.try_take(2, 10, 2), "key 2 has its own bucket");
        for k in 3..PRUNE_AT as u32 + 10 {
            buckets.try_take(k, 10, 2);
        }
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        buckets.try_take(0, 10, 2);
        let len = buckets.map.lock().unwrap().len();
        assert!(
            len < PRUNE_AT,
            "refilled buckets were forgotten ({len} left)"
        );
    }
}
