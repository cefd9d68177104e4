//! Records (`record.md`): the signed datum of Mosaic.
//!
//! Layout (all offsets in bytes):
//!
//! ```text
//!   0  id: timestamp (8, BE) | first 40 bytes of the hash
//!  48  address: nonce (8, first bit 1) | kind (8, BE) | author key (32)
//!  96  signing key (32)
//! 128  timestamp (8, BE)
//! 136  flags (8)
//! 144  LenT (u16 LE) | LenS (u16 LE) | LenP (u32 LE)
//! 152  tags, padded to 8 | payload, padded to 8 | signature, padded to 8
//! ```
//!
//! The hash is BLAKE3-XOF64 of `[48 : 152 + LenTPad + LenPPad]`; the signature
//! is Ed25519ph over that hash with context `"Mosaic"`.
//!
//! [`Record`] is a borrowed, validated view (`&Record`, like `&str`);
//! [`OwnedRecord`] owns its bytes and dereferences to it. [`RecordBuilder`]
//! makes and signs new records. [`Record::from_bytes_batch`] validates many
//! records at once, checking their signatures together.

mod batch;
mod builder;
mod error;

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;

pub use builder::RecordBuilder;
pub use error::{RecordError, ValidationStep};

use crate::crypto::{self, PreparedSignature, RECORD_CONTEXT};
use crate::keys::PublicKey;
use crate::kind::Kind;
use crate::printable::{self, Prefix};
use crate::reference::{Address, Id, Nonce};
use crate::tag::TagSet;
use crate::timestamp::Timestamp;
use crate::view::{array, byte_view, le_u16, le_u32, padded};

/// Length of the fixed header.
pub const HEADER_LEN: usize = 152;
/// Largest record, in bytes.
pub const MAX_RECORD_LEN: usize = 1_048_576;
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

const NONCE_AT: usize = 48;
const KIND_AT: usize = 56;
const AUTHOR_AT: usize = 64;
const SIGNING_KEY_AT: usize = 96;
const TIMESTAMP_AT: usize = 128;
const FLAGS_AT: usize = 136;
const LEN_T_AT: usize = 144;
const LEN_S_AT: usize = 146;
const LEN_P_AT: usize = 148;

/// The record flags (8 bytes at `[136:144]`, read as a little-endian u64 so
/// that flag byte 0 is the low byte).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RecordFlags(u64);

impl RecordFlags {
    /// No flags.
    pub const NONE: RecordFlags = RecordFlags(0);
    /// The payload is compressed with zstd.
    pub const ZSTD: RecordFlags = RecordFlags(0x01);
    /// Servers should accept the record only from its authenticated author.
    pub const FROM_AUTHOR: RecordFlags = RecordFlags(0x04);

    /// Bits of byte 0 that are defined: ZSTD, FROM_AUTHOR and the scheme.
    const BYTE0_DEFINED: u64 = 0x01 | 0x04 | 0xc0;
    /// Bits that must be zero: the rest of byte 0, and bytes 1 and 2.
    /// Bytes 3 to 7 are ignored.
    const RESERVED: u64 = (0xff & !Self::BYTE0_DEFINED) | 0x00ff_ff00;

    /// Wraps a raw flags value.
    pub const fn from_u64(bits: u64) -> RecordFlags {
        RecordFlags(bits)
    }

    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Whether all the bits of `other` are set.
    pub const fn contains(self, other: RecordFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of bits.
    pub const fn union(self, other: RecordFlags) -> RecordFlags {
        RecordFlags(self.0 | other.0)
    }

    /// Whether the payload is zstd-compressed.
    pub const fn is_zstd(self) -> bool {
        self.contains(RecordFlags::ZSTD)
    }

    /// Whether servers should take the record only from its author.
    pub const fn is_from_author(self) -> bool {
        self.contains(RecordFlags::FROM_AUTHOR)
    }

    /// The signature scheme bits (0 is ed25519; the others are reserved).
    pub const fn signature_scheme(self) -> u8 {
        ((self.0 & 0xc0) >> 6) as u8
    }

    /// Whether a reserved bit that must be zero is set.
    pub const fn has_reserved_bits(self) -> bool {
        self.0 & Self::RESERVED != 0
    }
}

impl std::ops::BitOr for RecordFlags {
    type Output = RecordFlags;
    fn bitor(self, rhs: RecordFlags) -> RecordFlags {
        self.union(rhs)
    }
}

impl fmt::Debug for RecordFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        if self.is_zstd() {
            names.push("ZSTD");
        }
        if self.is_from_author() {
            names.push("FROM_AUTHOR");
        }
        write!(f, "RecordFlags({:#x}", self.0)?;
        if !names.is_empty() {
            write!(f, ": {}", names.join("|"))?;
        }
        f.write_str(")")
    }
}

