//! Encoding and decoding of each message layout (see the table in the
//! module documentation).

use std::borrow::Cow;

use crate::filter::Filter;
use crate::keys::PublicKey;
use crate::record::Record;
use crate::reference::Reference;
use crate::view::{array, le_u16};

use super::framing::{MAX_MESSAGE_LEN, MIN_MESSAGE_LEN, frame_len};
use super::{
    DhtTarget, IdPrefix, MessageError, MessageRef, MessageType, QueryId, ResultCode, blob_hash,
};

/// Bytes of a DHT Response before its value.
const DHT_RESPONSE_HEAD: usize = 112;
/// Bytes of a BLOB message before its data.
const BLOB_HEAD: usize = 40;

impl<'a> MessageRef<'a> {
    /// Decodes exactly one whole message, borrowing from `bytes`.
    ///
    /// Refuses an unknown type, a length that disagrees with the bytes given
    /// (too few, or trailing bytes), a non-zero reserved byte, an invalid
    /// record (fully validated, signature included), filter, reference or
    /// key, BLOB data that does not match its hash, and a failed result that
    /// carries data. Never panics.
    pub fn decode(bytes: &'a [u8]) -> Result<MessageRef<'a>, MessageError> {
        let Some(&byte) = bytes.first() else {
            return Err(MessageError::TooShort {
                len: 0,
                min: MIN_MESSAGE_LEN,
            });
        };
        let ty = MessageType::from_u8(byte).ok_or(MessageError::UnknownType { byte })?;
        let Some(total) = frame_len(bytes)? else {
            return Err(MessageError::TooShort {
                len: bytes.len(),
                min: ty.min_len(),
            });
        };
        if total != bytes.len() {
            return Err(MessageError::LengthMismatch {
                declared: total,
                actual: bytes.len(),
            });
        }
        // From here `bytes.len()` is at least the type's minimum length, so
        // every fixed offset read below is in bounds.
        let message = match ty {
            MessageType::HELLO => {
                zeroed(bytes, 4, 6)?;
                MessageRef::Hello {
                    max_version: le_u16(bytes, 6),
                    applications: Cow::Owned(app_ids(&bytes[8..])),
                }
            }
            MessageType::HELLO_AUTH => {
                zeroed(bytes, 4, 8)?;
                MessageRef::HelloAuth {
                    signature: array(bytes, 8),
                }
            }
            MessageType::GET => {
                zeroed(bytes, 6, 8)?;
                let references = bytes[8..]
                    .chunks_exact(48)
                    .map(Reference::from_slice)
                    .collect::<Result<Vec<_>, _>>()?;
                MessageRef::Get {
                    query_id: query_id(bytes),
                    references: Cow::Owned(references),
                }
            }
            MessageType::QUERY => MessageRef::Query {
                query_id: query_id(bytes),
                limit: le_u16(bytes, 6),
                filter: Filter::from_bytes(&bytes[8..])?,
            },
            MessageType::SUBSCRIBE => MessageRef::Subscribe {
                query_id: query_id(bytes),
                limit: le_u16(bytes, 6),
                filter: Filter::from_bytes(&bytes[8..])?,
            },
            MessageType::UNSUBSCRIBE => {
                zeroed(bytes, 6, 8)?;
                MessageRef::Unsubscribe {
                    query_id: query_id(bytes),
                }
            }
            MessageType::SUBMISSION => {
                zeroed(bytes, 4, 8)?;
                MessageRef::Submission {
                    record: Record::from_bytes(&bytes[8..])?,
                }
            }
            MessageType::DHT_LOOKUP => {
                let target = DhtTarget::from_u8(bytes[4])?;
                zeroed(bytes, 5, 6)?;
                MessageRef::DhtLookup {
                    query_id: QueryId::from_bytes(array(bytes, 6)),
                    target,
                    public_key: PublicKey::from_bytes(&array(bytes, 8))?,
                }
            }
            MessageType::BLOB_SUBMISSION => {
                zeroed(bytes, 1, 2)?;
                MessageRef::BlobSubmission {
                    hash: array(bytes, 8),
                    data: &bytes[BLOB_HEAD..],
                }
            }
            MessageType::BLOB_GET => {
                zeroed(bytes, 1, 8)?;
                MessageRef::BlobGet {
                    hash: array(bytes, 8),
                }
            }
            MessageType::HELLO_ACK => {
                zeroed(bytes, 5, 6)?;
                MessageRef::HelloAck {
                    code: ResultCode::from_u8(bytes[4]),
                    version: le_u16(bytes, 6),
                    applications: Cow::Owned(app_ids(&bytes[8..])),
                }
            }
            MessageType::RECORD => {
                zeroed(bytes, 6, 8)?;
                MessageRef::Record {
                    query_id: query_id(bytes),
                    record: Record::from_bytes(&bytes[8..])?,
                }
            }
            MessageType::LOCALLY_COMPLETE => {
                zeroed(bytes, 6, 8)?;
                MessageRef::LocallyComplete {
                    query_id: query_id(bytes),
                }
            }
            MessageType::QUERY_CLOSED => {
                zeroed(bytes, 7, 8)?;
                MessageRef::QueryClosed {
                    query_id: query_id(bytes),
                    code: ResultCode::from_u8(bytes[6]),
                }
            }
            MessageType::SUBMISSION_RESULT => {
                zeroed(bytes, 5, 8)?;
                MessageRef::SubmissionResult {
                    code: ResultCode::from_u8(bytes[4]),
                    id_prefix: IdPrefix::from_bytes(&array(bytes, 8))?,
                }
            }
            MessageType::DHT_RESPONSE => MessageRef::DhtResponse {
                code: ResultCode::from_u8(bytes[4]),
                target: DhtTarget::from_u8(bytes[5])?,
                query_id: QueryId::from_bytes(array(bytes, 6)),
                public_key: PublicKey::from_bytes(&array(bytes, 8))?,
                seq: i64::from_le_bytes(array(bytes, 40)),
                signature: array(bytes, 48),
                value: &bytes[DHT_RESPONSE_HEAD..],
            },
            MessageType::BLOB_SUBMISSION_RESULT => {
                zeroed(bytes, 2, 8)?;
                MessageRef::BlobSubmissionResult {
                    code: ResultCode::from_u8(bytes[1]),
                    hash: array(bytes, 8),
                }
            }
            MessageType::BLOB_RESULT => MessageRef::BlobResult {
                code: ResultCode::from_u8(bytes[1]),
                hash: array(bytes, 8),
                data: &bytes[BLOB_HEAD..],
            },
            MessageType::UNRECOGNIZED => {
                zeroed(bytes, 4, 8)?;
                MessageRef::Unrecognized
            }
            _ => {
                zeroed(bytes, 2, 8)?;
                MessageRef::Closing {
                    code: ResultCode::from_u8(bytes[1]),
                }
            }
        };
        message.check_content()?;
        Ok(message)
    }

    /// The length of the encoded message.
    pub fn encoded_len(&self) -> usize {
        match self {
            MessageRef::Hello { applications, .. } | MessageRef::HelloAck { applications, .. } => {
                applications.len().saturating_mul(4).saturating_add(8)
            }
            MessageRef::HelloAuth { .. } => 72,
            MessageRef::Get { references, .. } => {
                references.len().saturating_mul(48).saturating_add(8)
            }
            MessageRef::Query { filter, .. } | MessageRef::Subscribe { filter, .. } => {
                8 + filter.as_bytes().len()
            }
            MessageRef::Submission { record } | MessageRef::Record { record, .. } => {
                8 + record.len()
            }
            MessageRef::DhtLookup { .. }
            | MessageRef::BlobGet { .. }
            | MessageRef::SubmissionResult { .. }
            | MessageRef::BlobSubmissionResult { .. } => 40,
            MessageRef::BlobSubmission { data, .. } | MessageRef::BlobResult { data, .. } => {
                BLOB_HEAD.saturating_add(data.len())
            }
            MessageRef::DhtResponse { value, .. } => DHT_RESPONSE_HEAD.saturating_add(value.len()),
            MessageRef::Unsubscribe { .. }
            | MessageRef::LocallyComplete { .. }
            | MessageRef::QueryClosed { .. }
            | MessageRef::Unrecognized
            | MessageRef::Closing { .. } => 8,
        }
    }

    /// Encodes the message into a new buffer (see
    /// [`encode_into`](Self::encode_into)).
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Appends the encoded message to `out`.
    ///
    /// Refuses what [`decode`](Self::decode) would refuse and the types
    /// cannot rule out: a message longer than
    /// [`MAX_MESSAGE_LEN`], BLOB data that does not
    /// match its hash, and a failed result that carries data. On error `out`
    /// is unchanged.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        let len = self.encoded_len();
        if len > MAX_MESSAGE_LEN {
            return Err(MessageError::TooLong { len: len as u64 });
        }
        self.check_content()?;
        out.reserve(len);
        let ty = self.message_type().as_u8();
        match self {
            MessageRef::Hello {
                max_version,
                applications,
            } => {
                head24(out, ty, len, [0, 0], max_version.to_le_bytes());
                for id in applications.iter() {
                    out.extend_from_slice(&id.to_le_bytes());
                }
            }
            MessageRef::HelloAuth { signature } => {
                head24(out, ty, len, [0, 0], [0, 0]);
                out.extend_from_slice(signature);
            }
            MessageRef::Get {
                query_id,
                references,
            } => {
                head24(out, ty, len, query_id.to_bytes(), [0, 0]);
                for reference in references.iter() {
                    out.extend_from_slice(reference.as_bytes());
                }
            }
            MessageRef::Query {
                query_id,
                limit,
                filter,
            }
            | MessageRef::Subscribe {
                query_id,
                limit,
                filter,
            } => {
                head24(out, ty, len, query_id.to_bytes(), limit.to_le_bytes());
                out.extend_from_slice(filter.as_bytes());
            }
            MessageRef::Unsubscribe { query_id } | MessageRef::LocallyComplete { query_id } => {
                head24(out, ty, len, query_id.to_bytes(), [0, 0]);
            }
            MessageRef::Submission { record } => {
                head24(out, ty, len, [0, 0], [0, 0]);
                out.extend_from_slice(record.as_bytes());
            }
            MessageRef::DhtLookup {
                query_id,
                target,
                public_key,
            } => {
                head24(out, ty, len, [target.as_u8(), 0], query_id.to_bytes());
                out.extend_from_slice(public_key.as_bytes());
            }
            MessageRef::BlobSubmission { hash, data } => {
                head48(out, ty, 0, data.len());
                out.extend_from_slice(hash);
                out.extend_from_slice(data);
            }
            MessageRef::BlobGet { hash } => {
                out.extend_from_slice(&[ty, 0, 0, 0, 0, 0, 0, 0]);
                out.extend_from_slice(hash);
            }
            MessageRef::HelloAck {
                code,
                version,
                applications,
            } => {
                head24(out, ty, len, [code.as_u8(), 0], version.to_le_bytes());
                for id in applications.iter() {
                    out.extend_from_slice(&id.to_le_bytes());
                }
            }
            MessageRef::Record { query_id, record } => {
                head24(out, ty, len, query_id.to_bytes(), [0, 0]);
                out.extend_from_slice(record.as_bytes());
            }
            MessageRef::QueryClosed { query_id, code } => {
                head24(out, ty, len, query_id.to_bytes(), [code.as_u8(), 0]);
            }
            MessageRef::SubmissionResult { code, id_prefix } => {
                head24(out, ty, len, [code.as_u8(), 0], [0, 0]);
                out.extend_from_slice(id_prefix.as_bytes());
            }
            MessageRef::DhtResponse {
                query_id,
                target,
                public_key,
                code,
                seq,
                signature,
                value,
            } => {
                head24(
                    out,
                    ty,
                    len,
                    [code.as_u8(), target.as_u8()],
                    query_id.to_bytes(),
                );
                out.extend_from_slice(public_key.as_bytes());
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(signature);
                out.extend_from_slice(value);
            }
            MessageRef::BlobSubmissionResult { code, hash } => {
                out.extend_from_slice(&[ty, code.as_u8(), 0, 0, 0, 0, 0, 0]);
                out.extend_from_slice(hash);
            }
            MessageRef::BlobResult { code, hash, data } => {
                head48(out, ty, code.as_u8(), data.len());
                out.extend_from_slice(hash);
                out.extend_from_slice(data);
            }
            MessageRef::Unrecognized => head24(out, ty, len, [0, 0], [0, 0]),
            MessageRef::Closing { code } => {
                out.extend_from_slice(&[ty, code.as_u8(), 0, 0, 0, 0, 0, 0]);
            }
        }
        Ok(())
    }

