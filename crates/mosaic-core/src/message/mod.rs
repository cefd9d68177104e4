//! Protocol messages (`messages.md`, spec 0.8.0), typed, encoded and decoded.
//!
//! [`Message`] owns its content; [`MessageRef`] borrows records, filters and
//! data from the bytes it was decoded from. Both decode exactly one whole
//! message and refuse anything else: an unknown type, a bad length, a
//! non-zero reserved byte, an invalid record, filter, reference or key, and
//! trailing bytes. Records inside Submission and Record messages are fully
//! validated ([`Record::from_bytes`]). Encoding refuses what decoding would
//! refuse, so every encoded message decodes back to itself.
//!
//! [`frame_len`] delimits messages on a stream from their first bytes.
//!
//! # Layouts
//!
//! Offsets in bytes; integers little-endian; `0` marks bytes that must be
//! zero. `len24` is the total length of the message as a u24 at `[1:4]`;
//! `len48` is the length of the BLOB data alone as a u48 at `[2:8]`.
//!
//! | Type | Message | Layout |
//! |------|---------|--------|
//! | 0x10 | Hello | `0x10 \| len24 \| 0 0 \| max version u16 \| app id u32 ...` |
//! | 0x11 | Hello Auth (D-4) | `0x11 \| len24 = 72 \| 0 0 0 0 \| signature (64)` |
//! | 0x01 | Get | `0x01 \| len24 \| query id u16 \| 0 0 \| reference (48) ...` |
//! | 0x02 | Query | `0x02 \| len24 \| query id u16 \| limit u16 \| filter` |
//! | 0x03 | Subscribe | `0x03 \| len24 \| query id u16 \| limit u16 \| filter` |
//! | 0x04 | Unsubscribe (D-13) | `0x04 \| len24 = 8 \| query id u16 \| 0 0` |
//! | 0x05 | Submission | `0x05 \| len24 \| 0 0 0 0 \| record` |
//! | 0x06 | DHT Lookup (D-9) | `0x06 \| len24 = 40 \| target u8 \| 0 \| query id u16 \| public key (32)` |
//! | 0x07 | BLOB Submission | `0x07 \| 0 \| len48 \| BLAKE3-256 hash (32) \| data` |
//! | 0x08 | BLOB Get | `0x08 \| 0 0 0 0 0 0 0 \| hash (32)` (40 bytes) |
//! | 0x90 | Hello Ack | `0x90 \| len24 \| result \| 0 \| version u16 \| app id u32 ...` |
//! | 0x80 | Record | `0x80 \| len24 \| query id u16 \| 0 0 \| record` |
//! | 0x81 | Locally Complete | `0x81 \| len24 = 8 \| query id u16 \| 0 0` |
//! | 0x82 | Query Closed | `0x82 \| len24 = 8 \| query id u16 \| result \| 0` |
//! | 0x83 | Submission Result | `0x83 \| len24 = 40 \| result \| 0 0 0 \| id prefix (32)` |
//! | 0x84 | DHT Response (D-9) | `0x84 \| len24 \| result \| target u8 \| query id u16 \| public key (32) \| seq i64 \| BEP 44 signature (64) \| value` |
//! | 0x85 | BLOB Submission Result | `0x85 \| result \| 0 0 0 0 0 0 \| hash (32)` (40 bytes) |
//! | 0x86 | BLOB Result | `0x86 \| result \| len48 \| hash (32) \| data` |
//! | 0xF0 | Unrecognized | `0xF0 \| len24 = 8 \| 0 0 0 0` |
//! | 0xFE | Closing | `0xFE \| result \| 0 0 0 0 0 0` (8 bytes) |
//!
//! Rules beyond the byte layout:
//! - A query id is two bytes the client makes up, read here as a u16 LE
//!   ([`QueryId`]); a limit of 0 means unlimited.
//! - Get carries zero or more references (ids and addresses, told apart by
//!   their first bit); an address's author key must be valid.
//! - A Submission Result carries the first 32 bytes of the record's id, which
//!   start with a 0 bit like every id ([`IdPrefix`]).
//! - BLOB data must hash to the hash sent with it (D-18), in a BLOB
//!   Submission and in a successful BLOB Result. A failed BLOB Result
//!   carries no data; its hash is the one that was asked for.
//! - A DHT Response with a failure code (for example `NOT_FOUND`) has a zero
//!   sequence number, a zero signature and no value (D-9). The value is the
//!   BEP 44 `v` (bootstrap text) exactly as signed; the client checks the
//!   signature itself before trusting it.
//! - Every message is at most [`MAX_MESSAGE_LEN`] bytes (D-12), BLOB
//!   messages included.
//!
//! Hello and Hello Ack are used only on transports that do not carry HELLO
//! in their headers; Hello Auth only on WebSocket (D-4).