/// The section lengths read from a header.
#[derive(Clone, Copy)]
struct Sections {
    len_t: usize,
    len_s: usize,
    len_p: usize,
}

impl Sections {
    fn read(bytes: &[u8]) -> Sections {
        Sections {
            len_t: usize::from(le_u16(bytes, LEN_T_AT)),
            len_s: usize::from(le_u16(bytes, LEN_S_AT)),
            len_p: le_u32(bytes, LEN_P_AT) as usize,
        }
    }

    fn payload_at(self) -> usize {
        HEADER_LEN + padded(self.len_t)
    }

    fn signature_at(self) -> usize {
        self.payload_at() + padded(self.len_p)
    }

    fn total(self) -> usize {
        self.signature_at() + padded(self.len_s)
    }
}

/// A validated record, borrowed.
#[repr(transparent)]
#[derive(PartialEq, Eq, Hash)]
pub struct Record([u8]);

byte_view!(Record);

impl Record {
    /// Reads the total length a record claims in its header, so that a reader
    /// of a stream knows how many bytes to take. Needs the first 152 bytes.
    pub fn len_from_header(header: &[u8]) -> Result<usize, RecordError> {
        if header.len() < HEADER_LEN {
            return Err(RecordError::TooShort { len: header.len() });
        }
        let total = Sections::read(header).total();
        if total > MAX_RECORD_LEN {
            return Err(RecordError::TooLong { len: total });
        }
        Ok(total)
    }

    /// Fully validates `bytes` as one record: every step of `record.md` a
    /// server performs (all but the clients-only steps 5 and 12's
    /// application-specific checks).
    ///
    /// For many records at once, [`Record::from_bytes_batch`] gives the same
    /// verdicts for less work.
    pub fn from_bytes(bytes: &[u8]) -> Result<&Record, RecordError> {
        let signature = prepare(bytes)?;
        signature.verify().map_err(RecordError::Signature)?;
        finish(bytes)
    }

    /// Checks only the layout of bytes that this program validated before
    /// (for example, read back from its own store): lengths, flags, nonce,
    /// timestamp and tags, but neither the keys, the hash nor the signature.
    ///
    /// Damaged bytes give an error, never a panic, but forged ones are not
    /// detected: never use this on bytes from the network.
    pub fn danger_from_bytes_unverified(bytes: &[u8]) -> Result<&Record, RecordError> {
        check_layout(bytes)?;
        Ok(Record::cast(bytes))
    }

