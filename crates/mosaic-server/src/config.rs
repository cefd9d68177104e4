//! [`ServerConfig`]: everything an operator can set, with sane defaults.
//!
//! The binary reads it from TOML (`deny_unknown_fields`, every field
//! defaulted: see `config.example.toml` in `mosaic-cli`) and overrides fields
//! from command-line flags; this library only receives the value.

use std::net::SocketAddr;
use std::time::Duration;

use mosaic_core::MAX_MESSAGE_LEN;
use mosaic_net::IpRange;
use serde::{Deserialize, Serialize};

/// The port `mosaic serve` listens on by default.
pub const DEFAULT_PORT: u16 = 8135;

/// Server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on. Default `127.0.0.1:8135`: loopback
    /// only; use `0.0.0.0:8135` (or a reverse proxy) to serve others.
    pub listen: SocketAddr,
    /// The URL clients reach this server at (`mosaicwss://host:port/`), if it
    /// is public. Published in the server's bootstrap when the DHT is on.
    pub public_url: Option<String>,
    /// Whether to answer filters with no narrow element (D-6). Default
    /// false: such queries get Query Closed TOO_OPEN, since each one scans the
    /// whole store.
    pub allow_open_queries: bool,
    /// A separate address to serve `GET /metrics` on (plain HTTP, nothing
    /// else answered there), such as `127.0.0.1:9135`. Default none:
    /// `/metrics` is served on the main port, next to the status at `/`.
    /// When set, the main port no longer answers `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Reverse proxies (addresses or CIDR ranges, `"10.0.0.0/8"`) whose
    /// word on the client's address is believed: their PROXY protocol
    /// header (v1 or v2) and `X-Forwarded-For`. Per-IP limits and IP bans
    /// then apply to the client they name. Default none: a PROXY header
    /// closes the connection and `X-Forwarded-For` is ignored.
    #[serde(with = "ip_ranges")]
    pub trusted_proxies: Vec<IpRange>,
    /// Which server roles of `network.md` this server plays. Default: none,
    /// an open server that accepts every valid record from anyone.
    pub roles: Roles,
    /// Resource limits.
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
            public_url: None,
            allow_open_queries: false,
            metrics_listen: None,
            trusted_proxies: Vec::new(),
            roles: Roles::default(),
            limits: Limits::default(),
        }
    }
}

/// The server roles of `network.md`, for the users on the allow-list of
/// served users (kept in the store and managed by `mosaic admin users`,
/// through the admin socket of a running server: a change takes effect at
/// once).
///
/// With every role off (the default) the server is *open*: it accepts every
/// valid record from anyone and serves each by its read access alone. With
/// any role on, a record is accepted only when an enabled role takes it,
/// and served only as that role allows (see `docs/SECURITY.md`):
///
/// - outbox: records authored by a served user (signed by its master key
///   or by a subkey its key schedule lists as valid), served to anyone its
///   read access allows;
/// - inbox: records from anyone that tag (Notify Public Key, D-8) a served
///   user, served to anyone (`inbox_public`, the default), or only to the
///   tagged served users and the author after authentication;
/// - encryption: records from anyone that tag a served user, served to the
///   tagged served users only, after authentication. When inbox is on too,
///   a tagging record whose read access is "everybody" is an inbox record
///   and any other an encryption record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Roles {
    /// Act as an outbox of the served users. Default false.
    pub outbox: bool,
    /// Act as an inbox of the served users. Default false.
    pub inbox: bool,
    /// Act as an encryption server of the served users. Default false.
    pub encryption: bool,
    /// Serve inbox records to anyone, unauthenticated, as `network.md` says
    /// inbox servers SHOULD. Default true; false keeps them to the tagged
    /// served users and the author (a private inbox).
    pub inbox_public: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Roles {
            outbox: false,
            inbox: false,
            encryption: false,
            inbox_public: true,
        }
    }
}

impl Roles {
    /// Whether any role is on: the server is not open.
    pub fn any(&self) -> bool {
        self.outbox || self.inbox || self.encryption
    }
}

