//! [`Dht`]: a Mainline DHT node that publishes and resolves bootstraps as
//! BEP 44 mutable items, through mainline's async API.
//!
//! Every read collects the items the DHT nodes return, keeps those whose
//! signature verifies (strict RFC 8032, with the salt of the bootstrap's
//! kind) and takes the most recent: highest sequence number, ties broken by
//! the larger value as mainline does. Every write reads first and publishes
//! with the next sequence number and a compare-and-swap on the one read.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use futures_util::StreamExt;
use mainline::MutableItem;
use mainline::async_dht::AsyncDht;
use mainline::errors::{PutMutableError, PutQueryError};
use mosaic_core::bootstrap::bep44_verify;
use mosaic_core::{DhtTarget, PublicKey, SecretKey, ServerBootstrap, UserBootstrap};
use tokio::time::{Instant, timeout_at};
use tracing::{debug, info, warn};

use crate::config::DhtConfig;
use crate::error::DhtError;
use crate::signed::{Bootstrap, Resolved, SignedBootstrap, check_text, key_name, salt};

/// A node of the Mainline DHT, as a client of Mosaic bootstraps.
///
/// Cloning is cheap and shares the node. The node stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Dht {
    inner: Arc<Inner>,
}

struct Inner {
    node: AsyncDht,
    config: DhtConfig,
    queries: AtomicU64,
}

impl std::fmt::Debug for Dht {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dht")
            .field("bootstrap_nodes", &self.inner.config.bootstrap_nodes)
            .field("queries", &self.queries())
            .finish()
    }
}

/// What a publication did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReport {
    /// The item now in the DHT (for [`Dht::refresh`], possibly a newer
    /// item found there instead of the one given).
    pub item: SignedBootstrap,
    /// The sequence number found in the DHT before publishing, if any.
    pub previous_seq: Option<i64>,
    /// How many DHT nodes acknowledged storing the item.
    pub stored_at: usize,
}

impl PublishReport {
    /// The sequence number published.
    pub fn seq(&self) -> i64 {
        self.item.seq()
    }
}

/// An item from the DHT whose signature verified; its text is not checked
/// yet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RawItem {
    seq: i64,
    signature: [u8; 64],
    value: Box<[u8]>,
}