mod codec;
mod error;
mod framing;
mod result_code;

use std::borrow::Cow;
use std::fmt;

pub use error::MessageError;
pub use framing::{MAX_MESSAGE_LEN, MIN_MESSAGE_LEN, frame_len};
pub use result_code::{ResultCategory, ResultCode};

use crate::filter::{Filter, OwnedFilter};
use crate::keys::PublicKey;
use crate::record::{OwnedRecord, Record};
use crate::reference::{Id, Reference, ReferenceError};

/// A message type byte, one of the types of spec 0.8.0.
///
/// Only known types are representable: [`from_u8`](Self::from_u8) returns
/// `None` for any other byte.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(u8);

impl MessageType {
    /// Client: Get (0x01).
    pub const GET: MessageType = MessageType(0x01);
    /// Client: Query (0x02).
    pub const QUERY: MessageType = MessageType(0x02);
    /// Client: Subscribe (0x03).
    pub const SUBSCRIBE: MessageType = MessageType(0x03);
    /// Client: Unsubscribe (0x04).
    pub const UNSUBSCRIBE: MessageType = MessageType(0x04);
    /// Client: Submission (0x05).
    pub const SUBMISSION: MessageType = MessageType(0x05);
    /// Client: DHT Lookup (0x06).
    pub const DHT_LOOKUP: MessageType = MessageType(0x06);
    /// Client: BLOB Submission (0x07).
    pub const BLOB_SUBMISSION: MessageType = MessageType(0x07);
    /// Client: BLOB Get (0x08).
    pub const BLOB_GET: MessageType = MessageType(0x08);
    /// Client: Hello (0x10).
    pub const HELLO: MessageType = MessageType(0x10);
    /// Client: Hello Auth (0x11).
    pub const HELLO_AUTH: MessageType = MessageType(0x11);
    /// Server: Record (0x80).
    pub const RECORD: MessageType = MessageType(0x80);
    /// Server: Locally Complete (0x81).
    pub const LOCALLY_COMPLETE: MessageType = MessageType(0x81);
    /// Server: Query Closed (0x82).
    pub const QUERY_CLOSED: MessageType = MessageType(0x82);
    /// Server: Submission Result (0x83).
    pub const SUBMISSION_RESULT: MessageType = MessageType(0x83);
    /// Server: DHT Response (0x84).
    pub const DHT_RESPONSE: MessageType = MessageType(0x84);
    /// Server: BLOB Submission Result (0x85).
    pub const BLOB_SUBMISSION_RESULT: MessageType = MessageType(0x85);
    /// Server: BLOB Result (0x86).
    pub const BLOB_RESULT: MessageType = MessageType(0x86);
    /// Server: Hello Ack (0x90).
    pub const HELLO_ACK: MessageType = MessageType(0x90);
    /// Either side: Unrecognized (0xF0).
    pub const UNRECOGNIZED: MessageType = MessageType(0xF0);
    /// Server: Closing (0xFE).
    pub const CLOSING: MessageType = MessageType(0xFE);

