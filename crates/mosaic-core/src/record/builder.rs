//! [`RecordBuilder`]: lays out, pads, compresses and signs a new record.

use crate::crypto::{self, RECORD_CONTEXT};
use crate::keys::{PublicKey, SecretKey};
use crate::kind::Kind;
use crate::reference::{Address, Nonce};
use crate::tag::{Tag, TagError, TagSet};
use crate::timestamp::Timestamp;
use crate::view::padded;

use super::{
    FLAGS_AT, HEADER_LEN, LEN_P_AT, LEN_S_AT, LEN_T_AT, MAX_RECORD_LEN, NONCE_AT, OwnedRecord,
    RecordError, RecordFlags, SIGNATURE_LEN, SIGNING_KEY_AT, TIMESTAMP_AT,
};

/// The zstd level used for payloads: zstd's default, a good speed/size balance.
const ZSTD_LEVEL: i32 = 3;

/// Builds and signs a record.
///
/// ```
/// use mosaic_core::{Kind, Nonce, RecordBuilder, SecretKey, Timestamp};
///
/// # fn main() -> Result<(), mosaic_core::Error> {
/// let key = SecretKey::from_bytes(&[1u8; 32]);
/// let record = RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(1_750_000_000_000_000_000)?)
///     .nonce(Nonce::from_key(b"first post"))
///     .payload(b"Hello, Mosaic!")
///     .build(&key)?;
/// assert_eq!(record.author(), key.public());
/// assert_eq!(&*record.payload_text()?, "Hello, Mosaic!");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RecordBuilder<'a> {
    kind: Kind,
    timestamp: Timestamp,
    nonce: Option<Nonce>,
    author: Option<PublicKey>,
    tags: Vec<u8>,
    tag_error: Option<TagError>,
    payload: &'a [u8],
    precompressed: bool,
    flags: RecordFlags,
}

