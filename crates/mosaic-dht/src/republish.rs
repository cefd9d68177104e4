//! [`Republisher`]: keeps a set of signed bootstraps alive in the DHT.
//!
//! DHT nodes forget items after about two hours, so each item is stored
//! again every interval (an hour by default, jittered so that many
//! publishers do not move in step). A round that leaves an item on fewer
//! nodes than wanted is retried with a growing delay. The republisher
//! holds signed items, never a secret key: it cannot publish anything new,
//! only keep what was signed alive, and it never overwrites a newer item
//! found in the DHT (see [`Dht::refresh`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use mosaic_core::{DhtTarget, PublicKey};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, error, info, info_span, warn};

use crate::error::DhtError;
use crate::node::{Dht, PublishReport};
use crate::signed::SignedBootstrap;

/// Settings of a [`Republisher`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepublishConfig {
    /// Time between two refreshes of every item. Default one hour (the
    /// spec's refresh time; DHT nodes keep items about two hours).
    pub interval: Duration,
    /// Each wait is the interval plus or minus up to this much, at random.
    /// Default 5 minutes. Must not exceed `interval`.
    pub jitter: Duration,
    /// Fewest DHT nodes that should store an item; fewer counts as a
    /// failed attempt and is retried. Default 3.
    pub min_stored: usize,
    /// Wait before the first retry of a failed attempt; each further retry
    /// waits twice as long, up to `max_retry_delay`. Default 30 seconds.
    pub retry_delay: Duration,
    /// Longest wait between retries. Default 10 minutes.
    pub max_retry_delay: Duration,
    /// Retries of one item in one round before waiting for the next round.
    /// Default 5.
    pub max_retries: u32,
}

impl Default for RepublishConfig {
    fn default() -> RepublishConfig {
        RepublishConfig {
            interval: Duration::from_secs(60 * 60),
            jitter: Duration::from_secs(5 * 60),
            min_stored: 3,
            retry_delay: Duration::from_secs(30),
            max_retry_delay: Duration::from_secs(10 * 60),
            max_retries: 5,
        }
    }
}

/// What the republisher knows about one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepublishStatus {
    /// Which kind of bootstrap.
    pub target: DhtTarget,
    /// Whose.
    pub key: PublicKey,
    /// The sequence number kept alive (it grows when a newer item was
    /// found in the DHT and adopted).
    pub seq: i64,
    /// Rounds in which the item was stored on at least `min_stored` nodes.
    pub refreshed: u64,
    /// Attempts that failed or stored the item on too few nodes.
    pub failed_attempts: u64,
    /// Nodes that stored it at the last successful attempt.
    pub stored_at: Option<usize>,
    /// When it was last stored on enough nodes.
    pub last_refreshed: Option<SystemTime>,
}

/// Starts republishers.
#[derive(Debug, Clone, Copy)]
pub struct Republisher;

impl Republisher {
    /// Starts keeping `items` alive on `dht`: the first refresh comes one
    /// (jittered) interval from now, so publish the items first. Runs until
    /// [`RepublisherHandle::stop`] or until the handle is dropped. Must be
    /// called within a Tokio runtime ([`DhtError::NoRuntime`] otherwise).
    pub fn spawn(
        dht: Dht,
        items: Vec<SignedBootstrap>,
        config: RepublishConfig,
    ) -> Result<RepublisherHandle, DhtError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DhtError::NoRuntime)?;
        let status: Vec<RepublishStatus> = items
            .iter()
            .map(|item| RepublishStatus {
                target: item.target(),
                key: *item.key(),
                seq: item.seq(),
                refreshed: 0,
                failed_attempts: 0,
                stored_at: None,
                last_refreshed: None,
            })
            .collect();
        let status = Arc::new(Mutex::new(status));
        let (stop, stopped) = watch::channel(false);
        let task = runtime.spawn(
            run(dht, items, config, Arc::clone(&status), stopped)
                .instrument(info_span!("republisher")),
        );
        Ok(RepublisherHandle { stop, task, status })
    }
}

/// Controls a running republisher. Dropping it stops the republisher too.
#[derive(Debug)]
pub struct RepublisherHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    status: Arc<Mutex<Vec<RepublishStatus>>>,
}

