//! The admin protocol's messages: one JSON object per line.
//!
//! Keys travel as their printable forms (`mopub0...`), record ids as
//! `moref0...`, times as nanoseconds since the Unix epoch, addresses as
//! text. Both ends parse them, so a typo is refused with a clear message.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The version of the admin protocol this build speaks. A request of
/// another version is refused with [`FailureCode::Version`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest request line accepted, in bytes.
pub(crate) const MAX_LINE: u64 = 4 * 1024 * 1024;

/// One request line.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) version: u32,
    pub(crate) request: Request,
}

/// What the client asks.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Request {
    /// Ban a key (a master key or a subkey); `until` in nanoseconds, or
    /// permanent when absent.
    BanKey { key: String, until: Option<u64> },
    /// Lift a key's ban.
    UnbanKey { key: String },
    /// Ban an address.
    BanIp { ip: IpAddr, until: Option<u64> },
    /// Lift an address's ban.
    UnbanIp { ip: IpAddr },
    /// List the bans.
    Bans,
    /// Remove records by id.
    Remove { ids: Vec<String> },
    /// Add served users.
    AddUsers { keys: Vec<String> },
    /// Remove served users.
    RemoveUsers { keys: Vec<String> },
    /// List the served users.
    Users,
    /// Store statistics and the live status.
    Stats,
    /// Every record, in the export format.
    Export,
}

/// One ban, as listed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireBan {
    /// The key (`mopub0...`) or address.
    pub(crate) target: String,
    /// The end in nanoseconds; absent when permanent.
    pub(crate) until: Option<u64>,
}

/// Counts of one kind.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireKind {
    pub(crate) kind: u64,
    pub(crate) records: u64,
    pub(crate) bytes: u64,
}

/// The store's statistics.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireStats {
    pub(crate) records: u64,
    pub(crate) record_bytes: u64,
    pub(crate) kinds: Vec<WireKind>,
    pub(crate) blobs: u64,
    pub(crate) blob_bytes: u64,
    pub(crate) file_bytes: u64,
}

/// What the running server is doing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStatus {
    /// The server's key, `mosrv0...`.
    pub server_key: String,
    /// The server software's version.
    pub version: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// Connections open now.
    pub connections: usize,
    /// Connections past their handshake (authenticated or not) now.
    pub sessions: usize,
    /// Live subscriptions now.
    pub subscriptions: usize,
}

/// The kinds of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureCode {
    /// The request names something malformed (a key, an id, a time in the
    /// past); fix it.
    Invalid,
    /// The request is not of this protocol; the client and the server are
    /// of different versions.
    Version,
    /// Unbanning something not banned, removing something not there.
    NotFound,
    /// The store failed; the server's log says more.
    Store,
    /// The server is stopping.
    ShuttingDown,
}

/// One response line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Response {
    /// A ban is in force; `closed` connections were closed by it.
    Banned { closed: usize },
    /// One boolean per item of the request: whether it changed anything.
    Changed { changed: Vec<bool> },
    /// The bans.
    Bans {
        keys: Vec<WireBan>,
        ips: Vec<WireBan>,
    },
    /// The served users.
    Users { keys: Vec<String> },
    /// Statistics.
    Stats { store: WireStats, live: LiveStatus },
    /// Export frames follow, then a zero-length frame, then
    /// [`Response::Exported`] or [`Response::Error`].
    Export,
    /// The export is complete.
    Exported { records: u64 },
    /// The request was refused.
    Error { code: FailureCode, message: String },
}
