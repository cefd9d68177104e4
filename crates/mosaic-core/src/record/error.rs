//! Why a record was refused, and at which validation step.

use std::fmt;

use crate::crypto::SignatureError;
use crate::keys::KeyError;
use crate::printable::PrintableError;
use crate::tag::TagError;

/// The validation steps of `record.md`, numbered as the spec numbers them.
///
/// Checks that the spec states as field rules rather than numbered steps
/// (the nonce's first bit, timestamps below 2^63, well-formed tags, `LenS`
/// matching the signature scheme) are [`ValidationStep::Layout`]; checks of
/// the content that every Mosaic application shares (printable kinds carry
/// UTF-8, compressed payloads decompress within the size limit) are
/// [`ValidationStep::Content`], the spec's step 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValidationStep {
    /// Step 1: the length is between 152 and 1,048,576 bytes.
    Length,
    /// Step 2: the length equals 152 + LenTPad + LenPPad + LenSPad.
    SectionLengths,
    /// Step 3: the signing public key passes key validation.
    SigningKey,
    /// Step 4: the author public key passes key validation.
    AuthorKey,
    /// Step 5 (clients only): the signing key is the author's master key or
    /// an active subkey. Checked against a key schedule, not by
    /// [`Record::from_bytes`](crate::Record::from_bytes).
    SignerAuthorized,
    /// Steps 6 and 7: the id's hash is the record's hash.
    Hash,
    /// Step 8: the id's timestamp equals the signed timestamp.
    IdTimestamp,
    /// Step 9: the signature verifies.
    Signature,
    /// Step 11: reserved flags are zero and the signature scheme is known.
    Flags,
    /// Field rules outside the numbered steps.
    Layout,
    /// Step 12: content rules shared by all applications.
    Content,
}

impl ValidationStep {
    /// The step's number in `record.md`, where it has one.
    pub fn number(self) -> Option<u8> {
        Some(match self {
            ValidationStep::Length => 1,
            ValidationStep::SectionLengths => 2,
            ValidationStep::SigningKey => 3,
            ValidationStep::AuthorKey => 4,
            ValidationStep::SignerAuthorized => 5,
            ValidationStep::Hash => 7,
            ValidationStep::IdTimestamp => 8,
            ValidationStep::Signature => 9,
            ValidationStep::Flags => 11,
            ValidationStep::Content => 12,
            ValidationStep::Layout => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            ValidationStep::Length => "length",
            ValidationStep::SectionLengths => "section lengths",
            ValidationStep::SigningKey => "signing key",
            ValidationStep::AuthorKey => "author key",
            ValidationStep::SignerAuthorized => "signer authorized",
            ValidationStep::Hash => "hash",
            ValidationStep::IdTimestamp => "id timestamp",
            ValidationStep::Signature => "signature",
            ValidationStep::Flags => "flags",
            ValidationStep::Layout => "layout",
            ValidationStep::Content => "content",
        }
    }
}

impl fmt::Display for ValidationStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number() {
            Some(n) => write!(f, "step {n} ({})", self.name()),
            None => write!(f, "{}", self.name()),
        }
    }
}

/// Why bytes are not a valid record, or why a record could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Shorter than the 152-byte header.
    #[error("record is {len} bytes, shorter than the 152-byte header")]
    TooShort {
        /// The length given.
        len: usize,
    },
    /// Longer than 1 MiB.
    #[error("record is {len} bytes, longer than the 1,048,576-byte maximum")]
    TooLong {
        /// The length (given, or that the record would have).
        len: usize,
    },
    /// The length does not match the section lengths in the header.
    #[error("record is {len} bytes but its header describes {expected}")]
    LengthMismatch {
        /// The length given.
        len: usize,
        /// The length the header describes.
        expected: usize,
    },
    /// `LenS` is not the signature length of the signature scheme.
    #[error("signature length is {len_s}, the scheme requires 64")]
    SignatureLength {
        /// The `LenS` field.
        len_s: u16,
    },
    /// Reserved flag bits are set (byte 0 other than ZSTD, FROM_AUTHOR and
    /// the scheme; bytes 1 and 2).
    #[error("reserved flag bits are set: {flags:#018x}")]
    ReservedFlags {
        /// The flags field (little-endian u64).
        flags: u64,
    },
    /// The signature scheme is not ed25519 (the others are reserved).
    #[error("signature scheme {scheme} is not supported")]
    UnsupportedSignatureScheme {
        /// The two scheme bits.
        scheme: u8,
    },
    /// The signing key is not a valid key.
    #[error("invalid signing key: {0}")]
    SigningKey(KeyError),
    /// The author key is not a valid key.
    #[error("invalid author key: {0}")]
    AuthorKey(KeyError),
    /// The id's hash does not match the record's content: it was altered.
    #[error("the id's hash does not match the record's content")]
    HashMismatch,
    /// The id's timestamp differs from the signed timestamp.
    #[error("the id's timestamp differs from the record's timestamp")]
    IdTimestampMismatch,
    /// The signature does not verify.
    #[error("bad signature: {0}")]
    Signature(SignatureError),
    /// The address nonce does not start with a 1 bit.
    #[error("the address nonce must start with a 1 bit")]
    NonceFirstBit,
    /// The timestamp is 2^63 or more (D-19).
    #[error("the timestamp has its top bit set")]
    TimestampOutOfRange,
    /// The tag section is malformed.
    #[error("malformed tags: {0}")]
    Tags(TagError),
    /// The kind is printable but the payload is not UTF-8.
    #[error("the kind is printable but the payload is not UTF-8")]
    PayloadNotUtf8,
    /// The ZSTD flag is set but the payload does not decompress.
    #[error("the payload does not decompress as zstd")]
    Decompression,
    /// The payload decompresses to more than the 1 MiB limit.
    #[error("the payload decompresses to more than 1,048,576 bytes")]
    DecompressedTooLarge,
    /// zstd could not compress the payload.
    #[error("the payload could not be compressed")]
    Compression,
    /// The builder was not given a nonce or an address.
    #[error("no nonce or address was set on the record builder")]
    MissingNonce,
    /// The `morecord0` form is malformed.
    #[error("invalid printable record: {0}")]
    Printable(#[from] PrintableError),
}

impl RecordError {
    /// The validation step this error belongs to.
    pub fn step(&self) -> ValidationStep {
        match self {
            RecordError::TooShort { .. } | RecordError::TooLong { .. } => ValidationStep::Length,
            RecordError::LengthMismatch { .. } => ValidationStep::SectionLengths,
            RecordError::SigningKey(_) => ValidationStep::SigningKey,
            RecordError::AuthorKey(_) => ValidationStep::AuthorKey,
            RecordError::HashMismatch => ValidationStep::Hash,
            RecordError::IdTimestampMismatch => ValidationStep::IdTimestamp,
            RecordError::Signature(_) => ValidationStep::Signature,
            RecordError::ReservedFlags { .. } | RecordError::UnsupportedSignatureScheme { .. } => {
                ValidationStep::Flags
            }
            RecordError::PayloadNotUtf8
            | RecordError::Decompression
            | RecordError::DecompressedTooLarge => ValidationStep::Content,
            RecordError::SignatureLength { .. }
            | RecordError::NonceFirstBit
            | RecordError::TimestampOutOfRange
            | RecordError::Tags(_)
            | RecordError::MissingNonce
            | RecordError::Compression
            | RecordError::Printable(_) => ValidationStep::Layout,
        }
    }
}
