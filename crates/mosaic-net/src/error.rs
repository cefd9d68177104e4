//! The crate's error type.

use mosaic_core::{MessageError, handshake::HandshakeError};

/// Any error from `mosaic-net`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A socket operation failed; the connection is gone. Reconnect.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The WebSocket layer failed (a protocol violation by the peer, or the
    /// connection closed under us).
    #[error("websocket error: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// TLS setup or negotiation failed.
    #[error("tls error: {0}")]
    Tls(#[from] rustls::Error),
    /// A certificate or key file could not be read; check the path and that
    /// it holds PEM.
    #[error("cannot read {what} from {path}: {reason}")]
    Pem {
        /// What was being read ("certificate", "private key").
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: PemProblem,
    },
    /// The HTTP upgrade request or response was malformed or refused.
    #[error("upgrade failed: {0}")]
    Upgrade(UpgradeError),
    /// A PROXY protocol header was refused: sent by a peer that is not a
    /// trusted proxy, or malformed.
    #[error("{0}")]
    Proxy(#[from] crate::proxy::ProxyError),
    /// The HELLO exchange failed.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The server refused the client's authentication (Hello Auth) with a
    /// Closing message: check the key, and that the server knows it.
    #[error("the server refused authentication: {code}")]
    AuthenticationRefused {
        /// The result code of the server's Closing message.
        code: mosaic_core::ResultCode,
    },
    /// The peer sent bytes that are not a valid message for this side.
    #[error("bad message from peer: {0}")]
    Message(#[from] MessageError),
    /// The peer sent a text frame; Mosaic uses binary frames only.
    #[error("the peer sent a text frame")]
    TextFrame,
    /// The peer sent a message that only the other side may send (a server
    /// message from a client, or the reverse).
    #[error("the peer sent a {name} message, which only the other side may send")]
    WrongDirection {
        /// The message's name.
        name: &'static str,
    },
    /// A frame exceeded the size limit (D-12).
    #[error("the peer sent a frame larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Nothing arrived within the idle timeout, pings included.
    #[error("the connection was idle for longer than {seconds} s")]
    IdleTimeout {
        /// The timeout.
        seconds: u64,
    },
    /// The outbound queue is full: the peer does not read fast enough.
    #[error("the outbound queue is full (the peer is not reading)")]
    QueueFull,
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
    /// The URL cannot be used to connect.
    #[error("cannot connect to {url}: {reason}")]
    BadTarget {
        /// The URL.
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// The operation took longer than allowed.
    #[error("timed out while {doing}")]
    Timeout {
        /// What was being done.
        doing: &'static str,
    },
}

/// What was wrong with a PEM file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PemProblem {
    /// The file could not be read.
    #[error("it cannot be read ({0})")]
    Unreadable(std::io::ErrorKind),
    /// The file holds no item of the wanted kind.
    #[error("it holds no PEM item of that kind")]
    Missing,
    /// The file is not valid PEM.
    #[error("it is not valid PEM")]
    Malformed,
}

/// Why an HTTP upgrade did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// The request head is not valid HTTP/1.1.
    #[error("malformed HTTP request")]
    MalformedRequest,
    /// The request head is larger than allowed.
    #[error("HTTP request head too large")]
    HeadTooLarge,
    /// The client closed before sending a whole request.
    #[error("the client closed before the request was complete")]
    Incomplete,
    /// A WebSocket upgrade without the `mosaic2025` subprotocol (D-2).
    #[error("the upgrade does not ask for the mosaic2025 subprotocol")]
    MissingSubprotocol,
    /// A WebSocket upgrade without the headers RFC 6455 requires.
    #[error("not a valid WebSocket upgrade: {0}")]
    NotWebSocket(&'static str),
    /// The server answered with an HTTP status instead of upgrading.
    #[error("the server answered HTTP {status}")]
    Refused {
        /// The HTTP status.
        status: u16,
    },
}

impl From<tokio_tungstenite::tungstenite::Error> for NetError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        use tokio_tungstenite::tungstenite::Error as E;
        use tokio_tungstenite::tungstenite::error::CapacityError;
        match e {
            E::Io(io) => NetError::Io(io),
            E::Capacity(CapacityError::MessageTooLong { max_size, .. }) => {
                NetError::TooLarge { limit: max_size }
            }
            E::ConnectionClosed | E::AlreadyClosed => NetError::Closed,
            other => NetError::WebSocket(Box::new(other)),
        }
    }
}