    /// Every message type of spec 0.8.0.
    pub const ALL: [MessageType; 20] = [
        MessageType::GET,
        MessageType::QUERY,
        MessageType::SUBSCRIBE,
        MessageType::UNSUBSCRIBE,
        MessageType::SUBMISSION,
        MessageType::DHT_LOOKUP,
        MessageType::BLOB_SUBMISSION,
        MessageType::BLOB_GET,
        MessageType::HELLO,
        MessageType::HELLO_AUTH,
        MessageType::RECORD,
        MessageType::LOCALLY_COMPLETE,
        MessageType::QUERY_CLOSED,
        MessageType::SUBMISSION_RESULT,
        MessageType::DHT_RESPONSE,
        MessageType::BLOB_SUBMISSION_RESULT,
        MessageType::BLOB_RESULT,
        MessageType::HELLO_ACK,
        MessageType::UNRECOGNIZED,
        MessageType::CLOSING,
    ];

    /// The type of a byte, if it is one of the known types.
    pub const fn from_u8(byte: u8) -> Option<MessageType> {
        match byte {
            0x01..=0x08 | 0x10 | 0x11 | 0x80..=0x86 | 0x90 | 0xF0 | 0xFE => Some(MessageType(byte)),
            _ => None,
        }
    }

    /// The byte.
    pub const fn as_u8(self) -> u8 {
        self.0
    }

    /// The spec's name (`"Hello Auth"`, `"BLOB Get"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            MessageType::GET => "Get",
            MessageType::QUERY => "Query",
            MessageType::SUBSCRIBE => "Subscribe",
            MessageType::UNSUBSCRIBE => "Unsubscribe",
            MessageType::SUBMISSION => "Submission",
            MessageType::DHT_LOOKUP => "DHT Lookup",
            MessageType::BLOB_SUBMISSION => "BLOB Submission",
            MessageType::BLOB_GET => "BLOB Get",
            MessageType::HELLO => "Hello",
            MessageType::HELLO_AUTH => "Hello Auth",
            MessageType::RECORD => "Record",
            MessageType::LOCALLY_COMPLETE => "Locally Complete",
            MessageType::QUERY_CLOSED => "Query Closed",
            MessageType::SUBMISSION_RESULT => "Submission Result",
            MessageType::DHT_RESPONSE => "DHT Response",
            MessageType::BLOB_SUBMISSION_RESULT => "BLOB Submission Result",
            MessageType::BLOB_RESULT => "BLOB Result",
            MessageType::HELLO_ACK => "Hello Ack",
            MessageType::UNRECOGNIZED => "Unrecognized",
            _ => "Closing",
        }
    }

    /// Whether a client sends this type (Unrecognized is sent by both sides).
    pub const fn is_from_client(self) -> bool {
        self.0 < 0x80 || self.0 == 0xF0
    }

    /// Whether a server sends this type (Unrecognized is sent by both sides).
    pub const fn is_from_server(self) -> bool {
        self.0 >= 0x80
    }

    /// Whether messages of this type carry a [`ResultCode`].
    pub const fn has_result_code(self) -> bool {
        matches!(self.0, 0x82..=0x86 | 0x90 | 0xFE)
    }

    /// The least number of bytes a message of this type takes.
    pub const fn min_len(self) -> usize {
        framing::framing(self).min_len()
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageType({:#04x} {})", self.0, self.name())
    }
}

/// A query id: two bytes the client makes up to match the server's answers
/// to its request, read as a little-endian u16.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct QueryId(pub u16);

impl QueryId {
    /// From the two bytes on the wire.
    pub const fn from_bytes(bytes: [u8; 2]) -> QueryId {
        QueryId(u16::from_le_bytes(bytes))
    }

    /// The two bytes on the wire.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_le_bytes()
    }
}

impl fmt::Display for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#06x}", self.0)
    }
}

/// The first 32 bytes of a record id, as a Submission Result carries them.
/// Like every id, it starts with a 0 bit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdPrefix([u8; 32]);

impl IdPrefix {
    /// The all-zero prefix, for answering a submission whose id cannot be
    /// read.
    pub const ZERO: IdPrefix = IdPrefix([0; 32]);