    /// The record's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The record's length in bytes.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    fn sections(&self) -> Sections {
        Sections::read(&self.0)
    }

    /// The id: timestamp and hash prefix.
    pub fn id(&self) -> Id {
        Id::from_bytes_unchecked(array(&self.0, 0))
    }

    /// The address: nonce, kind and author.
    pub fn address(&self) -> Address {
        Address::from_bytes_unchecked(array(&self.0, NONCE_AT))
    }

    /// The address nonce.
    pub fn nonce(&self) -> Nonce {
        Nonce::from_bytes_forced(array(&self.0, NONCE_AT))
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        Kind::from_u64(u64::from_be_bytes(array(&self.0, KIND_AT)))
    }

    /// The author's (master) public key.
    pub fn author(&self) -> PublicKey {
        PublicKey::from_bytes_unchecked(array(&self.0, AUTHOR_AT))
    }

    /// The key that signed the record (the master key or a subkey).
    pub fn signing_key(&self) -> PublicKey {
        PublicKey::from_bytes_unchecked(array(&self.0, SIGNING_KEY_AT))
    }

    /// The timestamp.
    pub fn timestamp(&self) -> Timestamp {
        // Checked below 2^63 on construction.
        Timestamp::from_be_bytes(array(&self.0, TIMESTAMP_AT)).unwrap_or(Timestamp::MAX)
    }

    /// The flags.
    pub fn flags(&self) -> RecordFlags {
        RecordFlags(u64::from_le_bytes(array(&self.0, FLAGS_AT)))
    }

    /// The tags.
    pub fn tags(&self) -> &TagSet {
        let len_t = self.sections().len_t;
        TagSet::cast(&self.0[HEADER_LEN..HEADER_LEN + len_t])
    }

    /// The payload as stored (compressed when the ZSTD flag is set).
    pub fn payload(&self) -> &[u8] {
        let s = self.sections();
        let at = s.payload_at();
        &self.0[at..at + s.len_p]
    }

    /// The payload, decompressed when the ZSTD flag is set (bounded to 1 MiB).
    pub fn payload_decompressed(&self) -> Result<Cow<'_, [u8]>, RecordError> {
        if self.flags().is_zstd() {
            decompress(self.payload()).map(Cow::Owned)
        } else {
            Ok(Cow::Borrowed(self.payload()))
        }
    }

    /// The payload as text, for printable kinds (decompressed as needed).
    pub fn payload_text(&self) -> Result<Cow<'_, str>, RecordError> {
        match self.payload_decompressed()? {
            Cow::Borrowed(b) => std::str::from_utf8(b)
                .map(Cow::Borrowed)
                .map_err(|_| RecordError::PayloadNotUtf8),
            Cow::Owned(v) => String::from_utf8(v)
                .map(Cow::Owned)
                .map_err(|_| RecordError::PayloadNotUtf8),
        }
    }

    /// The signature.
    pub fn signature(&self) -> [u8; 64] {
        array(&self.0, self.sections().signature_at())
    }

    /// The signed bytes, `[48 : 152 + LenTPad + LenPPad]`.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.0[NONCE_AT..self.sections().signature_at()]
    }

    /// The printable form, `morecord0...`.
    pub fn to_printable(&self) -> String {
        printable::encode(Prefix::Record, &self.0)
    }

    /// Printable kinds must carry UTF-8 (decompressed first when the ZSTD
    /// flag is set). Other payloads are opaque: a compressed one that does not
    /// decompress is the application's problem, reported by
    /// [`payload_decompressed`](Self::payload_decompressed).
    fn check_content(&self) -> Result<(), RecordError> {
        if self.kind().is_printable() {
            self.payload_text()?;
        }
        Ok(())
    }
}

/// Decompresses a zstd payload, refusing output beyond the record size limit.
pub(crate) fn decompress(data: &[u8]) -> Result<Vec<u8>, RecordError> {
    let size = zstd::zstd_safe::get_frame_content_size(data).ok().flatten();
    if let Some(size) = size
        && size > MAX_RECORD_LEN as u64
    {
        return Err(RecordError::DecompressedTooLarge);
    }
    zstd::bulk::decompress(data, MAX_RECORD_LEN).map_err(|_| {
        if size.is_none() {
            // Either corrupt, or larger than the buffer: tell them apart by
            // trying one byte more.
            match zstd::bulk::decompress(data, MAX_RECORD_LEN + 1) {
                Ok(_) => RecordError::DecompressedTooLarge,
                Err(_) => RecordError::Decompression,
            }
        } else {
            RecordError::Decompression
        }
    })
}

/// Every step of [`Record::from_bytes`] before the signature equation: the
/// layout, both keys, the hash, the id's timestamp and the encodings of the
/// signature, in that order. Returns the signature ready to check.
fn prepare(bytes: &[u8]) -> Result<PreparedSignature, RecordError> {
    let sections = check_layout(bytes)?;
    let signing_bytes: [u8; 32] = array(bytes, SIGNING_KEY_AT);
    // The point is kept for the signature check.
    let (signing_key, signing_point) =
        PublicKey::decode(&signing_bytes).map_err(RecordError::SigningKey)?;
    let author_bytes: [u8; 32] = array(bytes, AUTHOR_AT);
    // A record signed by its author's master key names the same key
    // twice, and it has just been checked.
    if author_bytes != signing_bytes {
        PublicKey::from_bytes(&author_bytes).map_err(RecordError::AuthorKey)?;
    }
    let signed_end = sections.signature_at();
    let hash = crypto::blake3_xof64(&bytes[NONCE_AT..signed_end]);
    if bytes[8..48] != hash[..40] {
        return Err(RecordError::HashMismatch);
    }
    if bytes[..8] != bytes[TIMESTAMP_AT..TIMESTAMP_AT + 8] {
        return Err(RecordError::IdTimestampMismatch);
    }
    let signature: [u8; 64] = array(bytes, signed_end);
    PreparedSignature::new(
        signing_key.as_bytes(),
        &signing_point,
        &hash,
        RECORD_CONTEXT,
        &signature,
    )
    .map_err(RecordError::Signature)
}

