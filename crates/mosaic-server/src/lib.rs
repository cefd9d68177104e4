//! `mosaic-server`: a Mosaic server over WebSocket.
//!
//! It accepts connections through `mosaic-net`, keeps records in
//! `mosaic-store`, and answers every client message of spec 0.8.0: Get,
//! Query, Subscribe and Unsubscribe, Submission, BLOB Submission and BLOB Get,
//! DHT Lookup. Submissions from all connections are group-committed, and a
//! record is acknowledged ACCEPTED only once it is durable. Live
//! subscriptions receive each newly accepted record that they may read and
//! that matches their filter. Every resource a client can use is bounded by
//! [`Limits`].
//!
//! Access control (`docs/SECURITY.md`): clients authenticate with Hello
//! Auth (D-4), as their master key or through a subkey the server's held
//! key schedule lists as active; every record is revealed only to readers
//! its read access allows; the server plays the [`Roles`] its configuration
//! turns on for the users on its allow-list; banned keys and addresses are
//! refused. The allow-list and the bans live in the store, are read at
//! start, and change while the server runs through its admin socket: a ban
//! closes the connections it names at once.
//!
//! Operations while running: [`Server::serve_admin`] serves a Unix socket
//! (mode 0600) for [`AdminClient`] (bans, the allow-list, record removal,
//! statistics, export); [`Reloader::reload`] puts a new configuration (and
//! TLS certificate) in force without dropping a connection.
//!
//! The central types: [`ServerConfig`] (read from TOML by the binary, never
//! by this library), [`Server`] (bind, then run until shut down) and
//! [`ServerHandle`] (a server running in the background, as tests use it).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use mosaic_core::SecretKey;
//! use mosaic_server::{Server, ServerConfig};
//! use mosaic_store::{Store, StoreConfig};
//!
//! let store = Arc::new(Store::open("data", StoreConfig::default())?);
//! let handle = Server::start_for_tests(ServerConfig::default(), SecretKey::from_bytes(&[1; 32]), store).await?;
//! println!("{}", handle.url());
//! handle.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Observability: [`Metrics`] counts connections, messages, results,
//! commits, fan-out, rate limiting and queue depths; `GET /metrics` serves
//! them in the Prometheus text format (on the server's port, or only on
//! `metrics_listen` when it is set) and `GET /` the JSON [`Status`]. Behind
//! a reverse proxy listed in `trusted_proxies`, the client's address comes
//! from the PROXY protocol or `X-Forwarded-For`, so per-IP limits and IP
//! bans apply to the real client.
//!
//! Logging: `info` for start and stop, `debug` per connection (in a span
//! with the connection id and peer address), `warn` for handled peer
//! misbehaviour and store trouble. No secret key is ever logged.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod access;
mod admin;
mod committer;
mod config;
mod connections;
mod error;
mod http;
mod keyring;
mod metrics;
mod policy;
mod rate;
mod reload;
mod server;
mod session;
mod status;
mod submit;
mod subscriptions;
mod verifier;

pub use access::may_read;
pub use admin::{
    ADMIN_SOCKET, AdminClient, AdminError, AdminStats, BanList, FailureCode, LiveStatus,
    PROTOCOL_VERSION as ADMIN_PROTOCOL_VERSION,
};
pub use config::{ConfigError, DEFAULT_PORT, Limits, Roles, ServerConfig};
pub use error::ServerError;
pub use metrics::{
    CONTENT_TYPE as METRICS_CONTENT_TYPE, HttpEndpoint, LookupOutcome, Metrics, RateClass,
    RateScope, RefusalReason, SlowReader,
};
pub use reload::{KEPT_UNTIL_RESTART, ReloadError, ReloadReport, Reloader};
pub use server::{DhtSlot, Server, ServerHandle};
pub use status::Status;

/// The current time as a Mosaic timestamp (0 on a clock set before 1970),
/// for every decision the server dates: bans, received-at times, schedules.
pub(crate) fn now() -> mosaic_core::Timestamp {
    mosaic_core::Timestamp::from_system_time(std::time::SystemTime::now())
        .unwrap_or(mosaic_core::Timestamp::ZERO)
}