    /// The prefix of an id.
    pub fn from_id(id: &Id) -> IdPrefix {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&id.as_bytes()[..32]);
        IdPrefix(bytes)
    }

    /// Wraps 32 bytes, which must start with a 0 bit.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<IdPrefix, ReferenceError> {
        if bytes[0] & 0x80 != 0 {
            return Err(ReferenceError::NotAnId);
        }
        Ok(IdPrefix(*bytes))
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `id` starts with this prefix.
    pub fn is_prefix_of(&self, id: &Id) -> bool {
        id.as_bytes().starts_with(&self.0)
    }
}

impl From<&Id> for IdPrefix {
    fn from(id: &Id) -> IdPrefix {
        IdPrefix::from_id(id)
    }
}

impl fmt::Debug for IdPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdPrefix(")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// Which bootstrap a DHT Lookup asks for (D-9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DhtTarget {
    /// A user bootstrap (salt `mub25`): byte 1.
    User,
    /// A server bootstrap (salt `msb24`): byte 2.
    Server,
}

impl DhtTarget {
    /// The byte on the wire.
    pub const fn as_u8(self) -> u8 {
        match self {
            DhtTarget::User => 1,
            DhtTarget::Server => 2,
        }
    }

    /// The target a byte names.
    pub const fn from_u8(byte: u8) -> Result<DhtTarget, MessageError> {
        match byte {
            1 => Ok(DhtTarget::User),
            2 => Ok(DhtTarget::Server),
            _ => Err(MessageError::UnknownDhtTarget { byte }),
        }
    }
}

/// The BLAKE3-256 hash that names a BLOB (D-18).
pub fn blob_hash(data: &[u8]) -> [u8; 32] {
    blake3::hash(data).into()
}

