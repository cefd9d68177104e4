//! The admin socket: a Unix domain socket in the server's data directory
//! through which its owner moderates and inspects the running server.
//!
//! [`Server::serve_admin`](crate::Server::serve_admin) binds it (mode 0600,
//! owner only, with no moment where it is wider: it is bound inside a
//! private directory and renamed into place), replaces a stale socket left
//! by a killed server, and refuses to start when another server answers on
//! it. Each connection's peer uid (`SO_PEERCRED`) must be the server's own.
//! [`AdminClient`] is the other end, used by `mosaic admin` and `mosaic
//! store`.
//!
//! The protocol is JSON lines, versioned ([`PROTOCOL_VERSION`]): each
//! request is one line, `{"version":1,"request":{"op":...}}`, answered by
//! one line `{"result":...}`. An export is answered by an `export` line,
//! then the records in the export format of `mosaic-store` (`length (u32
//! LE) | record` frames), then a frame of length zero, then one line: the
//! count, or the error that stopped it. Nothing of an export is held in
//! memory beyond a few 64 KiB chunks.

mod client;
mod protocol;
mod service;
mod socket;

pub use client::{AdminClient, AdminStats, BanList};
pub use protocol::{FailureCode, LiveStatus, PROTOCOL_VERSION};
pub(crate) use service::{enforce_bans, serve};
pub(crate) use socket::{AdminListener, bind};

use std::path::PathBuf;

/// The name of the admin socket in a server's data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";

/// Why the admin socket could not be served, reached, or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// Another server answers on the socket: a server is already running on
    /// this data directory. Stop it, or use another directory.
    #[error("another server already answers on {}; stop it or use another data directory", path.display())]
    InUse {
        /// The socket.
        path: PathBuf,
    },
    /// Something that is not a socket is in the socket's place. Move it
    /// away.
    #[error("{} exists and is not a socket; move it away", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The socket could not be created (a path over the ~100-byte limit of
    /// Unix socket addresses, a read-only directory, ...).
    #[error("cannot create the admin socket {}: {source}", path.display())]
    Bind {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No server answers on the socket (none runs on this data directory,
    /// or it runs without the socket). Work on the store offline, or start
    /// the server.
    #[error("no server answers on {}: {source}", path.display())]
    NotRunning {
        /// The socket.
        path: PathBuf,
        /// Why the connection failed.
        source: std::io::Error,
    },
    /// Reading or writing the socket failed; the server may have stopped.
    #[error("admin socket i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The other end sent something that is not this protocol (a server of
    /// another version?).
    #[error("the admin socket answered something unexpected: {what}")]
    Protocol {
        /// What was wrong.
        what: &'static str,
    },
    /// A line of the protocol did not parse as JSON of the expected shape.
    #[error("the admin socket answered malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The server refused the request; `message` says why and what to do.
    #[error("the server refused: {message}")]
    Refused {
        /// The kind of refusal.
        code: FailureCode,
        /// The server's explanation.
        message: String,
    },
}
