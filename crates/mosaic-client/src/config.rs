//! [`ClientConfig`]: how a client connects, waits and retries.

use std::sync::Arc;
use std::time::Duration;

use mosaic_core::SecretKey;
use mosaic_net::ConnectOptions;

use crate::{ClientError, Directory, StaticDirectory};

/// How a [`Client`](crate::Client) is set up. Build it from [`Default`] and
/// change the fields you need; [`Client::new`](crate::Client::new) checks it.
#[derive(Clone)]
pub struct ClientConfig {
    /// The key to authenticate as (D-4), if any. Default none: anonymous.
    /// A client can only authenticate to a server whose key it expects (the
    /// signature covers the server's key), so connections opened by address
    /// alone stay anonymous.
    pub identity: Option<SecretKey>,
    /// Where bootstraps come from. Default: an empty [`StaticDirectory`].
    pub directory: Arc<dyn Directory>,
    /// How to connect (HELLO, TLS trust, connection settings, connect
    /// timeout). Its `expected_server` and `client_key` are set by the client
    /// for each connection. Default: [`ConnectOptions::default`] (15 s to
    /// connect).
    pub connect: ConnectOptions,
    /// How long a server has to answer a query or a submission once the
    /// request is sent. Default 30 s; a shorter one gives up on slow servers
    /// sooner.
    pub request_timeout: Duration,
    /// How subscriptions wait between attempts to reach a server again.
    pub backoff: Backoff,
    /// How long a fetched key schedule is trusted before it is fetched
    /// again. Default 10 minutes. A record signed by a key the cached
    /// schedule does not list also causes a fresh fetch, at most once every
    /// [`MIN_KEY_SCHEDULE_REFRESH`](crate::MIN_KEY_SCHEDULE_REFRESH).
    pub key_schedule_ttl: Duration,
    /// How long a fetched profile is kept. Default 10 minutes.
    pub profile_ttl: Duration,
    /// How many record ids a [`Subscription`](crate::Subscription)
    /// remembers to drop repeats (48 bytes each, plus the timestamp and
    /// the set's overhead: about 6 MiB at the default, 65,536). Beyond it,
    /// the ids of the records with the oldest timestamps are forgotten
    /// first; the newest, which a server sends again after a
    /// re-subscription with `since`, are kept. A smaller number saves
    /// memory; a record older than every id remembered could then be
    /// delivered twice if a server sends it again.
    pub subscription_memory: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            identity: None,
            directory: Arc::new(StaticDirectory::new()),
            connect: ConnectOptions::default(),
            request_timeout: Duration::from_secs(30),
            backoff: Backoff::default(),
            key_schedule_ttl: Duration::from_secs(600),
            profile_ttl: Duration::from_secs(600),
            subscription_memory: 65_536,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("identity", &self.identity.as_ref().map(SecretKey::public))
            .field("connect", &self.connect)
            .field("request_timeout", &self.request_timeout)
            .field("backoff", &self.backoff)
            .field("key_schedule_ttl", &self.key_schedule_ttl)
            .field("profile_ttl", &self.profile_ttl)
            .field("subscription_memory", &self.subscription_memory)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// Checks the settings as a whole.
    pub fn validate(&self) -> Result<(), ClientError> {
        if self.request_timeout.is_zero() {
            return Err(ClientError::BadConfig {
                field: "request_timeout",
            });
        }
        if self.subscription_memory == 0 {
            return Err(ClientError::BadConfig {
                field: "subscription_memory",
            });
        }
        self.backoff.validate()
    }
}

/// Exponential backoff with jitter: attempt `n` (from 0) waits
/// `min(max, initial * 2^n)`, then scaled by a random factor in
/// `[1 - jitter, 1 + jitter]` and capped at `max`, so that many clients cut
/// off at once do not come back at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first wait. Default 250 ms.
    pub initial: Duration,
    /// The longest wait. Default 30 s; a longer one spares a down server
    /// and delays recovery.
    pub max: Duration,
    /// The random spread, as a fraction of the wait, in `0.0..=1.0`.
    /// Default 0.3.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            jitter: 0.3,
        }
    }
}

impl Backoff {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), ClientError> {
        if self.initial.is_zero() {
            return Err(ClientError::BadConfig {
                field: "backoff.initial",
            });
        }
        if self.max < self.initial {
            return Err(ClientError::BadConfig {
                field: "backoff.max",
            });
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ClientError::BadConfig {
                field: "backoff.jitter",
            });
        }
        Ok(())
    }

    /// The wait before attempt `attempt` (counted from 0), for a random
    /// `unit` in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let base = self
            .initial
            .checked_mul(1u32 << attempt.min(20))
            .unwrap_or(self.max)
            .min(self.max);
        let unit = unit.clamp(0.0, 1.0);
        let factor = 1.0 - self.jitter + 2.0 * self.jitter * unit;
        base.mul_f64(factor.max(0.0)).min(self.max)
    }

    /// The wait before attempt `attempt`, with a fresh random jitter.
    pub fn random_delay(&self, attempt: u32) -> Duration {
        self.delay(attempt, rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.5,
        };
        // Without spread (unit 0.5 is the middle), the wait doubles.
        assert_eq!(b.delay(0, 0.5), Duration::from_millis(100));
        assert_eq!(b.delay(1, 0.5), Duration::from_millis(200));
        assert_eq!(b.delay(3, 0.5), Duration::from_millis(800));
        // Capped at max, however many attempts.
        assert_eq!(b.delay(4, 0.5), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(1));
        // The spread is +-50%.
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(300));
        for _ in 0..100 {
            let d = b.random_delay(2);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(600));
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(ClientConfig::default().validate().is_ok());
        let bad = |b: Backoff| match b.validate() {
            Err(ClientError::BadConfig { field }) => field,
            other => panic!("expected BadConfig, got {other:?}"),
        };
        let ok = Backoff::default();
        assert_eq!(
            bad(Backoff {
                initial: Duration::ZERO,
                ..ok
            }),
            "backoff.initial"
        );
        assert_eq!(
            bad(Backoff {
                max: Duration::from_millis(1),
                ..ok
            }),
            "backoff.max"
        );
        assert_eq!(bad(Backoff { jitter: 1.5, ..ok }), "backoff.jitter");
        let config = ClientConfig {
            request_timeout: Duration::ZERO,
            ..ClientConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(ClientError::BadConfig {
                field: "request_timeout"
            })
        ));
    }
}