/// Resource limits. Every one has a default suited to a small public server
/// and generous to honest clients; `docs/SECURITY.md` lists them all.
///
/// Rates are token buckets: `..._per_second` refills, `..._burst` is how many
/// may be spent at once. Writes are Submissions and BLOB Submissions; reads
/// are Get, Query, Subscribe, BLOB Get and DHT Lookup. Each is counted per
/// connection, per IP address and per authenticated key, and checked before
/// any signature is verified; over any of them the answer is TOO_FAST.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Connections open at once, all clients together. Default 10,000;
    /// each idle connection costs a few tens of KiB.
    pub max_connections: usize,
    /// Connections open at once from one IP address. Default 64.
    pub max_connections_per_ip: usize,
    /// Open subscriptions per connection. Default 32.
    pub max_subscriptions_per_connection: usize,
    /// Largest message accepted, in bytes. Default and maximum: one whole
    /// record plus its 8-byte header (D-12).
    pub max_message_len: usize,
    /// Largest filter accepted in a Query or Subscribe, in bytes. Default
    /// 8192. Filters cost matching time on every new record.
    pub max_filter_len: usize,
    /// Most records one query returns; LIMIT 0 means this (D-5). Default 500.
    pub max_query_limit: u16,
    /// Records one Query or Subscribe may examine in the store, those the
    /// reader may not see included. When it is spent the query ends with
    /// Query Closed TOO_OPEN after what was found. Default 20,000.
    pub query_scan_budget: u64,
    /// Distinct references one Get may carry; more get Query Closed
    /// TOO_LARGE. Default 1,000.
    pub max_get_references: usize,
    /// Submissions per second, sustained, per connection. Default 1,000.
    pub submissions_per_second: u32,
    /// Submissions one connection may make at once. Default 2,000.
    pub submission_burst: u32,
    /// Submissions per second, sustained, per IP address. Default 2,000.
    pub ip_submissions_per_second: u32,
    /// Submissions at once per IP address. Default 4,000.
    pub ip_submission_burst: u32,
    /// Submissions per second, sustained, per authenticated key. Default
    /// 2,000.
    pub key_submissions_per_second: u32,
    /// Submissions at once per authenticated key. Default 4,000.
    pub key_submission_burst: u32,
    /// Reads per second, sustained, per connection. Default 200.
    pub reads_per_second: u32,
    /// Reads one connection may make at once. Default 1,000.
    pub read_burst: u32,
    /// Reads per second, sustained, per IP address. Default 400.
    pub ip_reads_per_second: u32,
    /// Reads at once per IP address. Default 2,000.
    pub ip_read_burst: u32,
    /// Reads per second, sustained, per authenticated key. Default 400.
    pub key_reads_per_second: u32,
    /// Reads at once per authenticated key. Default 2,000.
    pub key_read_burst: u32,
    /// Bytes of submitted records and BLOBs being verified or committed at
    /// once, all connections together. When it is spent, connections wait
    /// (their submissions are not read) until commits free it. Default
    /// 64 MiB.
    pub submission_bytes_in_flight: usize,
    /// DHT Lookups one connection may have running at once; more get DHT
    /// Response TOO_FAST. Default 4.
    pub dht_lookups_per_connection: usize,
    /// DHT Lookups running at once on the whole server; more get TOO_FAST.
    /// Default 64.
    pub dht_lookups_in_flight: usize,
    /// Seconds a connection may stay silent (pings included) before it is
    /// dropped. Default 120.
    pub idle_timeout_secs: u64,
    /// Seconds of quiet before the server pings a client. Default 30.
    pub ping_interval_secs: u64,
    /// Seconds a client has for TLS, its request and the Hello Auth.
    /// Default 10.
    pub handshake_timeout_secs: u64,
    /// Bytes of messages that may wait to be written to one client (D-21's
    /// outbound budget). While it is spent, answers and live records wait.
    /// Default 8 MiB.
    pub outbound_budget_bytes: usize,
    /// Bytes of live records one subscription may have waiting for its
    /// client (records are shared between subscribers, so this bounds
    /// delay more than memory). Past it the subscription is ended with Query
    /// Closed TEMPORARY_ERROR. Default 16 MiB.
    pub subscription_queue_bytes: usize,
    /// Seconds the oldest waiting live record of a subscription may wait
    /// for the client to read; then the subscription is ended with Query
    /// Closed TEMPORARY_ERROR and the client re-subscribes with `since`
    /// (D-21). Default 10.
    pub slow_reader_grace_secs: u64,
    /// Seconds writing one message to a client may take. A client that
    /// reads nothing for this long gets Closing and is disconnected.
    /// Default 30.
    pub write_timeout_secs: u64,
    /// Largest BLOB accepted, in bytes (D-18). Default 1,048,544, the most
    /// one message can carry.
    pub max_blob_len: usize,
    /// Most submissions committed in one durable transaction (group commit).
    /// Default 1000.
    pub max_commit_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_subscriptions_per_connection: 32,
            max_message_len: MAX_MESSAGE_LEN,
            max_filter_len: 8192,
            max_query_limit: 500,
            query_scan_budget: 20_000,
            max_get_references: 1_000,
            submissions_per_second: 1_000,
            submission_burst: 2_000,
            ip_submissions_per_second: 2_000,
            ip_submission_burst: 4_000,
            key_submissions_per_second: 2_000,
            key_submission_burst: 4_000,
            reads_per_second: 200,
            read_burst: 1_000,
            ip_reads_per_second: 400,
            ip_read_burst: 2_000,
            key_reads_per_second: 400,
            key_read_burst: 2_000,
            submission_bytes_in_flight: 64 * 1024 * 1024,
            dht_lookups_per_connection: 4,
            dht_lookups_in_flight: 64,
            idle_timeout_secs: 120,
            ping_interval_secs: 30,
            handshake_timeout_secs: 10,
            outbound_budget_bytes: 8 * 1024 * 1024,
            subscription_queue_bytes: 16 * 1024 * 1024,
            slow_reader_grace_secs: 10,
            write_timeout_secs: 30,
            max_blob_len: MAX_MESSAGE_LEN - 40,
            max_commit_batch: 1000,
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A limit is zero where it must be positive.
    #[error("limits.{field} must be at least 1")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// A limit is above what the protocol allows.
    #[error("limits.{field} is {value}, above the protocol's {max}")]
    AboveProtocol {
        /// The field.
        field: &'static str,
        /// The value set.
        value: usize,
        /// The protocol's maximum.
        max: usize,
    },
    /// A byte budget is smaller than the largest message, which could then
    /// never pass.
    #[error("limits.{field} is {value}, below limits.max_message_len ({min})")]
    BelowMessage {
        /// The field.
        field: &'static str,
        /// The value set.
        value: usize,
        /// The largest message.
        min: usize,
    },
    /// The idle timeout does not exceed the ping interval, so idle clients
    /// would be dropped before they are pinged.
    #[error("limits.idle_timeout_secs must be larger than limits.ping_interval_secs")]
    IdleBelowPing,
    /// The public URL is not a Mosaic URL.
    #[error("public_url {url:?} is not a Mosaic URL: {reason}")]
    PublicUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: mosaic_core::UrlError,
    },
}