impl<'a> RecordBuilder<'a> {
    /// Starts a record of `kind` at `timestamp`, with no tags and an empty
    /// payload. A nonce must be set with [`nonce`](Self::nonce) or
    /// [`address`](Self::address).
    pub fn new(kind: Kind, timestamp: Timestamp) -> RecordBuilder<'a> {
        RecordBuilder {
            kind,
            timestamp,
            nonce: None,
            author: None,
            tags: Vec::new(),
            tag_error: None,
            payload: &[],
            precompressed: false,
            flags: RecordFlags::NONE,
        }
    }

    /// Sets the address nonce (see [`Nonce`] for ways to make one).
    pub fn nonce(mut self, nonce: Nonce) -> Self {
        self.nonce = Some(nonce);
        self
    }

    /// Takes nonce, kind and author from an existing address, to replace or
    /// add a version to the record there.
    pub fn address(mut self, address: &Address) -> Self {
        self.nonce = Some(address.nonce());
        self.kind = address.kind();
        self.author = Some(address.author());
        self
    }

    /// Sets the author (master) key when signing with a subkey. Defaults to
    /// the signing key's public key.
    pub fn author(mut self, author: PublicKey) -> Self {
        self.author = Some(author);
        self
    }

    /// Appends a tag.
    pub fn tag(mut self, tag: &Tag) -> Self {
        self.tags.extend_from_slice(tag.as_bytes());
        if self.tags.len() > usize::from(u16::MAX) && self.tag_error.is_none() {
            self.tag_error = Some(TagError::SetTooLong {
                len: self.tags.len(),
            });
        }
        self
    }

    /// Appends every tag of a set.
    pub fn tags(mut self, tags: &TagSet) -> Self {
        for tag in tags {
            self = self.tag(tag);
        }
        self
    }

    /// Sets the payload (uncompressed; see [`zstd`](Self::zstd)).
    pub fn payload(mut self, payload: &'a [u8]) -> Self {
        self.payload = payload;
        self
    }

    /// Compresses the payload with zstd and sets the ZSTD flag.
    pub fn zstd(mut self, on: bool) -> Self {
        self.set_flag(RecordFlags::ZSTD, on);
        self.precompressed = false;
        self
    }

    /// Sets a payload that is already a zstd frame, and the ZSTD flag. For
    /// printable kinds the frame must decompress, within 1 MiB, to UTF-8;
    /// other payloads are opaque and not checked.
    pub fn precompressed_payload(mut self, frame: &'a [u8]) -> Self {
        self.payload = frame;
        self.precompressed = true;
        self.set_flag(RecordFlags::ZSTD, true);
        self
    }

    /// Sets the FROM_AUTHOR flag: servers should accept the record only from
    /// its authenticated author.
    pub fn from_author(mut self, on: bool) -> Self {
        self.set_flag(RecordFlags::FROM_AUTHOR, on);
        self
    }

    fn set_flag(&mut self, flag: RecordFlags, on: bool) {
        self.flags = if on {
            self.flags | flag
        } else {
            RecordFlags(self.flags.0 & !flag.0)
        };
    }

    /// Lays out the record and signs it with `signer` (the master key or a
    /// subkey).
    pub fn build(&self, signer: &SecretKey) -> Result<OwnedRecord, RecordError> {
        if let Some(e) = &self.tag_error {
            return Err(RecordError::Tags(e.clone()));
        }
        let nonce = self.nonce.ok_or(RecordError::MissingNonce)?;
        let compressed;
        let payload: &[u8] = if self.precompressed {
            if self.kind.is_printable() {
                let plain = super::decompress(self.payload)?;
                if std::str::from_utf8(&plain).is_err() {
                    return Err(RecordError::PayloadNotUtf8);
                }
            }
            self.payload
        } else if self.kind.is_printable() && std::str::from_utf8(self.payload).is_err() {
            return Err(RecordError::PayloadNotUtf8);
        } else if self.flags.is_zstd() {
            if self.payload.len() > MAX_RECORD_LEN {
                return Err(RecordError::DecompressedTooLarge);
            }
            compressed = zstd::bulk::compress(self.payload, ZSTD_LEVEL)
                .map_err(|_| RecordError::Compression)?;
            &compressed
        } else {
            self.payload
        };
        let total = HEADER_LEN + padded(self.tags.len()) + padded(payload.len()) + SIGNATURE_LEN;
        if total > MAX_RECORD_LEN {
            return Err(RecordError::TooLong { len: total });
        }
        let author = self.author.unwrap_or_else(|| signer.public());

        let mut buf = vec![0u8; total];
        buf[NONCE_AT..NONCE_AT + 8].copy_from_slice(&nonce.to_bytes());
        buf[NONCE_AT + 8..NONCE_AT + 16].copy_from_slice(&self.kind.to_be_bytes());
        buf[NONCE_AT + 16..SIGNING_KEY_AT].copy_from_slice(author.as_bytes());
        buf[SIGNING_KEY_AT..TIMESTAMP_AT].copy_from_slice(signer.public().as_bytes());
        buf[TIMESTAMP_AT..FLAGS_AT].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[FLAGS_AT..LEN_T_AT].copy_from_slice(&self.flags.as_u64().to_le_bytes());
        buf[LEN_T_AT..LEN_S_AT].copy_from_slice(&(self.tags.len() as u16).to_le_bytes());
        buf[LEN_S_AT..LEN_P_AT].copy_from_slice(&(SIGNATURE_LEN as u16).to_le_bytes());
        buf[LEN_P_AT..HEADER_LEN].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        buf[HEADER_LEN..HEADER_LEN + self.tags.len()].copy_from_slice(&self.tags);
        let payload_at = HEADER_LEN + padded(self.tags.len());
        buf[payload_at..payload_at + payload.len()].copy_from_slice(payload);
        let signature_at = payload_at + padded(payload.len());

        let hash = crypto::blake3_xof64(&buf[NONCE_AT..signature_at]);
        let signature = signer.sign_prehashed(&hash, RECORD_CONTEXT);
        buf[signature_at..signature_at + SIGNATURE_LEN].copy_from_slice(&signature);
        buf[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        buf[8..48].copy_from_slice(&hash[..40]);
        Ok(OwnedRecord::from_built(buf))
    }
}