impl Dht {
    /// Starts a node: binds its UDP socket and starts joining the DHT
    /// through the configured bootstrap nodes (the public routers when none
    /// are given). Checks the configuration first.
    ///
    /// It blocks briefly (a DNS lookup for bootstrap host names, and the
    /// node's thread starting).
    pub fn start(config: DhtConfig) -> Result<Dht, DhtError> {
        let bootstrap = config.check()?;
        let mut builder = mainline::Dht::builder();
        if let Some(nodes) = &bootstrap {
            builder.bootstrap(nodes);
        }
        if let Some(address) = config.bind_address {
            builder.bind_address(address);
        }
        if let Some(port) = config.port {
            builder.port(port);
        }
        if config.server_mode {
            builder.server_mode();
        }
        builder.request_timeout(config.request_timeout);
        let node = builder.build()?.as_async();
        info!(bootstrap_nodes = ?config.bootstrap_nodes, "DHT node started");
        Ok(Dht {
            inner: Arc::new(Inner {
                node,
                config,
                queries: AtomicU64::new(0),
            }),
        })
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &DhtConfig {
        &self.inner.config
    }

    /// How many DHT queries (reads and writes) this node was asked to make
    /// by this crate so far. A cache hit makes none.
    pub fn queries(&self) -> u64 {
        self.inner.queries.load(Ordering::Relaxed)
    }

    /// The local address of the node's UDP socket.
    pub async fn local_addr(&self) -> std::net::SocketAddrV4 {
        self.inner.node.info().await.local_addr()
    }

    /// Publishes a user bootstrap (salt `mub25`) signed by the master key.
    /// See [`publish`](Self::publish).
    pub async fn publish_user(
        &self,
        secret: &SecretKey,
        bootstrap: &UserBootstrap,
    ) -> Result<PublishReport, DhtError> {
        self.publish(secret, &Bootstrap::User(bootstrap.clone()))
            .await
    }

    /// Publishes a server bootstrap (salt `msb24`) signed by the server's
    /// key. See [`publish`](Self::publish).
    pub async fn publish_server(
        &self,
        secret: &SecretKey,
        bootstrap: &ServerBootstrap,
    ) -> Result<PublishReport, DhtError> {
        self.publish(secret, &Bootstrap::Server(bootstrap.clone()))
            .await
    }

    /// Publishes bootstrap text of the kind `target` names, after checking
    /// it: longer than 983 bytes is [`DhtError::TooLarge`], not a valid
    /// bootstrap is [`DhtError::Invalid`], and in both cases nothing is
    /// sent. The text published is the parsed bootstrap's normalised text.
    pub async fn publish_text(
        &self,
        secret: &SecretKey,
        target: DhtTarget,
        text: &[u8],
    ) -> Result<PublishReport, DhtError> {
        let bootstrap = check_text(target, text)?;
        self.publish(secret, &bootstrap).await
    }

    /// Publishes a bootstrap signed by the master key.
    ///
    /// Reads the key's current item first. If it holds the same text, that
    /// item is stored again as it is (same sequence number). Otherwise the
    /// bootstrap is signed with the next sequence number (1 when there is
    /// none) and stored with a compare-and-swap on the sequence read, so
    /// that a writer who published in between makes this fail with
    /// [`DhtError::Conflict`] instead of being overwritten.
    pub async fn publish(
        &self,
        secret: &SecretKey,
        bootstrap: &Bootstrap,
    ) -> Result<PublishReport, DhtError> {
        let target = bootstrap.target();
        let text = bootstrap.to_text();
        // The typed bootstraps are valid by construction; checked again
        // so that nothing invalid can reach the network.
        check_text(target, text.as_bytes())?;
        let key = secret.public();
        let current = self.fetch(target, &key).await?.into_iter().next();
        let previous_seq = current.as_ref().map(|c| c.seq);
        let item = match current {
            Some(c) if *c.value == *text.as_bytes() => {
                SignedBootstrap::verify(target, key, c.seq, c.signature, c.value.into_vec())?
            }
            _ => SignedBootstrap::sign(
                secret,
                next_seq(target, &key, previous_seq)?,
                bootstrap.clone(),
            ),
        };
        self.put_checked(item, previous_seq).await
    }

    /// Publishes a bootstrap as the successor of the item with sequence
    /// `previous` (`None`: no item), without reading first: sequence
    /// `previous + 1` (or 1), compare-and-swap on `previous`. For a caller
    /// that read the key itself (an editor that showed the current
    /// bootstrap); [`DhtError::Conflict`] means someone published since.
    pub async fn publish_after(
        &self,
        secret: &SecretKey,
        bootstrap: &Bootstrap,
        previous: Option<i64>,
    ) -> Result<PublishReport, DhtError> {
        let target = bootstrap.target();
        check_text(target, bootstrap.to_text().as_bytes())?;
        let key = secret.public();
        let item =
            SignedBootstrap::sign(secret, next_seq(target, &key, previous)?, bootstrap.clone());
        self.put_checked(item, previous).await
    }

    /// Stores an already signed item again, to keep it alive (DHT nodes
    /// drop items after about two hours). Needs no secret key.
    ///
    /// Reads first: if the DHT holds a newer valid item for the key, that
    /// one is stored again instead (never overwritten) and returned in the
    /// report, with a warning. Otherwise the given item is stored with a
    /// compare-and-swap on what was read.
    pub async fn refresh(&self, item: &SignedBootstrap) -> Result<PublishReport, DhtError> {
        let target = item.target();
        let key = *item.key();
        let current = self.fetch(target, &key).await?.into_iter().next();
        let previous_seq = current.as_ref().map(|c| c.seq);
        let item = match current {
            Some(c) if c.seq > item.seq() => {
                let newer =
                    SignedBootstrap::verify(target, key, c.seq, c.signature, c.value.into_vec())?;
                warn!(
                    key = %key_name(target, &key),
                    held = item.seq(),
                    found = newer.seq(),
                    "a newer bootstrap was published elsewhere; keeping that one alive"
                );
                newer
            }
            Some(c) if c.seq == item.seq() && *c.value != *item.value() => {
                warn!(
                    key = %key_name(target, &key),
                    seq = c.seq,
                    "another bootstrap was signed with the same sequence number; storing ours"
                );
                item.clone()
            }
            _ => item.clone(),
        };
        self.put_checked(item, previous_seq).await
    }

    /// The most recent valid user bootstrap of a key, straight from the
    /// DHT. See [`lookup_raw`](Self::lookup_raw).
    pub async fn resolve_user(
        &self,
        key: &PublicKey,
    ) -> Result<Option<Resolved<UserBootstrap>>, DhtError> {
        Ok(self
            .resolve(DhtTarget::User, key)
            .await?
            .and_then(Resolved::into_user))
    }

    /// The most recent valid server bootstrap of a key, straight from the
    /// DHT. See [`lookup_raw`](Self::lookup_raw).
    pub async fn resolve_server(
        &self,
        key: &PublicKey,
    ) -> Result<Option<Resolved<ServerBootstrap>>, DhtError> {
        Ok(self
            .resolve(DhtTarget::Server, key)
            .await?
            .and_then(Resolved::into_server))
    }

    /// The most recent valid bootstrap of a kind for a key, straight from
    /// the DHT, never stale. See [`lookup_raw`](Self::lookup_raw).
    pub async fn resolve(
        &self,
        target: DhtTarget,
        key: &PublicKey,
    ) -> Result<Option<Resolved<Bootstrap>>, DhtError> {
        Ok(self
            .lookup_raw(target, key)
            .await?
            .map(|item| item.into_resolved(SystemTime::now(), false)))
    }

    /// The most recent valid item of a kind for a key, with its sequence
    /// number, signature and exact text: what a server relays in a DHT
    /// Response.
    ///
    /// `Ok(None)` when the nodes answered and none holds an item. Items
    /// whose signature fails are ignored. When every item signed by the key
    /// is malformed (not a bootstrap of this kind, or too long), the error
    /// is [`DhtError::Malformed`], naming the key. No node answering is
    /// [`DhtError::Timeout`] (or [`DhtError::NoNodes`] when none is known).
    pub async fn lookup_raw(
        &self,
        target: DhtTarget,
        key: &PublicKey,
    ) -> Result<Option<SignedBootstrap>, DhtError> {
        let items = self.fetch(target, key).await?;
        most_recent_valid(target, key, items)
    }

    /// Counts one query.
    fn count(&self) {
        self.inner.queries.fetch_add(1, Ordering::Relaxed);
    }

    /// All items the DHT holds for a key and kind whose signature verifies,
    /// most recent first, without repetition.
    async fn fetch(&self, target: DhtTarget, key: &PublicKey) -> Result<Vec<RawItem>, DhtError> {
        self.count();
        let salt = salt(target);
        let deadline = Instant::now() + self.inner.config.query_timeout;
        let detailed = self
            .inner
            .node
            .get_mutable_detailed(key.as_bytes(), Some(salt), None);
        let mut stream = detailed.items;
        let mut items: Vec<RawItem> = Vec::new();
        let finished = loop {
            match timeout_at(deadline, stream.next()).await {
                Ok(Some(item)) => {
                    if let Some(raw) = checked(target, key, &item) {
                        if !items.contains(&raw) {
                            items.push(raw);
                        }
                    } else {
                        warn!(key = %key_name(target, key), "ignored a DHT item that does not verify");
                    }
                }
                Ok(None) => break true,
                Err(_) => break false,
            }
        };
        items.sort_by(|a, b| b.seq.cmp(&a.seq).then_with(|| b.value.cmp(&a.value)));
        if !items.is_empty() {
            debug!(key = %key_name(target, key), found = items.len(), seq = items[0].seq, "DHT items found");
            return Ok(items);
        }
        if !finished {
            return Err(DhtError::Timeout);
        }
        let outcome = timeout_at(deadline, detailed.outcome.recv())
            .await
            .map_err(|_| DhtError::Timeout)?;
        if outcome.queried == 0 {
            return Err(DhtError::NoNodes);
        }
        if outcome.responded() == 0 {
            return Err(DhtError::Timeout);
        }
        debug!(key = %key_name(target, key), queried = outcome.queried, "no DHT item found");
        Ok(items)
    }

    /// Stores a checked item with a compare-and-swap on `cas`.
    async fn put_checked(
        &self,
        item: SignedBootstrap,
        cas: Option<i64>,
    ) -> Result<PublishReport, DhtError> {
        let target = item.target();
        let key = *item.key();
        let mutable = MutableItem::new_signed_unchecked(
            key.to_bytes(),
            *item.signature(),
            item.value(),
            item.seq(),
            Some(salt(target)),
        );
        self.count();
        let deadline = Instant::now() + self.inner.config.query_timeout;
        let outcome = match timeout_at(deadline, self.inner.node.put_mutable(mutable, cas)).await {
            Err(_) => return Err(DhtError::Timeout),
            Ok(result) => result,
        };
        match outcome {
            Ok(outcome) if outcome.stored_at > 0 => {
                let stored_at = outcome.stored_at as usize;
                info!(key = %key_name(target, &key), seq = item.seq(), stored_at, "bootstrap stored");
                Ok(PublishReport {
                    item,
                    previous_seq: cas,
                    stored_at,
                })
            }
            Ok(_) => Err(DhtError::NotStored),
            Err(PutMutableError::Query(PutQueryError::NoClosestNodes)) => Err(DhtError::NoNodes),
            Err(PutMutableError::Query(PutQueryError::Timeout)) => Err(DhtError::Timeout),
            Err(PutMutableError::Query(PutQueryError::ErrorResponse(e))) => {
                Err(DhtError::Refused { code: e.code })
            }
            Err(PutMutableError::Concurrency(reason)) => {
                debug!(key = %key_name(target, &key), ?reason, "compare-and-swap lost");
                let found_seq = match self.fetch(target, &key).await {
                    Ok(items) => items.first().map(|i| i.seq),
                    Err(_) => None,
                };
                Err(DhtError::Conflict {
                    expected_seq: cas,
                    found_seq,
                })
            }
        }
    }
}

/// The sequence number after `previous`.
fn next_seq(target: DhtTarget, key: &PublicKey, previous: Option<i64>) -> Result<i64, DhtError> {
    match previous {
        None => Ok(1),
        Some(seq) => {
            seq.checked_add(1)
                .map(|s| s.max(1))
                .ok_or_else(|| DhtError::SequenceExhausted {
                    key: key_name(target, key),
                })
        }
    }
}

/// The item as a [`RawItem`] if it is for this key and salt and its
/// signature verifies strictly.
fn checked(target: DhtTarget, key: &PublicKey, item: &MutableItem) -> Option<RawItem> {
    let salt = salt(target);
    if item.key() != key.as_bytes() || item.salt() != Some(salt) {
        return None;
    }
    bep44_verify(key, salt, item.seq(), item.value(), item.signature()).ok()?;
    Some(RawItem {
        seq: item.seq(),
        signature: *item.signature(),
        value: item.value().into(),
    })
}

/// The first item (most recent first) whose text is a valid bootstrap;
/// when there are items but none is valid, the error of the most recent.
fn most_recent_valid(
    target: DhtTarget,
    key: &PublicKey,
    items: Vec<RawItem>,
) -> Result<Option<SignedBootstrap>, DhtError> {
    let mut first_error = None;
    for raw in items {
        match SignedBootstrap::verify(target, *key, raw.seq, raw.signature, raw.value.into_vec()) {
            Ok(item) => return Ok(Some(item)),
            Err(error) => {
                warn!(seq = raw.seq, %error, "skipped a malformed bootstrap");
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signed::tests::{secret, user_bootstrap};
    use mosaic_core::BootstrapError;
    use mosaic_core::bootstrap::{USER_BOOTSTRAP_SALT, bep44_sign};

    fn raw(s: &SecretKey, seq: i64, value: &[u8]) -> RawItem {
        RawItem {
            seq,
            signature: bep44_sign(s, USER_BOOTSTRAP_SALT, seq, value),
            value: value.into(),
        }
    }

    #[test]
    fn next_sequence_numbers() {
        let key = secret(1).public();
        assert_eq!(next_seq(DhtTarget::User, &key, None).unwrap(), 1);
        assert_eq!(next_seq(DhtTarget::User, &key, Some(7)).unwrap(), 8);
        assert_eq!(next_seq(DhtTarget::User, &key, Some(-5)).unwrap(), 1);
        assert!(matches!(
            next_seq(DhtTarget::User, &key, Some(i64::MAX)),
            Err(DhtError::SequenceExhausted { key: k }) if k.starts_with("mopub0")
        ));
    }

    #[test]
    fn the_most_recent_valid_item_wins() {
        let s = secret(1);
        let key = s.public();
        let good = user_bootstrap(2).to_text();
        let newer = user_bootstrap(3).to_text();
        let items = vec![raw(&s, 9, newer.as_bytes()), raw(&s, 8, good.as_bytes())];
        let found = most_recent_valid(DhtTarget::User, &key, items)
            .unwrap()
            .unwrap();
        assert_eq!(found.seq(), 9);
        // A malformed newest item is skipped for an older valid one.
        let items = vec![raw(&s, 10, b"U\nnonsense"), raw(&s, 8, good.as_bytes())];
        let found = most_recent_valid(DhtTarget::User, &key, items)
            .unwrap()
            .unwrap();
        assert_eq!(found.seq(), 8);
        // Only malformed items: an error naming the key, not a panic.
        let items = vec![raw(&s, 10, b"U\nnonsense"), raw(&s, 3, &[0xff; 990])];
        match most_recent_valid(DhtTarget::User, &key, items) {
            Err(DhtError::Malformed { key: k, reason }) => {
                assert_eq!(k, key.to_printable());
                assert_eq!(reason, BootstrapError::MalformedLine { line: 2 });
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            most_recent_valid(DhtTarget::User, &key, vec![]).unwrap(),
            None
        );
    }

    #[test]
    fn items_for_other_keys_or_salts_or_forged_are_ignored() {
        let s = secret(1);
        let key = s.public();
        let text = user_bootstrap(2).to_text();
        let signing = mainline::SigningKey::from_bytes(&s.to_bytes());
        let good = MutableItem::new(
            signing.clone(),
            text.as_bytes(),
            4,
            Some(USER_BOOTSTRAP_SALT),
        );
        assert_eq!(checked(DhtTarget::User, &key, &good).unwrap().seq, 4);
        // mainline signs the same bytes as mosaic-core.
        assert_eq!(
            good.signature(),
            &bep44_sign(&s, USER_BOOTSTRAP_SALT, 4, text.as_bytes())
        );
        assert!(checked(DhtTarget::Server, &key, &good).is_none());
        assert!(checked(DhtTarget::User, &secret(2).public(), &good).is_none());
        let forged = MutableItem::new_signed_unchecked(
            key.to_bytes(),
            *good.signature(),
            b"U\n7 something else",
            4,
            Some(USER_BOOTSTRAP_SALT),
        );
        assert!(checked(DhtTarget::User, &key, &forged).is_none());
        let replayed = MutableItem::new_signed_unchecked(
            key.to_bytes(),
            *good.signature(),
            text.as_bytes(),
            5,
            Some(USER_BOOTSTRAP_SALT),
        );
        assert!(checked(DhtTarget::User, &key, &replayed).is_none());
    }
}