impl RepublisherHandle {
    /// What is known of each item, in the order given.
    pub fn status(&self) -> Vec<RepublishStatus> {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the republisher has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the republisher, letting a store under way finish first, and
    /// waits until it has stopped. Returns the final status.
    pub async fn stop(mut self) -> Vec<RepublishStatus> {
        let _ = self.stop.send(true);
        // A task that panicked or was cancelled has stopped too.
        let _ = (&mut self.task).await;
        self.status()
    }
}

impl Drop for RepublisherHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The republisher's loop.
async fn run(
    dht: Dht,
    mut items: Vec<SignedBootstrap>,
    config: RepublishConfig,
    status: Arc<Mutex<Vec<RepublishStatus>>>,
    mut stopped: watch::Receiver<bool>,
) {
    info!(items = items.len(), interval = ?config.interval, "republisher started");
    loop {
        if sleep_or_stop(jittered(config.interval, config.jitter), &mut stopped).await {
            break;
        }
        for (index, item) in items.iter_mut().enumerate() {
            if refresh_one(&dht, item, index, &config, &status, &mut stopped).await {
                info!("republisher stopped");
                return;
            }
        }
    }
    info!("republisher stopped");
}

/// Refreshes one item with retries. Returns `true` when asked to stop.
async fn refresh_one(
    dht: &Dht,
    item: &mut SignedBootstrap,
    index: usize,
    config: &RepublishConfig,
    status: &Mutex<Vec<RepublishStatus>>,
    stopped: &mut watch::Receiver<bool>,
) -> bool {
    let key = item.key_name();
    let mut delay = config.retry_delay;
    let mut attempt = 0u32;
    loop {
        let outcome = dht.refresh(item).await;
        if record(outcome, item, index, config, status) {
            return false;
        }
        if attempt >= config.max_retries {
            error!(%key, attempts = attempt + 1, "bootstrap refresh gave up until the next round");
            return false;
        }
        attempt += 1;
        if sleep_or_stop(delay, stopped).await {
            return true;
        }
        delay = delay.saturating_mul(2).min(config.max_retry_delay);
    }
}

/// Records the outcome of one attempt; returns `true` when it succeeded.
fn record(
    outcome: Result<PublishReport, DhtError>,
    item: &mut SignedBootstrap,
    index: usize,
    config: &RepublishConfig,
    status: &Mutex<Vec<RepublishStatus>>,
) -> bool {
    let key = item.key_name();
    let stored_at = match outcome {
        Ok(report) => {
            *item = report.item;
            if report.stored_at < config.min_stored {
                warn!(
                    %key,
                    stored_at = report.stored_at,
                    min_stored = config.min_stored,
                    "bootstrap stored on too few nodes"
                );
                None
            } else {
                info!(%key, seq = item.seq(), stored_at = report.stored_at, "bootstrap refreshed");
                Some(report.stored_at)
            }
        }
        Err(error) => {
            warn!(%key, %error, "bootstrap refresh failed");
            None
        }
    };
    let mut guard = status.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(entry) = guard.get_mut(index) {
        entry.seq = item.seq();
        match stored_at {
            Some(n) => {
                entry.refreshed += 1;
                entry.stored_at = Some(n);
                entry.last_refreshed = Some(SystemTime::now());
            }
            None => entry.failed_attempts += 1,
        }
    }
    stored_at.is_some()
}

/// Sleeps, or returns `true` early when asked to stop.
async fn sleep_or_stop(duration: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
    if *stopped.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(duration) => false,
        // A closed channel (handle gone) also means stop.
        _ = stopped.changed() => true,
    }
}

/// `interval` plus or minus up to `jitter`, at random.
fn jittered(interval: Duration, jitter: Duration) -> Duration {
    let jitter = jitter.min(interval);
    if jitter.is_zero() {
        return interval;
    }
    let span = jitter.as_nanos().saturating_mul(2);
    let bytes = mainline::Id::random();
    let mut random = [0u8; 16];
    for (r, b) in random.iter_mut().zip(bytes.as_bytes()) {
        *r = *b;
    }
    let offset = u128::from_le_bytes(random) % span.max(1);
    let low = interval - jitter;
    let offset = u64::try_from(offset).unwrap_or(u64::MAX);
    low + Duration::from_nanos(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_bounds() {
        let interval = Duration::from_secs(3600);
        let jitter = Duration::from_secs(300);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let d = jittered(interval, jitter);
            assert!(d >= interval - jitter && d < interval + jitter, "{d:?}");
            seen.insert(d);
        }
        assert!(seen.len() > 150, "the waits should differ");
        assert_eq!(jittered(interval, Duration::ZERO), interval);
        let d = jittered(Duration::from_secs(1), Duration::from_secs(5));
        assert!(d < Duration::from_secs(2));
    }
}
