//! `mosaic-dht`: Mosaic bootstraps in the BitTorrent Mainline DHT.
//!
//! A key's bootstrap says which servers it uses (a user bootstrap, salt
//! `mub25`) or where it can be reached (a server bootstrap, salt `msb24`).
//! It is stored as a BEP 44 mutable item signed by the master key, through
//! the `mainline` crate's async API.
//!
//! The central types:
//! - [`Dht`]: a DHT node that publishes bootstraps (read first, next
//!   sequence number, compare-and-swap) and resolves them (most recent
//!   valid item, signature and text checked).
//! - [`Resolver`]: a [`Dht`] with a [`Cache`] in front of resolution (fresh
//!   for 30 minutes, rechecked after an hour, stale values served when the
//!   DHT does not answer; misses remembered for a minute; one DHT query
//!   shared by concurrent resolutions of a key), which also answers DHT
//!   Lookups for a server.
//! - [`Republisher`]: keeps signed bootstraps alive, refreshing them
//!   hourly.
//! - [`verify_dht_response`]: a client's check of a bootstrap relayed by a
//!   server (SPEC-NOTES D-9), trusting no server.
//!
//! ```
//! use mosaic_core::{SecretKey, ServerBootstrap, Url};
//! use mosaic_dht::{Dht, Resolver, Testnet};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = SecretKey::from_bytes(&[7; 32]);
//! let bootstrap = ServerBootstrap::new(vec![Url::parse("mosaicwss://example.com")?])?;
//!
//! tokio::runtime::Runtime::new()?.block_on(async {
//!     // A private DHT on loopback; `DhtConfig::default()` joins the public one.
//!     let testnet = Testnet::start(5).await?;
//!     let dht = Dht::start(testnet.client_config())?;
//!     let report = dht.publish_server(&server, &bootstrap).await?;
//!     assert_eq!(report.seq(), 1);
//!
//!     let resolver = Resolver::new(dht);
//!     let found = resolver.resolve_server(&server.public()).await?;
//!     assert_eq!(found.map(|r| r.value), Some(bootstrap));
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Logging: `tracing` events at `info` for publications, refreshes and the
//! node's start, `warn` for items skipped or served stale, `debug` for
//! each query's outcome. No event carries a secret key.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod cache;
mod config;
mod error;
mod node;
mod relay;
mod republish;
mod resolver;
mod signed;
mod testnet;

pub use cache::{CACHE_FORMAT_VERSION, Cache, CacheEntry, Freshness};
pub use config::{CachePolicy, DhtConfig};
pub use error::{ConfigError, DhtError};
pub use node::{Dht, PublishReport};
pub use relay::{dht_response, lookup_failure_code, verify_dht_response};
pub use republish::{RepublishConfig, RepublishStatus, Republisher, RepublisherHandle};
pub use resolver::{Clock, Resolver, SystemClock};
pub use signed::{Bootstrap, Resolved, SignedBootstrap, check_text, key_name, salt};
pub use testnet::Testnet;