impl ServerConfig {
    /// Checks the configuration as a whole.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for (field, value) in [
            ("max_connections", l.max_connections),
            ("max_connections_per_ip", l.max_connections_per_ip),
            (
                "max_subscriptions_per_connection",
                l.max_subscriptions_per_connection,
            ),
            ("max_message_len", l.max_message_len),
            ("max_filter_len", l.max_filter_len),
            ("max_query_limit", usize::from(l.max_query_limit)),
            ("query_scan_budget", l.query_scan_budget as usize),
            ("max_get_references", l.max_get_references),
            ("submissions_per_second", l.submissions_per_second as usize),
            ("submission_burst", l.submission_burst as usize),
            (
                "ip_submissions_per_second",
                l.ip_submissions_per_second as usize,
            ),
            ("ip_submission_burst", l.ip_submission_burst as usize),
            (
                "key_submissions_per_second",
                l.key_submissions_per_second as usize,
            ),
            ("key_submission_burst", l.key_submission_burst as usize),
            ("reads_per_second", l.reads_per_second as usize),
            ("read_burst", l.read_burst as usize),
            ("ip_reads_per_second", l.ip_reads_per_second as usize),
            ("ip_read_burst", l.ip_read_burst as usize),
            ("key_reads_per_second", l.key_reads_per_second as usize),
            ("key_read_burst", l.key_read_burst as usize),
            ("submission_bytes_in_flight", l.submission_bytes_in_flight),
            ("dht_lookups_per_connection", l.dht_lookups_per_connection),
            ("dht_lookups_in_flight", l.dht_lookups_in_flight),
            ("idle_timeout_secs", l.idle_timeout_secs as usize),
            ("ping_interval_secs", l.ping_interval_secs as usize),
            ("handshake_timeout_secs", l.handshake_timeout_secs as usize),
            ("outbound_budget_bytes", l.outbound_budget_bytes),
            ("subscription_queue_bytes", l.subscription_queue_bytes),
            ("slow_reader_grace_secs", l.slow_reader_grace_secs as usize),
            ("write_timeout_secs", l.write_timeout_secs as usize),
            ("max_commit_batch", l.max_commit_batch),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        if l.max_message_len > MAX_MESSAGE_LEN {
            return Err(ConfigError::AboveProtocol {
                field: "max_message_len",
                value: l.max_message_len,
                max: MAX_MESSAGE_LEN,
            });
        }
        if l.max_blob_len > MAX_MESSAGE_LEN - 40 {
            return Err(ConfigError::AboveProtocol {
                field: "max_blob_len",
                value: l.max_blob_len,
                max: MAX_MESSAGE_LEN - 40,
            });
        }
        if l.max_filter_len > mosaic_core::MAX_FILTER_LEN {
            return Err(ConfigError::AboveProtocol {
                field: "max_filter_len",
                value: l.max_filter_len,
                max: mosaic_core::MAX_FILTER_LEN,
            });
        }
        if l.submission_bytes_in_flight < l.max_message_len {
            return Err(ConfigError::BelowMessage {
                field: "submission_bytes_in_flight",
                value: l.submission_bytes_in_flight,
                min: l.max_message_len,
            });
        }
        if l.idle_timeout_secs <= l.ping_interval_secs {
            return Err(ConfigError::IdleBelowPing);
        }
        if let Some(url) = &self.public_url {
            mosaic_core::Url::parse(url).map_err(|reason| ConfigError::PublicUrl {
                url: url.clone(),
                reason,
            })?;
        }
        Ok(())
    }
}