    /// The rules on content that the field types do not enforce, shared by
    /// decoding and encoding: BLOB hashes (D-18), and failed results that
    /// carry nothing (D-9, `messages.md` BLOB Result).
    fn check_content(&self) -> Result<(), MessageError> {
        match self {
            MessageRef::BlobSubmission { hash, data } => check_blob(hash, data),
            MessageRef::BlobResult { code, hash, data } => {
                if code.is_success() {
                    check_blob(hash, data)
                } else if data.is_empty() {
                    Ok(())
                } else {
                    Err(MessageError::ResultPayloadMismatch {
                        message_type: MessageType::BLOB_RESULT,
                        code: *code,
                    })
                }
            }
            MessageRef::DhtResponse {
                code,
                seq,
                signature,
                value,
                ..
            } => {
                let empty = *seq == 0 && signature.iter().all(|&b| b == 0) && value.is_empty();
                if code.is_success() || empty {
                    Ok(())
                } else {
                    Err(MessageError::ResultPayloadMismatch {
                        message_type: MessageType::DHT_RESPONSE,
                        code: *code,
                    })
                }
            }
            _ => Ok(()),
        }
    }
}

fn check_blob(hash: &[u8; 32], data: &[u8]) -> Result<(), MessageError> {
    if blob_hash(data) == *hash {
        Ok(())
    } else {
        Err(MessageError::BlobHashMismatch { claimed: *hash })
    }
}

