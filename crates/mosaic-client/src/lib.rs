//! `mosaic-client`: a Mosaic client that follows bootstraps to the right
//! servers, publishes records there and reads them back.
//!
//! A user's bootstrap names their servers by key (outboxes, where they
//! publish; inboxes, where others reach them); a server's bootstrap gives
//! its addresses. The client learns both from a [`Directory`] (the DHT, or
//! a [`StaticDirectory`] set by hand), connects over WebSocket, requires
//! each server to prove its key (D-3), and authenticates as the configured
//! identity (D-4).
//!
//! The central types:
//! - [`Client`]: the pool of connections (one per server, shared by every
//!   request) and the operations: [`Client::publish`] (to the author's
//!   first three outboxes and the inboxes of the users it tags),
//!   [`Client::fetch`] (from the author's outboxes, merged, de-duplicated,
//!   newest first, every record checked), [`Client::subscribe`],
//!   [`Client::key_schedule`] and [`Client::profile`].
//! - [`ServerLink`]: one server, for requests to it alone, among them
//!   [`ServerLink::submit_many`] (thousands of records, pipelined, waiting
//!   out the server's rate limit, with progress), which migrations and
//!   restores use.
//! - [`Subscription`]: live records from several servers, each once, that
//!   survives lost connections (reconnecting with backoff and jitter, and
//!   re-subscribing with `since` moved to the newest record seen).
//! - [`Directory`], [`StaticDirectory`] and [`ServerAddress`]: where
//!   servers are.
//!
//! A server that sends a record that does not verify or does not match
//! the filter is dropped for that request and counted against it
//! ([`Client::misbehaviour`]). Records whose signing key is not valid for
//! their author (`record.md` step 5, which only clients check) are refused.
//!
//! ```no_run
//! use std::sync::Arc;
//! use mosaic_client::{Client, ClientConfig, ServerAddress, StaticDirectory};
//! use mosaic_core::{FilterBuilder, Kind, PublicKey, ServerUsage, UserBootstrap, UserBootstrapEntry};
//!
//! # async fn run(alice: PublicKey, server: PublicKey) -> Result<(), Box<dyn std::error::Error>> {
//! let directory = Arc::new(StaticDirectory::new());
//! directory.set_server_addresses(server, vec![ServerAddress::parse("ws://127.0.0.1:8135/")?]);
//! directory.set_user(alice, UserBootstrap::new(vec![UserBootstrapEntry { usage: ServerUsage::ALL, server }])?);
//! let client = Client::new(ClientConfig { directory, ..ClientConfig::default() })?;
//!
//! let filter = FilterBuilder::new().kinds([Kind::MICROBLOG_ROOT]).build()?;
//! let report = client.fetch(&alice, &filter, 20).await?;
//! for record in &report.records {
//!     println!("{}: {}", client.display_name(&record.author()).await, record.payload_text()?);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Logging: `debug` per connection and per request decision (in a span with
//! the server), `warn` for servers that misbehave or cannot prove their key.
//! No secret key is ever logged.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod bulk;
mod client;
mod config;
mod directory;
mod error;
mod link;
mod query;
mod report;
mod subscription;

pub use bulk::{BulkOptions, BulkReport};
pub use client::{
    Client, MIN_KEY_SCHEDULE_REFRESH, SERVERS_PER_USER, ServerLink, ServerStats, display_name,
    tagged_users,
};
pub use config::{Backoff, ClientConfig};
pub use directory::{DhtDirectory, Directory, DirectoryFuture, ServerAddress, StaticDirectory};
pub use error::{ClientError, ConnectAttempt, ConnectProblem, Misbehaviour, ServerId};
pub use report::{FetchReport, PublishOutcome, PublishReport, Rejected, ServerOutcome};
pub use subscription::{Subscription, SubscriptionEvent};
