//! The crate's error type, and the problems it carries.

use std::fmt;

use mosaic_core::{FilterError, Id, MessageError, PublicKey, ResultCode, Scheme};
use mosaic_net::NetError;

/// Which server something is about: a server key (the usual case, from
/// bootstraps) or, for a connection opened by address alone, that address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServerId {
    /// A server known by its key.
    Key(PublicKey),
    /// A server known only by the address it was reached at.
    Address(String),
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerId::Key(key) => f.write_str(&key.to_server_printable()),
            ServerId::Address(address) => f.write_str(address),
        }
    }
}

/// Any error from `mosaic-client`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The directory knows no user bootstrap for this user, so the client
    /// does not know their servers. Publish one, or add it to a
    /// [`StaticDirectory`](crate::StaticDirectory).
    #[error("no user bootstrap is known for {user}")]
    NoUserBootstrap {
        /// The user.
        user: PublicKey,
    },
    /// The directory knows no address for this server. Publish its server
    /// bootstrap, or add its addresses to a
    /// [`StaticDirectory`](crate::StaticDirectory).
    #[error("no address is known for server {}", server.to_server_printable())]
    NoServerAddress {
        /// The server.
        server: PublicKey,
    },
    /// The user bootstraps list no server of the usage needed (no outbox to
    /// read from, for example).
    #[error("the bootstraps list no server to use")]
    NoServers,
    /// Every address of the server was tried and none gave a connection;
    /// `attempts` says why for each. Retry later.
    #[error("cannot reach {server}: {} address(es) tried", attempts.len())]
    Unreachable {
        /// The server.
        server: ServerId,
        /// Each address tried, in order, with its problem.
        attempts: Vec<ConnectAttempt>,
    },
    /// An address is neither a Mosaic URL nor a `ws://`/`wss://` address.
    #[error("{address:?} is not a server address: {problem}")]
    BadAddress {
        /// The text given.
        address: String,
        /// Why it is not usable.
        problem: mosaic_core::UrlError,
    },
    /// The connection was lost before the server answered. The request may
    /// or may not have been carried out; retry it (submissions are
    /// idempotent: a repeat is answered DUPLICATE).
    #[error("the connection to {server} was lost")]
    Disconnected {
        /// The server.
        server: ServerId,
    },
    /// None of the servers asked answered (each one failed). Retry later.
    #[error("none of the {tried} servers asked answered")]
    NoServerAnswered {
        /// How many servers were asked.
        tried: usize,
    },
    /// The server closed the connection with a Closing message.
    #[error("{server} closed the connection: {code}")]
    ServerClosed {
        /// The server.
        server: ServerId,
        /// The Closing message's result code.
        code: ResultCode,
    },
    /// The server kept answering TOO_FAST (or TEMPORARY_ERROR) to a bulk
    /// submission, and nothing got through for `pauses` backoffs in a row.
    /// Try again later, or ask its operator for a higher limit; records
    /// already stored are answered DUPLICATE next time.
    #[error("{server} kept refusing submissions ({code}) through {pauses} pauses")]
    Throttled {
        /// The server.
        server: ServerId,
        /// Its last answer.
        code: ResultCode,
        /// The pauses waited in a row.
        pauses: u32,
    },
    /// The server did not answer in time (see
    /// [`ClientConfig::request_timeout`](crate::ClientConfig::request_timeout)).
    #[error("{server} did not answer in time")]
    Timeout {
        /// The server.
        server: ServerId,
    },
    /// The server broke the protocol or lied (a record that does not verify
    /// or does not match the filter); it was dropped for this request and
    /// counted against it.
    #[error("{server} misbehaved: {problem}")]
    Misbehaved {
        /// The server.
        server: ServerId,
        /// What it did.
        problem: Misbehaviour,
    },
    /// A query or subscription was closed by the server with a failure code
    /// (TOO_OPEN: narrow the filter; UNAUTHORIZED: authenticate; ...).
    #[error("{server} closed the query: {code}")]
    QueryRefused {
        /// The server.
        server: ServerId,
        /// The Query Closed result code.
        code: ResultCode,
    },
    /// Every query id of the connection is in use: too many queries and
    /// subscriptions at once on one server. Close some.
    #[error("too many open queries on {server}")]
    QueryIdsExhausted {
        /// The server.
        server: ServerId,
    },
    /// A filter could not be built (the author constraint or a `since`
    /// made it longer than a filter may be).
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A message could not be encoded (a record too large for one message).
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The directory (the DHT, or whatever backs it) failed. Retry later.
    #[error("the directory failed: {0}")]
    Directory(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A configuration value makes no sense; fix the field named.
    #[error("invalid client configuration: {field}")]
    BadConfig {
        /// The field.
        field: &'static str,
    },
}

/// One address tried while connecting, and what went wrong.
#[derive(Debug)]
pub struct ConnectAttempt {
    /// The address, as text.
    pub address: String,
    /// What went wrong.
    pub problem: ConnectProblem,
}

/// Why one address did not give a connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectProblem {
    /// The URL's transport is not implemented (only WebSocket is); the
    /// address was skipped.
    #[error("the {} transport is not supported", scheme.as_str())]
    UnsupportedTransport {
        /// The URL's scheme.
        scheme: Scheme,
    },
    /// The server there could not prove the expected key (D-3): it is not
    /// the server meant, and was refused.
    #[error("the server could not prove its key")]
    KeyNotProven,
    /// Connecting failed (refused, TLS, handshake, timeout, ...).
    #[error(transparent)]
    Net(NetError),
}

/// How a server broke the protocol or lied. Each one is counted against the
/// server (see [`Client::misbehaviour`](crate::Client::misbehaviour)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// It sent a record that does not decode or verify.
    #[error("it sent an invalid record: {error}")]
    InvalidRecord {
        /// Why the record is invalid.
        error: MessageError,
    },
    /// It sent a record that does not match the filter asked for.
    #[error("it sent record {} that does not match the filter", id.to_printable())]
    FilterMismatch {
        /// The record's id.
        id: Id,
    },
    /// It sent more records than the limit asked for.
    #[error("it sent more than the {limit} records asked for")]
    OverLimit {
        /// The limit.
        limit: u16,
    },
}