/// A protocol message that owns its content.
///
/// See the [module documentation](self) for each layout. Build one and
/// [`encode`](Self::encode) it, or [`decode`](Self::decode) one from the bytes
/// of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// 0x10: the client's highest major version and wanted applications.
    Hello {
        /// The highest Mosaic major version the client supports.
        max_version: u16,
        /// The application ids the client wishes to use.
        applications: Vec<u32>,
    },
    /// 0x11: the client's answer to the server's authentication nonce (D-4).
    HelloAuth {
        /// The signature by the `Authenticate-As` key, context
        /// [`CLIENT_AUTH_CONTEXT`](crate::CLIENT_AUTH_CONTEXT).
        signature: [u8; 64],
    },
    /// 0x01: a request for records by id or address.
    Get {
        /// Matches the server's answers to this request.
        query_id: QueryId,
        /// The records asked for.
        references: Vec<Reference>,
    },
    /// 0x02: a query answered once, then closed.
    Query {
        /// Matches the server's answers to this request.
        query_id: QueryId,
        /// The most records wanted; 0 means unlimited.
        limit: u16,
        /// Which records.
        filter: OwnedFilter,
    },
    /// 0x03: a query kept open for new records.
    Subscribe {
        /// Matches the server's answers to this request.
        query_id: QueryId,
        /// The most records wanted; 0 means unlimited.
        limit: u16,
        /// Which records.
        filter: OwnedFilter,
    },
    /// 0x04: closes a subscription.
    Unsubscribe {
        /// The subscription to close.
        query_id: QueryId,
    },
    /// 0x05: a record submitted for storage.
    Submission {
        /// The record.
        record: OwnedRecord,
    },
    /// 0x06: asks the server to look up a bootstrap in the DHT (D-9).
    DhtLookup {
        /// Matches the server's answer.
        query_id: QueryId,
        /// User or server bootstrap.
        target: DhtTarget,
        /// The master key whose bootstrap is wanted.
        public_key: PublicKey,
    },
    /// 0x07: a BLOB submitted for storage.
    BlobSubmission {
        /// BLAKE3-256 of `data` (see [`blob_hash`]).
        hash: [u8; 32],
        /// The BLOB.
        data: Vec<u8>,
    },
    /// 0x08: asks for a BLOB by hash.
    BlobGet {
        /// BLAKE3-256 of the BLOB.
        hash: [u8; 32],
    },
    /// 0x90: the server's answer to Hello.
    HelloAck {
        /// Typically `SUCCESS`.
        code: ResultCode,
        /// The highest major version both sides support.
        version: u16,
        /// The requested applications the server supports.
        applications: Vec<u32>,
    },
    /// 0x80: a record answering a Get, Query or Subscribe.
    Record {
        /// The request it answers.
        query_id: QueryId,
        /// The record.
        record: OwnedRecord,
    },
    /// 0x81: a subscription has served all stored matches.
    LocallyComplete {
        /// The subscription.
        query_id: QueryId,
    },
    /// 0x82: a query is closed.
    QueryClosed {
        /// The query.
        query_id: QueryId,
        /// Why.
        code: ResultCode,
    },
    /// 0x83: the outcome of a Submission.
    SubmissionResult {
        /// The outcome (D-7).
        code: ResultCode,
        /// The first 32 bytes of the submitted record's id.
        id_prefix: IdPrefix,
    },
    /// 0x84: the answer to a DHT Lookup (D-9).
    DhtResponse {
        /// The lookup it answers.
        query_id: QueryId,
        /// User or server bootstrap.
        target: DhtTarget,
        /// The key looked up.
        public_key: PublicKey,
        /// `SUCCESS`, `NOT_FOUND`, or another failure.
        code: ResultCode,
        /// The BEP 44 sequence number (0 on failure).
        seq: i64,
        /// The BEP 44 signature by `public_key` (zero on failure).
        signature: [u8; 64],
        /// The BEP 44 value, the bootstrap text (empty on failure).
        value: Vec<u8>,
    },
    /// 0x85: the outcome of a BLOB Submission.
    BlobSubmissionResult {
        /// The outcome.
        code: ResultCode,
        /// The hash of the submitted BLOB.
        hash: [u8; 32],
    },
    /// 0x86: the answer to a BLOB Get.
    BlobResult {
        /// `SUCCESS`, `NOT_FOUND`, or another failure.
        code: ResultCode,
        /// The hash asked for.
        hash: [u8; 32],
        /// The BLOB on success; empty on failure.
        data: Vec<u8>,
    },
    /// 0xF0: the peer's last message was not recognized.
    Unrecognized,
    /// 0xFE: the server is closing the connection.
    Closing {
        /// Why.
        code: ResultCode,
    },
}

