//! Framing on streams (D-12, D-13): how long a message is, from its first
//! bytes, so that a reader refuses an oversized message before buffering it.

use crate::record::{HEADER_LEN, SIGNATURE_LEN};

use super::{MessageError, MessageType};

/// The largest message: 8 header bytes and one whole record of 1 MiB (D-12).
/// BLOB messages obey the same bound, so a BLOB carries at most
/// `MAX_MESSAGE_LEN - 40` = 1,048,544 bytes of data.
pub const MAX_MESSAGE_LEN: usize = 8 + 1_048_576;

/// The smallest message of any type.
pub const MIN_MESSAGE_LEN: usize = 8;

/// The smallest valid record: the header and a 64-byte signature.
const MIN_RECORD_LEN: usize = HEADER_LEN + SIGNATURE_LEN;

/// How the length of a message type is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// The u24 LE total length at `[1:4]`, between `min` and `max`, with a
    /// body after byte 8 made of whole `unit`-byte elements.
    Length24 {
        /// The least total length.
        min: usize,
        /// The greatest total length.
        max: usize,
        /// The size of the elements after the 8-byte header.
        unit: usize,
    },
    /// Always this many bytes; there is no length field.
    Fixed(usize),
    /// 40 bytes plus the u48 LE data length at `[2:8]`.
    Data48,
}

impl Framing {
    /// The least total length of a message framed this way.
    pub(super) const fn min_len(self) -> usize {
        match self {
            Framing::Length24 { min, .. } => min,
            Framing::Fixed(len) => len,
            Framing::Data48 => 40,
        }
    }
}

/// The one table of message framing (D-13).
pub(super) const fn framing(ty: MessageType) -> Framing {
    const fn fixed24(len: usize) -> Framing {
        Framing::Length24 {
            min: len,
            max: len,
            unit: 1,
        }
    }
    const fn open24(min: usize, unit: usize) -> Framing {
        Framing::Length24 {
            min,
            max: MAX_MESSAGE_LEN,
            unit,
        }
    }
    match ty {
        MessageType::HELLO | MessageType::HELLO_ACK => open24(8, 4),
        MessageType::HELLO_AUTH => fixed24(72),
        MessageType::GET => open24(8, 48),
        MessageType::QUERY | MessageType::SUBSCRIBE => open24(16, 8),
        MessageType::SUBMISSION | MessageType::RECORD => open24(8 + MIN_RECORD_LEN, 8),
        MessageType::DHT_LOOKUP | MessageType::SUBMISSION_RESULT => fixed24(40),
        MessageType::DHT_RESPONSE => open24(112, 1),
        MessageType::BLOB_SUBMISSION | MessageType::BLOB_RESULT => Framing::Data48,
        MessageType::BLOB_GET | MessageType::BLOB_SUBMISSION_RESULT => Framing::Fixed(40),
        MessageType::CLOSING => Framing::Fixed(8),
        // Unsubscribe, Locally Complete, Query Closed, Unrecognized.
        _ => fixed24(8),
    }
}

/// Given the first bytes received of a message (any number; at most 8 are
/// read), says how long the whole message is.
///
/// Returns `Ok(None)` when more bytes are needed to know (fewer than 4 for
/// types with a u24 length at `[1:4]`, fewer than 8 for BLOB Submission and
/// BLOB Result, none at all for an empty input), and `Ok(Some(total))`
/// otherwise. Refuses at once an unknown type, a length above
/// [`MAX_MESSAGE_LEN`], below the type's minimum, or not one the type allows,
/// so that a reader never buffers a message it will refuse for its size.
pub fn frame_len(header: &[u8]) -> Result<Option<usize>, MessageError> {
    let Some(&byte) = header.first() else {
        return Ok(None);
    };
    let ty = MessageType::from_u8(byte).ok_or(MessageError::UnknownType { byte })?;
    match framing(ty) {
        Framing::Fixed(len) => Ok(Some(len)),
        Framing::Length24 { min, max, unit } => {
            let [_, a, b, c, ..] = *header else {
                return Ok(None);
            };
            let len = u32::from_le_bytes([a, b, c, 0]) as usize;
            if len > MAX_MESSAGE_LEN {
                return Err(MessageError::TooLong { len: len as u64 });
            }
            if len < min {
                return Err(MessageError::TooShort { len, min });
            }
            if len > max || !(len - MIN_MESSAGE_LEN).is_multiple_of(unit) {
                return Err(MessageError::InvalidLength {
                    message_type: ty,
                    len,
                });
            }
            Ok(Some(len))
        }
        Framing::Data48 => {
            let [_, _, a, b, c, d, e, f, ..] = *header else {
                return Ok(None);
            };
            let data_len = u64::from_le_bytes([a, b, c, d, e, f, 0, 0]);
            // At most 2^48 - 1 + 40: no overflow.
            let len = data_len + 40;
            if len > MAX_MESSAGE_LEN as u64 {
                return Err(MessageError::TooLong { len });
            }
            Ok(Some(len as usize))
        }
    }
}
