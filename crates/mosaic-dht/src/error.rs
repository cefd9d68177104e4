//! The crate's error type, [`DhtError`], and [`ConfigError`] for settings
//! refused by [`Dht::start`](crate::Dht::start).

use std::time::Duration;

use mosaic_core::{BootstrapError, DhtTarget, ResultCode};

impl DhtError {
    /// A copy of the error, for the kinds a resolution can end with
    /// (timeouts, no nodes, a malformed bootstrap); `None` for the others.
    pub(crate) fn duplicate(&self) -> Option<DhtError> {
        Some(match self {
            DhtError::Timeout => DhtError::Timeout,
            DhtError::NoNodes => DhtError::NoNodes,
            DhtError::Malformed { key, reason } => DhtError::Malformed {
                key: key.clone(),
                reason: reason.clone(),
            },
            DhtError::LookupFailed { code } => DhtError::LookupFailed { code: *code },
            _ => return None,
        })
    }
}

/// Why a DHT operation failed.
///
/// Keys are named in their printable form: `mopub0...` for a user
/// bootstrap, `mosrv0...` for a server bootstrap.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhtError {
    /// The bootstrap text is longer than 983 bytes, so no DHT node would
    /// store it. Nothing was sent. List fewer servers or URLs.
    #[error("a bootstrap is at most 983 bytes, this one is {len}; nothing was published")]
    TooLarge {
        /// The length in bytes.
        len: usize,
    },
    /// The bootstrap text is not a valid bootstrap of the kind being
    /// published. Nothing was sent. Fix the text.
    #[error("not a valid bootstrap, nothing was published: {0}")]
    Invalid(BootstrapError),
    /// Another writer published for the same key and salt since it was
    /// read (a compare-and-swap on the sequence number failed). Resolve
    /// the key again, decide which bootstrap should win, and publish again.
    #[error(
        "another writer published this bootstrap (read sequence {expected_seq:?}, \
         found {found_seq:?}); resolve it again before publishing"
    )]
    Conflict {
        /// The sequence number read before publishing (`None`: nothing was
        /// found).
        expected_seq: Option<i64>,
        /// The most recent sequence number found after the refusal, when a
        /// second read found one.
        found_seq: Option<i64>,
    },
    /// The DHT nodes answered, but none stored the item. Try again later,
    /// or with other bootstrap nodes.
    #[error("no DHT node stored the bootstrap")]
    NotStored,
    /// The most recent item signed by the key is not a bootstrap of the
    /// kind asked for (or longer than 983 bytes). The key's owner published
    /// it; nothing can be done but ask them to publish a valid one.
    #[error("the bootstrap of {key} is malformed: {reason}")]
    Malformed {
        /// The key, `mopub0...` (user) or `mosrv0...` (server).
        key: String,
        /// What is wrong with the text.
        reason: BootstrapError,
    },
    /// A relayed answer carries a signature that does not verify for the
    /// key, salt, sequence and text: the relay (or the network) altered it.
    /// Do not use the answer; ask another server or the DHT directly.
    #[error("the signature of the bootstrap of {key} does not verify: the answer was altered")]
    BadSignature {
        /// The key, `mopub0...` (user) or `mosrv0...` (server).
        key: String,
    },
    /// No DHT node answered before the timeout. Check the network, or the
    /// bootstrap nodes; a cached value, if any, may still be used.
    #[error("no DHT node answered in time")]
    Timeout,
    /// No DHT node is known: the bootstrap nodes could not be reached, so
    /// the routing table is empty. Check `bootstrap_nodes`.
    #[error("no DHT node is reachable; check the DHT bootstrap nodes")]
    NoNodes,
    /// The DHT nodes refused the item with a KRPC error (for instance 205,
    /// value too big, or 206, invalid signature). Nothing was stored.
    #[error("the DHT nodes refused the bootstrap (KRPC error {code})")]
    Refused {
        /// The most common KRPC error code.
        code: i32,
    },
    /// The key's sequence number is already `i64::MAX`, so no newer item
    /// can be published under it.
    #[error("the bootstrap of {key} cannot be updated: its sequence number is at its maximum")]
    SequenceExhausted {
        /// The key, `mopub0...` (user) or `mosrv0...` (server).
        key: String,
    },
    /// The message given to
    /// [`verify_dht_response`](crate::verify_dht_response) is not a DHT
    /// Response. The server answered something else; treat it as a
    /// protocol error.
    #[error("the message is not a DHT Response")]
    NotDhtResponse,
    /// A DHT Response is about another key than the one looked up. Do not
    /// use it.
    #[error("the DHT Response is about {found}, not {expected}")]
    WrongKey {
        /// The key looked up (`mopub0...`).
        expected: String,
        /// The key in the response (`mopub0...`).
        found: String,
    },
    /// A DHT Response is about the other kind of bootstrap than the one
    /// looked up. Do not use it.
    #[error("the DHT Response is for a {found:?} bootstrap, not a {expected:?} one")]
    WrongTarget {
        /// The kind looked up.
        expected: DhtTarget,
        /// The kind in the response.
        found: DhtTarget,
    },
    /// The server answered a DHT Lookup with a failure other than
    /// NOT_FOUND (for instance TEMPORARY_ERROR). Try again later or ask
    /// another server.
    #[error("the server could not look up the bootstrap ({code:?})")]
    LookupFailed {
        /// The result code of the response.
        code: ResultCode,
    },
    /// A cache file could not be decoded: it is damaged or not a cache
    /// file. Delete it; the cache starts empty.
    #[error("the DHT cache file is damaged")]
    CacheCorrupt,
    /// A cache file was written by a version of this crate with another
    /// format. Delete it; the cache starts empty.
    #[error("the DHT cache file has format version {found}, not {expected}")]
    CacheVersion {
        /// The version in the file.
        found: u32,
        /// The version this crate reads and writes.
        expected: u32,
    },
    /// A setting of [`DhtConfig`](crate::DhtConfig) makes no sense.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A republisher was started outside a Tokio runtime. Start it from
    /// async code, or enter a runtime first.
    #[error("the republisher needs a Tokio runtime")]
    NoRuntime,
    /// The DHT node could not start: its UDP socket could not be bound
    /// (the port is taken, or the address is not local).
    #[error("cannot start the DHT node: {0}")]
    Io(#[from] std::io::Error),
}

/// A [`DhtConfig`](crate::DhtConfig) setting refused when the node starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A bootstrap node is not `host:port`, or its host has no IPv4
    /// address (the Mainline DHT is IPv4 here). Fix or remove it.
    #[error("the DHT bootstrap node {node:?} is not an IPv4 host:port")]
    BadBootstrapNode {
        /// The entry as given.
        node: String,
    },
    /// The cache would recheck a value before it stops being fresh. Make
    /// `recheck` at least `fresh`.
    #[error("the cache recheck age ({recheck:?}) is shorter than its fresh age ({fresh:?})")]
    RecheckBeforeFresh {
        /// How long a cached value is fresh.
        fresh: Duration,
        /// When a cached value must be rechecked.
        recheck: Duration,
    },
    /// A timeout is zero: every query would fail at once. Give it a
    /// positive duration.
    #[error("the DHT {which} timeout is zero")]
    ZeroTimeout {
        /// `"request"` or `"query"`.
        which: &'static str,
    },
    /// The cache capacity is zero; use a small number instead to keep
    /// almost nothing.
    #[error("the DHT cache capacity is zero")]
    ZeroCapacity,
    /// A [`Testnet`](crate::Testnet) of zero nodes was asked for; it needs
    /// at least one.
    #[error("a DHT testnet needs at least one node")]
    EmptyTestnet,
}