/// A protocol message borrowing its records, filter and data from the bytes
/// it was decoded from (or from a [`Message`], see
/// [`Message::as_message_ref`]).
///
/// The variants mirror [`Message`]'s; only the large fields are borrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageRef<'a> {
    /// See [`Message::Hello`].
    Hello {
        /// The highest Mosaic major version the client supports.
        max_version: u16,
        /// The application ids the client wishes to use.
        applications: Cow<'a, [u32]>,
    },
    /// See [`Message::HelloAuth`].
    HelloAuth {
        /// The signature by the `Authenticate-As` key.
        signature: [u8; 64],
    },
    /// See [`Message::Get`].
    Get {
        /// Matches the server's answers to this request.
        query_id: QueryId,
        /// The records asked for.
        references: Cow<'a, [Reference]>,
    },
    /// See [`Message::Query`].
    Query {
        /// Matches the server's answers to this request.
        query_id: QueryId,
        /// The most records wanted; 0 means unlimited.
        limit: u16,
        /// Which records.
        filter: &'a Filter,
    },
    /// See [`Message::Subscribe`].
    Subscribe {
        /// Matches the server's answers to this request.
        query_id: QueryId,
        /// The most records wanted; 0 means unlimited.
        limit: u16,
        /// Which records.
        filter: &'a Filter,
    },
    /// See [`Message::Unsubscribe`].
    Unsubscribe {
        /// The subscription to close.
        query_id: QueryId,
    },
    /// See [`Message::Submission`].
    Submission {
        /// The record.
        record: &'a Record,
    },
    /// See [`Message::DhtLookup`].
    DhtLookup {
        /// Matches the server's answer.
        query_id: QueryId,
        /// User or server bootstrap.
        target: DhtTarget,
        /// The master key whose bootstrap is wanted.
        public_key: PublicKey,
    },
    /// See [`Message::BlobSubmission`].
    BlobSubmission {
        /// BLAKE3-256 of `data`.
        hash: [u8; 32],
        /// The BLOB.
        data: &'a [u8],
    },
    /// See [`Message::BlobGet`].
    BlobGet {
        /// BLAKE3-256 of the BLOB.
        hash: [u8; 32],
    },
    /// See [`Message::HelloAck`].
    HelloAck {
        /// Typically `SUCCESS`.
        code: ResultCode,
        /// The highest major version both sides support.
        version: u16,
        /// The requested applications the server supports.
        applications: Cow<'a, [u32]>,
    },
    /// See [`Message::Record`].
    Record {
        /// The request it answers.
        query_id: QueryId,
        /// The record.
        record: &'a Record,
    },
    /// See [`Message::LocallyComplete`].
    LocallyComplete {
        /// The subscription.
        query_id: QueryId,
    },
    /// See [`Message::QueryClosed`].
    QueryClosed {
        /// The query.
        query_id: QueryId,
        /// Why.
        code: ResultCode,
    },
    /// See [`Message::SubmissionResult`].
    SubmissionResult {
        /// The outcome.
        code: ResultCode,
        /// The first 32 bytes of the submitted record's id.
        id_prefix: IdPrefix,
    },
    /// See [`Message::DhtResponse`].
    DhtResponse {
        /// The lookup it answers.
        query_id: QueryId,
        /// User or server bootstrap.
        target: DhtTarget,
        /// The key looked up.
        public_key: PublicKey,
        /// `SUCCESS`, `NOT_FOUND`, or another failure.
        code: ResultCode,
        /// The BEP 44 sequence number (0 on failure).
        seq: i64,
        /// The BEP 44 signature (zero on failure).
        signature: [u8; 64],
        /// The BEP 44 value, the bootstrap text (empty on failure).
        value: &'a [u8],
    },
    /// See [`Message::BlobSubmissionResult`].
    BlobSubmissionResult {
        /// The outcome.
        code: ResultCode,
        /// The hash of the submitted BLOB.
        hash: [u8; 32],
    },
    /// See [`Message::BlobResult`].
    BlobResult {
        /// `SUCCESS`, `NOT_FOUND`, or another failure.
        code: ResultCode,
        /// The hash asked for.
        hash: [u8; 32],
        /// The BLOB on success; empty on failure.
        data: &'a [u8],
    },
    /// See [`Message::Unrecognized`].
    Unrecognized,
    /// See [`Message::Closing`].
    Closing {
        /// Why.
        code: ResultCode,
    },
}

impl Message {
    /// Decodes exactly one whole message (see [`MessageRef::decode`]).
    pub fn decode(bytes: &[u8]) -> Result<Message, MessageError> {
        MessageRef::decode(bytes).map(MessageRef::into_owned)
    }

