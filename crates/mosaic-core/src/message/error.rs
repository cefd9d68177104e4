//! Why bytes are not a protocol message, and the result code to answer with.

use crate::filter::FilterError;
use crate::keys::KeyError;
use crate::record::RecordError;
use crate::reference::ReferenceError;

use super::{MessageType, ResultCode};

/// Why bytes are not one protocol message, or a message cannot be encoded.
///
/// A server answers a client's malformed message with the code from
/// [`result_code`](Self::result_code); a client drops a malformed server
/// message (`messages.md`: there is no provision for a client to alert a
/// server of an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The first byte is not a message type of this protocol version. A peer
    /// answers with an Unrecognized message (0xF0) and carries on.
    #[error("unknown message type 0x{byte:02x}")]
    UnknownType {
        /// The type byte.
        byte: u8,
    },
    /// Fewer bytes than the message type needs (given, or declared by its
    /// length field). A stream reader waits for more bytes only when
    /// [`frame_len`](super::frame_len) says so; here the message is cut short.
    #[error("message of {len} bytes is shorter than the minimum of {min}")]
    TooShort {
        /// The length given or declared.
        len: usize,
        /// The least this message type allows.
        min: usize,
    },
    /// A message longer than [`MAX_MESSAGE_LEN`](super::MAX_MESSAGE_LEN)
    /// (D-12). Refuse it before buffering it; a sender must split the content
    /// (fewer references, a smaller BLOB).
    #[error("message of {len} bytes exceeds the maximum of 1,048,584")]
    TooLong {
        /// The declared or computed length.
        len: u64,
    },
    /// The length field disagrees with the number of bytes given (the bytes
    /// are cut short, or trailing bytes follow). Decode exactly one frame, as
    /// [`frame_len`](super::frame_len) delimits it.
    #[error("message declares {declared} bytes but {actual} were given")]
    LengthMismatch {
        /// The length the header declares (or the type's fixed length).
        declared: usize,
        /// The number of bytes given.
        actual: usize,
    },
    /// The length is not one this type allows: a fixed-size message of
    /// another size, or a body that is not a whole number of its elements
    /// (48-byte references, 4-byte application ids, 8-byte words).
    #[error("a {message_type} message cannot be {len} bytes long")]
    InvalidLength {
        /// The message type.
        message_type: MessageType,
        /// The declared length.
        len: usize,
    },
    /// A byte the layout says is zero is not.
    #[error("reserved byte at offset {offset} is not zero")]
    ReservedNotZero {
        /// The offset within the message.
        offset: usize,
    },
    /// A DHT Lookup or DHT Response names neither a user (1) nor a server (2)
    /// bootstrap (D-9).
    #[error("unknown DHT lookup target {byte}")]
    UnknownDhtTarget {
        /// The target byte.
        byte: u8,
    },
    /// A BLOB's data does not hash to the BLAKE3-256 hash it is sent with
    /// (D-18). A server answers a BLOB Submission with a BLOB Submission
    /// Result of `INVALID` for the claimed hash; a client discards the BLOB.
    #[error("BLOB data does not match its hash")]
    BlobHashMismatch {
        /// The hash the message carries.
        claimed: [u8; 32],
    },
    /// The content disagrees with the result code: a failed BLOB Result that
    /// carries data, or a failed DHT Response whose sequence number,
    /// signature or value is not empty (D-9).
    #[error("a {message_type} message with result {code} must carry no data")]
    ResultPayloadMismatch {
        /// The message type.
        message_type: MessageType,
        /// The result code it carries.
        code: ResultCode,
    },
    /// The record inside a Submission or Record message is invalid.
    #[error("invalid record: {0}")]
    Record(#[from] RecordError),
    /// The filter inside a Query or Subscribe message is invalid.
    #[error("invalid filter: {0}")]
    Filter(#[from] FilterError),
    /// A reference inside a Get message, or the id prefix of a Submission
    /// Result (which must start with a 0 bit, as every id does), is invalid.
    #[error("invalid reference: {0}")]
    Reference(#[from] ReferenceError),
    /// The public key of a DHT Lookup or DHT Response is not a valid key.
    #[error("invalid public key: {0}")]
    Key(#[from] KeyError),
}

impl MessageError {
    /// The result code a server answers with (in a Query Closed, Submission
    /// Result or Closing message, as the exchange calls for).
    ///
    /// Oversized messages and records are `TOO_LARGE`; everything else a
    /// peer got wrong is `INVALID`. For [`UnknownType`](Self::UnknownType)
    /// the answer is an Unrecognized message rather than a code; the code
    /// given is `INVALID` for a transport that must close instead.
    pub fn result_code(&self) -> ResultCode {
        match self {
            MessageError::TooLong { .. }
            | MessageError::Record(RecordError::TooLong { .. })
            | MessageError::Record(RecordError::DecompressedTooLarge) => ResultCode::TOO_LARGE,
            MessageError::UnknownType { .. }
            | MessageError::TooShort { .. }
            | MessageError::LengthMismatch { .. }
            | MessageError::InvalidLength { .. }
            | MessageError::ReservedNotZero { .. }
            | MessageError::UnknownDhtTarget { .. }
            | MessageError::BlobHashMismatch { .. }
            | MessageError::ResultPayloadMismatch { .. }
            | MessageError::Record(_)
            | MessageError::Filter(_)
            | MessageError::Reference(_)
            | MessageError::Key(_) => ResultCode::INVALID,
        }
    }
}
