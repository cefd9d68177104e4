//! Settings of a DHT node ([`DhtConfig`]) and of the resolution cache
//! ([`CachePolicy`]), with their defaults and the checks made when a node
//! starts.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::time::Duration;

use crate::error::ConfigError;

/// Settings of a [`Dht`](crate::Dht) node.
///
/// The default joins the public Mainline DHT through its usual routers.
/// [`DhtConfig::local`] joins a private DHT on loopback, such as a
/// [`Testnet`](crate::Testnet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtConfig {
    /// Nodes to join the DHT through, as `host:port` (IPv4). Empty (the
    /// default) means the public routers of the Mainline DHT
    /// (`router.bittorrent.com:6881` and others). A private DHT needs at
    /// least one of its own nodes here, or the node would join the public
    /// one.
    pub bootstrap_nodes: Vec<String>,
    /// Local address to bind the UDP socket to. Default `None`: every
    /// interface (`0.0.0.0`). Use `127.0.0.1` for a private DHT on loopback.
    pub bind_address: Option<Ipv4Addr>,
    /// Local UDP port. Default `None`: any free port.
    pub port: Option<u16>,
    /// Whether the node answers other nodes' queries and stores their items
    /// from the start. Default `false`: mainline switches to server mode by
    /// itself when the node turns out to be reachable and long running.
    pub server_mode: bool,
    /// How long one UDP request waits for its answer. Default 2 seconds.
    /// Shorter makes queries end sooner but misses slow nodes, which makes
    /// them less accurate.
    pub request_timeout: Duration,
    /// Upper bound on one whole publish or resolution (a DHT query walks
    /// several rounds of requests). Default 60 seconds. A query that has
    /// heard nothing by then fails with
    /// [`DhtError::Timeout`](crate::DhtError::Timeout).
    pub query_timeout: Duration,
    /// How a [`Resolver`](crate::Resolver) caches answers.
    pub cache: CachePolicy,
}

impl Default for DhtConfig {
    fn default() -> DhtConfig {
        DhtConfig {
            bootstrap_nodes: Vec::new(),
            bind_address: None,
            port: None,
            server_mode: false,
            request_timeout: Duration::from_secs(2),
            query_timeout: Duration::from_secs(60),
            cache: CachePolicy::default(),
        }
    }
}

impl DhtConfig {
    /// A client of a private DHT on loopback: bound to `127.0.0.1`, joining
    /// through `bootstrap_nodes`, with short timeouts (loopback nodes answer
    /// in microseconds or not at all).
    pub fn local(bootstrap_nodes: Vec<String>) -> DhtConfig {
        DhtConfig {
            bootstrap_nodes,
            bind_address: Some(Ipv4Addr::LOCALHOST),
            request_timeout: Duration::from_millis(500),
            query_timeout: Duration::from_secs(10),
            ..DhtConfig::default()
        }
    }

    /// Checks the settings and resolves the bootstrap nodes to IPv4
    /// socket addresses (a DNS lookup for host names). `None` means the
    /// public routers.
    pub(crate) fn check(&self) -> Result<Option<Vec<SocketAddrV4>>, ConfigError> {
        if self.request_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout { which: "request" });
        }
        if self.query_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout { which: "query" });
        }
        self.cache.check()?;
        if self.bootstrap_nodes.is_empty() {
            return Ok(None);
        }
        let mut addresses = Vec::new();
        for node in &self.bootstrap_nodes {
            let bad = || ConfigError::BadBootstrapNode { node: node.clone() };
            let resolved: Vec<SocketAddrV4> = node
                .to_socket_addrs()
                .map_err(|_| bad())?
                .filter_map(|a| match a {
                    SocketAddr::V4(v4) => Some(v4),
                    SocketAddr::V6(_) => None,
                })
                .collect();
            if resolved.is_empty() {
                return Err(bad());
            }
            for address in resolved {
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
        }
        Ok(Some(addresses))
    }
}