    /// Encodes the message into a new buffer (see [`MessageRef::encode_into`]).
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        self.as_message_ref().encode()
    }

    /// Appends the encoded message to `out` (see [`MessageRef::encode_into`]).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        self.as_message_ref().encode_into(out)
    }

    /// The length of the encoded message.
    pub fn encoded_len(&self) -> usize {
        self.as_message_ref().encoded_len()
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        self.as_message_ref().message_type()
    }

    /// Whether a client sends this message.
    pub fn is_from_client(&self) -> bool {
        self.message_type().is_from_client()
    }

    /// Whether a server sends this message.
    pub fn is_from_server(&self) -> bool {
        self.message_type().is_from_server()
    }

    /// A Submission Result for the record with this id.
    pub fn submission_result(code: ResultCode, id: &Id) -> Message {
        Message::SubmissionResult {
            code,
            id_prefix: IdPrefix::from_id(id),
        }
    }

    /// A BLOB Submission of `data`, its hash computed.
    pub fn blob_submission(data: Vec<u8>) -> Message {
        Message::BlobSubmission {
            hash: blob_hash(&data),
            data,
        }
    }

    /// A successful BLOB Result carrying `data`, its hash computed.
    pub fn blob_found(data: Vec<u8>) -> Message {
        Message::BlobResult {
            code: ResultCode::SUCCESS,
            hash: blob_hash(&data),
            data,
        }
    }

    /// A view borrowing this message's content.
    pub fn as_message_ref(&self) -> MessageRef<'_> {
        match self {
            Message::Hello {
                max_version,
                applications,
            } => MessageRef::Hello {
                max_version: *max_version,
                applications: Cow::Borrowed(applications),
            },
            Message::HelloAuth { signature } => MessageRef::HelloAuth {
                signature: *signature,
            },
            Message::Get {
                query_id,
                references,
            } => MessageRef::Get {
                query_id: *query_id,
                references: Cow::Borrowed(references),
            },
            Message::Query {
                query_id,
                limit,
                filter,
            } => MessageRef::Query {
                query_id: *query_id,
                limit: *limit,
                filter,
            },
            Message::Subscribe {
                query_id,
                limit,
                filter,
            } => MessageRef::Subscribe {
                query_id: *query_id,
                limit: *limit,
                filter,
            },
            Message::Unsubscribe { query_id } => MessageRef::Unsubscribe {
                query_id: *query_id,
            },
            Message::Submission { record } => MessageRef::Submission { record },
            Message::DhtLookup {
                query_id,
                target,
                public_key,
            } => MessageRef::DhtLookup {
                query_id: *query_id,
                target: *target,
                public_key: *public_key,
            },
            Message::BlobSubmission { hash, data } => {
                MessageRef::BlobSubmission { hash: *hash, data }
            }
            Message::BlobGet { hash } => MessageRef::BlobGet { hash: *hash },
            Message::HelloAck {
                code,
                version,
                applications,
            } => MessageRef::HelloAck {
                code: *code,
                version: *version,
                applications: Cow::Borrowed(applications),
            },
            Message::Record { query_id, record } => MessageRef::Record {
                query_id: *query_id,
                record,
            },
            Message::LocallyComplete { query_id } => MessageRef::LocallyComplete {
                query_id: *query_id,
            },
            Message::QueryClosed { query_id, code } => MessageRef::QueryClosed {
                query_id: *query_id,
                code: *code,
            },
            Message::SubmissionResult { code, id_prefix } => MessageRef::SubmissionResult {
                code: *code,
                id_prefix: *id_prefix,
            },
            Message::DhtResponse {
                query_id,
                target,
                public_key,
                code,
                seq,
                signature,
                value,
            } => MessageRef::DhtResponse {
                query_id: *query_id,
                target: *target,
                public_key: *public_key,
                code: *code,
                seq: *seq,
                signature: *signature,
                value,
            },
            Message::BlobSubmissionResult { code, hash } => MessageRef::BlobSubmissionResult {
                code: *code,
                hash: *hash,
            },
            Message::BlobResult { code, hash, data } => MessageRef::BlobResult {
                code: *code,
                hash: *hash,
                data,
            },
            Message::Unrecognized => MessageRef::Unrecognized,
            Message::Closing { code } => MessageRef::Closing { code: *code },
        }
    }
}