/// Refuses a non-zero byte in `bytes[from..to]`; the caller has checked the
/// bounds.
fn zeroed(bytes: &[u8], from: usize, to: usize) -> Result<(), MessageError> {
    match bytes[from..to].iter().position(|&b| b != 0) {
        Some(i) => Err(MessageError::ReservedNotZero { offset: from + i }),
        None => Ok(()),
    }
}

/// The query id at `[4:6]`.
fn query_id(bytes: &[u8]) -> QueryId {
    QueryId::from_bytes(array(bytes, 4))
}

/// Application ids: u32 LE each; framing has checked the length is a
/// multiple of 4.
fn app_ids(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Writes `type | len u24 | a (2) | b (2)`; `len` is at most
/// [`MAX_MESSAGE_LEN`], below 2^24.
fn head24(out: &mut Vec<u8>, ty: u8, len: usize, a: [u8; 2], b: [u8; 2]) {
    let len = (len as u32).to_le_bytes();
    out.extend_from_slice(&[ty, len[0], len[1], len[2], a[0], a[1], b[0], b[1]]);
}

/// Writes `type | byte | data length u48`; the length is at most
/// [`MAX_MESSAGE_LEN`], below 2^48.
fn head48(out: &mut Vec<u8>, ty: u8, byte: u8, data_len: usize) {
    let len = (data_len as u64).to_le_bytes();
    out.extend_from_slice(&[ty, byte, len[0], len[1], len[2], len[3], len[4], len[5]]);
}