/// How long a [`Resolver`](crate::Resolver) trusts a cached bootstrap.
///
/// A cached value younger than `fresh` is served without asking the DHT.
/// Between `fresh` and `recheck` it is served at once and refreshed in the
/// background. Older than `recheck`, the DHT is asked first; if the DHT
/// gives no valid answer, the cached value is served marked stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachePolicy {
    /// Age under which a cached value is served without any DHT query.
    /// Default 30 minutes (the spec's cache time). Longer saves queries but
    /// delays seeing a changed bootstrap.
    pub fresh: Duration,
    /// Age from which a cached value is rechecked before it is served.
    /// Default 60 minutes. Must be at least `fresh`.
    pub recheck: Duration,
    /// Most bootstraps kept; the least recently fetched is dropped first.
    /// Default 10 000 (a few MiB at most). Misses (keys the DHT holds
    /// nothing for) are bounded by the same number, apart.
    pub capacity: usize,
    /// How long "the DHT holds nothing for this key" is remembered: a
    /// resolution within that time answers `None` without a query, so a
    /// flood of lookups of unknown keys reaches the DHT at most once per
    /// key and kind per `miss_ttl`. Default 60 seconds. Longer spares the
    /// DHT more and delays seeing a bootstrap published meanwhile (one
    /// published through the same resolver is seen at once); zero turns
    /// the miss cache off.
    pub miss_ttl: Duration,
}

impl Default for CachePolicy {
    fn default() -> CachePolicy {
        CachePolicy {
            fresh: Duration::from_secs(30 * 60),
            recheck: Duration::from_secs(60 * 60),
            capacity: 10_000,
            miss_ttl: Duration::from_secs(60),
        }
    }
}

impl CachePolicy {
    /// Checks that the settings make sense together.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.recheck < self.fresh {
            return Err(ConfigError::RecheckBeforeFresh {
                fresh: self.fresh,
                recheck: self.recheck,
            });
        }
        if self.capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_use_public_routers() {
        let config = DhtConfig::default();
        assert_eq!(config.check(), Ok(None));
        assert_eq!(config.cache.fresh, Duration::from_secs(1800));
        assert_eq!(config.cache.recheck, Duration::from_secs(3600));
        assert_eq!(config.cache.miss_ttl, Duration::from_secs(60));
    }

    #[test]
    fn local_bootstrap_nodes_resolve() {
        let config = DhtConfig::local(vec![
            "127.0.0.1:6881".into(),
            "127.0.0.1:6882".into(),
            "127.0.0.1:6881".into(),
        ]);
        assert_eq!(config.bind_address, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(
            config.check(),
            Ok(Some(vec![
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6881),
                SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6882)
            ]))
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        for node in ["127.0.0.1", "[::1]:6881", "not an address", ""] {
            assert_eq!(
                DhtConfig::local(vec![node.into()]).check(),
                Err(ConfigError::BadBootstrapNode { node: node.into() }),
                "{node}"
            );
        }
        let mut config = DhtConfig::local(vec!["127.0.0.1:1".into()]);
        config.request_timeout = Duration::ZERO;
        assert_eq!(
            config.check(),
            Err(ConfigError::ZeroTimeout { which: "request" })
        );
        let config = DhtConfig {
            query_timeout: Duration::ZERO,
            ..DhtConfig::default()
        };
        assert_eq!(
            config.check(),
            Err(ConfigError::ZeroTimeout { which: "query" })
        );
        let config = DhtConfig {
            cache: CachePolicy {
                recheck: Duration::from_secs(60),
                ..CachePolicy::default()
            },
            ..DhtConfig::default()
        };
        assert_eq!(
            config.check(),
            Err(ConfigError::RecheckBeforeFresh {
                fresh: Duration::from_secs(1800),
                recheck: Duration::from_secs(60)
            })
        );
        let config = DhtConfig {
            cache: CachePolicy {
                capacity: 0,
                ..CachePolicy::default()
            },
            ..DhtConfig::default()
        };
        assert_eq!(config.check(), Err(ConfigError::ZeroCapacity));
    }
}