impl<'a> MessageRef<'a> {
    /// Copies the borrowed content into a [`Message`].
    pub fn into_owned(self) -> Message {
        match self {
            MessageRef::Hello {
                max_version,
                applications,
            } => Message::Hello {
                max_version,
                applications: applications.into_owned(),
            },
            MessageRef::HelloAuth { signature } => Message::HelloAuth { signature },
            MessageRef::Get {
                query_id,
                references,
            } => Message::Get {
                query_id,
                references: references.into_owned(),
            },
            MessageRef::Query {
                query_id,
                limit,
                filter,
            } => Message::Query {
                query_id,
                limit,
                filter: filter.to_owned(),
            },
            MessageRef::Subscribe {
                query_id,
                limit,
                filter,
            } => Message::Subscribe {
                query_id,
                limit,
                filter: filter.to_owned(),
            },
            MessageRef::Unsubscribe { query_id } => Message::Unsubscribe { query_id },
            MessageRef::Submission { record } => Message::Submission {
                record: record.to_owned(),
            },
            MessageRef::DhtLookup {
                query_id,
                target,
                public_key,
            } => Message::DhtLookup {
                query_id,
                target,
                public_key,
            },
            MessageRef::BlobSubmission { hash, data } => Message::BlobSubmission {
                hash,
                data: data.to_vec(),
            },
            MessageRef::BlobGet { hash } => Message::BlobGet { hash },
            MessageRef::HelloAck {
                code,
                version,
                applications,
            } => Message::HelloAck {
                code,
                version,
                applications: applications.into_owned(),
            },
            MessageRef::Record { query_id, record } => Message::Record {
                query_id,
                record: record.to_owned(),
            },
            MessageRef::LocallyComplete { query_id } => Message::LocallyComplete { query_id },
            MessageRef::QueryClosed { query_id, code } => Message::QueryClosed { query_id, code },
            MessageRef::SubmissionResult { code, id_prefix } => {
                Message::SubmissionResult { code, id_prefix }
            }
            MessageRef::DhtResponse {
                query_id,
                target,
                public_key,
                code,
                seq,
                signature,
                value,
            } => Message::DhtResponse {
                query_id,
                target,
                public_key,
                code,
                seq,
                signature,
                value: value.to_vec(),
            },
            MessageRef::BlobSubmissionResult { code, hash } => {
                Message::BlobSubmissionResult { code, hash }
            }
            MessageRef::BlobResult { code, hash, data } => Message::BlobResult {
                code,
                hash,
                data: data.to_vec(),
            },
            MessageRef::Unrecognized => Message::Unrecognized,
            MessageRef::Closing { code } => Message::Closing { code },
        }
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            MessageRef::Hello { .. } => MessageType::HELLO,
            MessageRef::HelloAuth { .. } => MessageType::HELLO_AUTH,
            MessageRef::Get { .. } => MessageType::GET,
            MessageRef::Query { .. } => MessageType::QUERY,
            MessageRef::Subscribe { .. } => MessageType::SUBSCRIBE,
            MessageRef::Unsubscribe { .. } => MessageType::UNSUBSCRIBE,
            MessageRef::Submission { .. } => MessageType::SUBMISSION,
            MessageRef::DhtLookup { .. } => MessageType::DHT_LOOKUP,
            MessageRef::BlobSubmission { .. } => MessageType::BLOB_SUBMISSION,
            MessageRef::BlobGet { .. } => MessageType::BLOB_GET,
            MessageRef::HelloAck { .. } => MessageType::HELLO_ACK,
            MessageRef::Record { .. } => MessageType::RECORD,
            MessageRef::LocallyComplete { .. } => MessageType::LOCALLY_COMPLETE,
            MessageRef::QueryClosed { .. } => MessageType::QUERY_CLOSED,
            MessageRef::SubmissionResult { .. } => MessageType::SUBMISSION_RESULT,
            MessageRef::DhtResponse { .. } => MessageType::DHT_RESPONSE,
            MessageRef::BlobSubmissionResult { .. } => MessageType::BLOB_SUBMISSION_RESULT,
            MessageRef::BlobResult { .. } => MessageType::BLOB_RESULT,
            MessageRef::Unrecognized => MessageType::UNRECOGNIZED,
            MessageRef::Closing { .. } => MessageType::CLOSING,
        }
    }

    /// Whether a client sends this message.
    pub fn is_from_client(&self) -> bool {
        self.message_type().is_from_client()
    }

    /// Whether a server sends this message.
    pub fn is_from_server(&self) -> bool {
        self.message_type().is_from_server()
    }
}

#[cfg(test)]
mod tests;
