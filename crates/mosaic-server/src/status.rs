//! The JSON status answered to a plain `GET /`.

use serde::Serialize;

/// What `GET /` returns.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The server's key, `mosrv0...`.
    pub server_key: String,
    /// This software's version.
    pub version: &'static str,
    /// The Mosaic spec version implemented.
    pub protocol: &'static str,
    /// Seconds since the server started.
    pub uptime_s: u64,
    /// Records stored.
    pub records: u64,
    /// Connections open now.
    pub connections: usize,
    /// Live subscriptions now.
    pub subscriptions: usize,
    /// Whether the server accepts writes. False after a durable write
    /// failed: every submission is refused with PERSISTENT_ERROR until the
    /// server is restarted.
    pub writable: bool,
    /// Why writes are off, when they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_fault: Option<String>,
}
