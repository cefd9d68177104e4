//! `mosaic-net`: Mosaic messages over real connections.
//!
//! Today one transport exists, WebSocket (`websockets.md`), plain (`ws://`,
//! for loopback and reverse proxies) or over TLS (`wss://`, rustls). The HELLO
//! and HELLO ACK travel in the upgrade's headers, driven by the sans-IO state
//! machines of [`mosaic_core::handshake`].
//!
//! The central types:
//! - [`Connection`], split into a [`Sender`] and a [`Receiver`]: whole
//!   messages in, whole messages out, one binary frame each, with pings and
//!   size limits handled here. A server and a client see the same interface,
//!   whatever the transport, so QUIC or TCP+TLS can be added without touching
//!   them.
//! - [`accept`] (server side): reads a request and returns an [`Incoming`]:
//!   a Mosaic [`Upgrade`] to accept or refuse, or a plain [`HttpRequest`].
//! - [`connect`] (client side): connects, checks the server's proof of its
//!   key when one is expected (D-3), and authenticates (D-4).
//!
//! ```no_run
//! use mosaic_core::{FilterBuilder, Message, QueryId};
//! use mosaic_net::{ConnectOptions, connect};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut conn = connect("ws://127.0.0.1:8080/", &ConnectOptions::default()).await?;
//! let filter = FilterBuilder::new().build()?;
//! conn.send(&Message::Query { query_id: QueryId(1), limit: 10, filter }).await?;
//! while let Some(received) = conn.recv().await? {
//!     println!("{:?}", received.message);
//! }
//! # Ok(())
//! # }
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod connection;
mod error;
mod proxy;
mod tls;
mod ws;

pub use connection::{
    Connection, ConnectionConfig, ConnectionInfo, DEFAULT_OUTBOUND_BUDGET, Io, Received, Receiver,
    Sender, Side,
};
pub use error::{NetError, PemProblem, UpgradeError};
pub use proxy::{IpRange, IpRangeError, ProxyError};
pub use tls::{ClientTls, ServerTls};
pub use tokio_tungstenite::tungstenite::Bytes;
pub use ws::client::{ConnectOptions, connect};
pub use ws::server::{AcceptConfig, HttpRequest, Incoming, Upgrade, accept};