/// The step of [`Record::from_bytes`] after the signature holds: the
/// content rules.
fn finish(bytes: &[u8]) -> Result<&Record, RecordError> {
    let record = Record::cast(bytes);
    record.check_content()?;
    Ok(record)
}

/// The checks that need no cryptography, in step order.
fn check_layout(bytes: &[u8]) -> Result<Sections, RecordError> {
    let len = bytes.len();
    if len < HEADER_LEN {
        return Err(RecordError::TooShort { len });
    }
    if len > MAX_RECORD_LEN {
        return Err(RecordError::TooLong { len });
    }
    let sections = Sections::read(bytes);
    let expected = sections.total();
    if expected != len {
        return Err(RecordError::LengthMismatch { len, expected });
    }
    let flags = RecordFlags(u64::from_le_bytes(array(bytes, FLAGS_AT)));
    if flags.has_reserved_bits() {
        return Err(RecordError::ReservedFlags { flags: flags.0 });
    }
    if flags.signature_scheme() != 0 {
        return Err(RecordError::UnsupportedSignatureScheme {
            scheme: flags.signature_scheme(),
        });
    }
    if sections.len_s != SIGNATURE_LEN {
        return Err(RecordError::SignatureLength {
            len_s: le_u16(bytes, LEN_S_AT),
        });
    }
    if bytes[NONCE_AT] & 0x80 == 0 {
        return Err(RecordError::NonceFirstBit);
    }
    if bytes[TIMESTAMP_AT] & 0x80 != 0 {
        return Err(RecordError::TimestampOutOfRange);
    }
    TagSet::from_bytes(&bytes[HEADER_LEN..HEADER_LEN + sections.len_t])
        .map_err(RecordError::Tags)?;
    Ok(sections)
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("id", &self.id())
            .field("kind", &self.kind())
            .field("author", &self.author())
            .field("signing_key", &self.signing_key())
            .field("timestamp", &self.timestamp())
            .field("flags", &self.flags())
            .field("tags", &self.tags())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

impl ToOwned for Record {
    type Owned = OwnedRecord;
    fn to_owned(&self) -> OwnedRecord {
        OwnedRecord(self.0.to_vec())
    }
}

impl AsRef<[u8]> for Record {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<Record> for Record {
    fn as_ref(&self) -> &Record {
        self
    }
}

/// A validated record that owns its bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OwnedRecord(Vec<u8>);

impl OwnedRecord {
    /// Fully validates and takes ownership of `bytes` (see [`Record::from_bytes`]).
    pub fn from_vec(bytes: Vec<u8>) -> Result<OwnedRecord, RecordError> {
        Record::from_bytes(&bytes)?;
        Ok(OwnedRecord(bytes))
    }

    /// Like [`Record::danger_from_bytes_unverified`], owning the bytes.
    pub fn danger_from_vec_unverified(bytes: Vec<u8>) -> Result<OwnedRecord, RecordError> {
        Record::danger_from_bytes_unverified(&bytes)?;
        Ok(OwnedRecord(bytes))
    }

    /// Parses and fully validates the printable form, `morecord0...`.
    pub fn from_printable(s: &str) -> Result<OwnedRecord, RecordError> {
        let bytes = printable::decode(Prefix::Record, s)?;
        OwnedRecord::from_vec(bytes)
    }

    /// The bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// Wraps bytes the builder has just laid out and signed.
    pub(crate) fn from_built(bytes: Vec<u8>) -> OwnedRecord {
        OwnedRecord(bytes)
    }
}

impl Deref for OwnedRecord {
    type Target = Record;
    fn deref(&self) -> &Record {
        Record::cast(&self.0)
    }
}

impl Borrow<Record> for OwnedRecord {
    fn borrow(&self) -> &Record {
        self
    }
}

impl AsRef<Record> for OwnedRecord {
    fn as_ref(&self) -> &Record {
        self
    }
}

impl AsRef<[u8]> for OwnedRecord {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for OwnedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl From<OwnedRecord> for Vec<u8> {
    fn from(r: OwnedRecord) -> Vec<u8> {
        r.0
    }
}

#[cfg(test)]
mod tests;
