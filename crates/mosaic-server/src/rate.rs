//! A token bucket: a sustained rate with a burst allowance.

use tokio::time::Instant;

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
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
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
}