impl Limits {
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub(crate) fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs)
    }

    pub(crate) fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }

    pub(crate) fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout_secs)
    }

    pub(crate) fn delivery(&self) -> crate::subscriptions::Delivery {
        crate::subscriptions::Delivery {
            queue_bytes: self.subscription_queue_bytes,
            grace: Duration::from_secs(self.slow_reader_grace_secs),
        }
    }
}

/// `trusted_proxies` in TOML: a list of strings.
mod ip_ranges {
    use mosaic_net::IpRange;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(ranges: &[IpRange], s: S) -> Result<S::Ok, S::Error> {
        let texts: Vec<String> = ranges.iter().map(ToString::to_string).collect();
        texts.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpRange>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| text.parse().map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip_through_toml() {
        let config = ServerConfig::default();
        config.validate().unwrap();
        let text = toml::to_string(&config).unwrap();
        let back: ServerConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, config);
        let empty: ServerConfig = toml::from_str("").unwrap();
        assert_eq!(empty, config);
        let roles: ServerConfig = toml::from_str("[roles]\ninbox = true").unwrap();
        assert!(roles.roles.inbox && !roles.roles.outbox && roles.roles.any());
        assert!(!config.roles.any());
        let proxies: ServerConfig = toml::from_str(
            "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nmetrics_listen = \"127.0.0.1:9135\"",
        )
        .unwrap();
        assert_eq!(proxies.trusted_proxies.len(), 2);
        assert!(proxies.trusted_proxies[0].contains("10.2.3.4".parse().unwrap()));
        assert_eq!(
            proxies.metrics_listen,
            Some("127.0.0.1:9135".parse().unwrap())
        );
        let back: ServerConfig = toml::from_str(&toml::to_string(&proxies).unwrap()).unwrap();
        assert_eq!(back, proxies);
        let typo = toml::from_str::<ServerConfig>("trusted_proxies = [\"10.0.0.1/8\"]")
            .unwrap_err()
            .to_string();
        assert!(typo.contains("10.0.0.0/8"), "{typo}");
    }

    #[test]
    fn typos_and_bad_values_are_refused() {
        assert!(toml::from_str::<ServerConfig>("listn = \"127.0.0.1:1\"").is_err());
        assert!(toml::from_str::<ServerConfig>("[limits]\nmax_conections = 3").is_err());
        assert!(toml::from_str::<ServerConfig>("[roles]\noutbx = true").is_err());
        let mut c = ServerConfig::default();
        c.limits.outbound_budget_bytes = 0;
        assert_eq!(
            c.validate(),
            Err(ConfigError::Zero {
                field: "outbound_budget_bytes"
            })
        );
        let mut c = ServerConfig::default();
        c.limits.max_message_len = MAX_MESSAGE_LEN + 1;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::AboveProtocol { .. })
        ));
        let mut c = ServerConfig::default();
        c.limits.idle_timeout_secs = 5;
        assert_eq!(c.validate(), Err(ConfigError::IdleBelowPing));
        let c = ServerConfig {
            public_url: Some("https://example.com/".into()),
            ..ServerConfig::default()
        };
        assert!(matches!(c.validate(), Err(ConfigError::PublicUrl { .. })));
    }
}
