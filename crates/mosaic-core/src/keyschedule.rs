//! Key schedules (`keyschedule.md`): a master key's subkeys, encryption keys
//! and revocations, and the clients-only signer check of `record.md` step 5.
//!
//! A key schedule is a record of kind [`Kind::KEY_SCHEDULE`]
//! (`0x0000_0000_0001_000e`: replaceable, everybody, not printable; D-16)
//! signed by the master key itself. Its payload is a sequence of entries:
//!
//! ```text
//!  0  kind (1) | 0 (1) | LEN (u16 LE) | MARKER (u16 LE) | 0 0
//!  8  timestamp (8, BE): the revocation / retirement time, or zero
//! 16  data: a Subkey Attestation (kind 1) or Encryption Key Data (kind 2)
//! ```
//!
//! A Subkey Attestation is signed by the subkey itself, so that nobody can
//! claim someone else's key as their subkey:
//!
//! ```text
//!  0  2c 28 98 f5 8b | ALG (0 = ed25519) | LenS (u16 LE, 64)
//!  8  subkey (32)
//! 40  master key (32)
//! 72  signature by the subkey over [0:72] (LenS bytes, padded to 8)
//! ```
//!
//! Encryption Key Data is `d6 da f0 bd 33 | ALG (0 = x25519, 1 = secp256k1) |
//! 0 0 | key (32)`. Every listed key also appears in a Subkey tag (0x10), so
//! that servers can index it.
//!
//! Decisions where `keyschedule.md` is silent:
//!
//! - **Signatures.** The attestation is signed "the Mosaic way"
//!   (`cryptography.md`): Ed25519ph over BLAKE3-XOF64 of bytes `[0:72]`,
//!   context `"Mosaic"`. Its leading magic bytes keep it apart from a record's
//!   signed section, which starts with a nonce whose first bit is 1.
//! - **Byte order.** MARKER is little-endian, like LEN and every other
//!   Mosaic length; the timestamp is big-endian (`timestamps.md`).
//! - **LEN** is the whole entry, header included: 152 for an ed25519
//!   attestation, 56 for encryption key data. Any other value, a nonzero
//!   reserved byte, a truncated entry or trailing bytes make the schedule
//!   invalid ("MUST be considered invalid if it does not conform").
//! - **secp256k1** signing is TBD in `cryptography.md`, so an attestation
//!   with ALG 1 (and with it the ACTIVE_NOSTR_KEY marker) cannot be checked:
//!   such a schedule is refused rather than trusted unchecked.
//! - **Markers per entry kind.** Signing keys take ACTIVE_SIGNING_KEY,
//!   REVOKED_ALL, REVOKED_PAST or OUT_OF_USE; encryption keys take
//!   ACTIVE_ENCRYPTION_KEY or OUT_OF_USE (revocation is about records
//!   *signed* by a key). REVOKED_ALL and REVOKED_PAST need a nonzero
//!   timestamp. Constructors zero the timestamp of ACTIVE markers; the parser
//!   accepts a nonzero one there (the spec says SHOULD) and ignores it.
//! - **Uniqueness.** A key appears at most once, the master key never; the
//!   Subkey tags name exactly the listed keys (other tag types are allowed).
//! - **Revocation times** take effect *at* the timestamp: REVOKED_PAST keeps a
//!   record valid only if both its timestamp and its receipt time are strictly
//!   before the revocation; an unknown receipt time counts as after.
//!   OUT_OF_USE with a timestamp keeps records timestamped before it valid
//!   and refuses later ones, whenever received; with a zero timestamp every
//!   record stays valid (nothing is revoked).

use std::collections::BTreeSet;
use std::fmt;

use crate::crypto::{RECORD_CONTEXT, SignatureError};
use crate::keys::{KeyError, PublicKey, SecretKey};
use crate::kind::Kind;
use crate::record::{OwnedRecord, Record, RecordBuilder, RecordError};
use crate::reference::Nonce;
use crate::tag::{OwnedTag, OwnedTagSet, TagError, TagType};
use crate::timestamp::Timestamp;
use crate::view::{array, le_u16};

/// The first five bytes of a Subkey Attestation.
pub const SUBKEY_ATTESTATION_MAGIC: [u8; 5] = [0x2c, 0x28, 0x98, 0xf5, 0x8b];
/// The first five bytes of an Encryption Key Data block.
pub const ENCRYPTION_KEY_MAGIC: [u8; 5] = [0xd6, 0xda, 0xf0, 0xbd, 0x33];

const ENTRY_HEADER_LEN: usize = 16;
const ENTRY_KIND_ATTESTATION: u8 = 1;
const ENTRY_KIND_ENCRYPTION: u8 = 2;
const ALG_ED25519: u8 = 0;
const ATTESTED_LEN: usize = 72;
const ENCRYPTION_DATA_LEN: usize = 40;

/// Why a key schedule (or one of its entries) is invalid, or why a record's
/// signer is not valid for its author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyScheduleError {
    /// The record is not of kind [`Kind::KEY_SCHEDULE`]: it is something else.
    #[error("kind {:#018x} is not a key schedule", kind.as_u64())]
    WrongKind {
        /// The record's kind.
        kind: Kind,
    },
    /// The record was signed by a subkey, but this kind must be signed by the
    /// author's master key; the record is invalid.
    #[error("signed by {signer}, not by the master key {author}")]
    NotSignedByMaster {
        /// The record's author.
        author: PublicKey,
        /// The key that signed it.
        signer: PublicKey,
    },
    /// The payload ended inside an entry: the schedule is truncated.
    #[error("entry {entry} needs {needed} bytes, only {available} remain")]
    Truncated {
        /// Index of the entry.
        entry: usize,
        /// Bytes the entry needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// An entry's LEN does not fit its kind and algorithm.
    #[error("entry {entry} has length {len}, expected {expected}")]
    EntryLength {
        /// Index of the entry.
        entry: usize,
        /// The LEN field.
        len: u16,
        /// The length its kind requires.
        expected: usize,
    },
    /// An entry kind other than 1 (attestation) or 2 (encryption key data).
    #[error("entry {entry} has unknown kind {kind}")]
    UnknownEntryKind {
        /// Index of the entry.
        entry: usize,
        /// The kind byte.
        kind: u8,
    },
    /// A byte the spec reserves as zero is not zero.
    #[error("entry {entry} has a nonzero reserved byte")]
    ReservedNotZero {
        /// Index of the entry.
        entry: usize,
    },
    /// A marker value the spec does not define.
    #[error("entry {entry} has unknown marker {marker:#x}")]
    UnknownMarker {
        /// Index of the entry.
        entry: usize,
        /// The marker value.
        marker: u16,
    },
    /// An attestation or encryption block does not start with its magic bytes.
    #[error("entry {entry} does not start with the magic bytes of its kind")]
    BadMagic {
        /// Index of the entry.
        entry: usize,
    },
    /// An algorithm this implementation cannot check (secp256k1 signatures
    /// are TBD in the spec) or a reserved one; the schedule cannot be trusted.
    #[error("entry {entry} uses unsupported algorithm {algorithm}")]
    UnsupportedAlgorithm {
        /// Index of the entry.
        entry: usize,
        /// The algorithm byte.
        algorithm: u8,
    },
    /// An attestation's LenS is not 64 (the only defined signature length).
    #[error("entry {entry} has signature length {len}, expected 64")]
    SignatureLength {
        /// Index of the entry.
        entry: usize,
        /// The LenS field.
        len: u16,
    },
    /// An attestation given on its own is not exactly 136 bytes.
    #[error("an attestation is 136 bytes, found {len}")]
    AttestationLength {
        /// The length given.
        len: usize,
    },
    /// A timestamp with its first bit set (not a valid timestamp, D-19).
    #[error("entry {entry} has an invalid timestamp")]
    InvalidTimestamp {
        /// Index of the entry.
        entry: usize,
    },
    /// A subkey or master key inside an attestation is not a valid key.
    #[error("entry {entry} holds an invalid key: {source}")]
    InvalidKey {
        /// Index of the entry.
        entry: usize,
        /// Why the key is invalid.
        source: KeyError,
    },
    /// An attestation names another master key: someone tried to claim a
    /// subkey that does not consider itself theirs.
    #[error("entry for {subkey} attests master {attested}, not {master}")]
    AttestationMaster {
        /// The subkey.
        subkey: PublicKey,
        /// The master key the attestation names.
        attested: PublicKey,
        /// The schedule's master key.
        master: PublicKey,
    },
    /// An attestation's signature does not verify: it is forged or damaged.
    #[error("attestation of {subkey} does not verify: {source}")]
    AttestationSignature {
        /// The subkey.
        subkey: PublicKey,
        /// Why verification failed.
        source: SignatureError,
    },
    /// The marker does not fit the kind of key (for example
    /// ACTIVE_ENCRYPTION_KEY on a signing key).
    #[error("marker {marker:?} cannot be used on this kind of key")]
    MarkerMismatch {
        /// The marker.
        marker: KeyMarker,
    },
    /// REVOKED_ALL and REVOKED_PAST need a nonzero timestamp.
    #[error("marker {marker:?} requires a nonzero timestamp")]
    MarkerNeedsTimestamp {
        /// The marker.
        marker: KeyMarker,
    },
    /// The master key is listed as its own subkey; master keys cannot be
    /// listed or revoked.
    #[error("the master key is listed as a subkey")]
    MasterListed,
    /// The same key appears in two entries; its status would be ambiguous.
    #[error("key {} is listed twice", hex32(key))]
    DuplicateKey {
        /// The key.
        key: [u8; 32],
    },
    /// A listed key has no Subkey tag, so servers could not index it.
    #[error("key {} has no subkey tag", hex32(key))]
    MissingSubkeyTag {
        /// The key.
        key: [u8; 32],
    },
    /// A Subkey tag names a key the payload does not list (and attest).
    #[error("subkey tag names unlisted key {}", hex32(key))]
    UnlistedSubkeyTag {
        /// The key.
        key: [u8; 32],
    },
    /// A Subkey tag does not have the 36-byte value of `core_tags.md`.
    #[error("malformed subkey tag ({len} value bytes)")]
    MalformedSubkeyTag {
        /// The value length.
        len: usize,
    },
    /// Building a record was asked with a key that is not this schedule's
    /// master key.
    #[error("the schedule belongs to {expected}, not {found}")]
    WrongMaster {
        /// The schedule's master key.
        expected: PublicKey,
        /// The key given.
        found: PublicKey,
    },
    /// The record could not be read or built (payload decompression, size).
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The subkey tags do not fit a record's tag section (too many entries).
    #[error(transparent)]
    Tag(#[from] TagError),
    /// A record signed by a subkey, and no key schedule of its author to
    /// check it against: fetch the author's schedule first.
    #[error("signed by a subkey and no key schedule is known")]
    NoSchedule,
    /// The schedule given belongs to another author than the record's.
    #[error("the key schedule of {schedule_master} cannot vouch for records of {author}")]
    ScheduleOfAnotherAuthor {
        /// The record's author.
        author: PublicKey,
        /// The schedule's master key.
        schedule_master: PublicKey,
    },
    /// The record's signing key is not valid for its author at its timestamp
    /// (unknown, revoked, or retired): the record is invalid.
    #[error("signer {signer} is not valid for this record: {status:?}")]
    InvalidSigner {
        /// The signing key.
        signer: PublicKey,
        /// What the schedule says about it.
        status: SignerStatus,
    },
}

fn hex32(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// The status of a listed key (`keyschedule.md` MARKER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyMarker {
    /// 0x0: a Mosaic ed25519 signing subkey in current use.
    ActiveSigningKey,
    /// 0x1: an encryption key in current use (never signs).
    ActiveEncryptionKey,
    /// 0x40: every record signed by the key is invalid.
    RevokedAll,
    /// 0x41: records signed by the key are valid only if received, and
    /// timestamped, before the revocation timestamp.
    RevokedPast,
    /// 0x4F: the key is no longer in use; nothing is revoked.
    OutOfUse,
    /// 0x80: a nostr secp256k1 subkey (not supported: see the module docs).
    ActiveNostrKey,
}

impl KeyMarker {
    /// Every defined marker, in value order.
    pub const ALL: [KeyMarker; 6] = [
        KeyMarker::ActiveSigningKey,
        KeyMarker::ActiveEncryptionKey,
        KeyMarker::RevokedAll,
        KeyMarker::RevokedPast,
        KeyMarker::OutOfUse,
        KeyMarker::ActiveNostrKey,
    ];

    /// The marker with this value, if the spec defines it.
    pub const fn from_u16(value: u16) -> Option<KeyMarker> {
        Some(match value {
            0x0 => KeyMarker::ActiveSigningKey,
            0x1 => KeyMarker::ActiveEncryptionKey,
            0x40 => KeyMarker::RevokedAll,
            0x41 => KeyMarker::RevokedPast,
            0x4f => KeyMarker::OutOfUse,
            0x80 => KeyMarker::ActiveNostrKey,
            _ => return None,
        })
    }

    /// The marker's value.
    pub const fn as_u16(self) -> u16 {
        match self {
            KeyMarker::ActiveSigningKey => 0x0,
            KeyMarker::ActiveEncryptionKey => 0x1,
            KeyMarker::RevokedAll => 0x40,
            KeyMarker::RevokedPast => 0x41,
            KeyMarker::OutOfUse => 0x4f,
            KeyMarker::ActiveNostrKey => 0x80,
        }
    }

    /// The spec's name (`ACTIVE_SIGNING_KEY`, ...).
    pub const fn spec_name(self) -> &'static str {
        match self {
            KeyMarker::ActiveSigningKey => "ACTIVE_SIGNING_KEY",
            KeyMarker::ActiveEncryptionKey => "ACTIVE_ENCRYPTION_KEY",
            KeyMarker::RevokedAll => "REVOKED_ALL",
            KeyMarker::RevokedPast => "REVOKED_PAST",
            KeyMarker::OutOfUse => "OUT_OF_USE",
            KeyMarker::ActiveNostrKey => "ACTIVE_NOSTR_KEY",
        }
    }

    /// Whether the marker needs a nonzero timestamp.
    pub const fn requires_timestamp(self) -> bool {
        matches!(self, KeyMarker::RevokedAll | KeyMarker::RevokedPast)
    }

    /// Whether the timestamp means anything for this marker.
    pub const fn uses_timestamp(self) -> bool {
        matches!(
            self,
            KeyMarker::RevokedAll | KeyMarker::RevokedPast | KeyMarker::OutOfUse
        )
    }
}

/// The algorithm of an encryption key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncryptionAlgorithm {
    /// 0: x25519 ECDH.
    X25519,
    /// 1: secp256k1 ECDH.
    Secp256k1,
}

impl EncryptionAlgorithm {
    /// The algorithm with this byte, if defined.
    pub const fn from_u8(value: u8) -> Option<EncryptionAlgorithm> {
        match value {
            0 => Some(EncryptionAlgorithm::X25519),
            1 => Some(EncryptionAlgorithm::Secp256k1),
            _ => None,
        }
    }

    /// The algorithm byte.
    pub const fn as_u8(self) -> u8 {
        match self {
            EncryptionAlgorithm::X25519 => 0,
            EncryptionAlgorithm::Secp256k1 => 1,
        }
    }
}

/// A subkey's signed statement that it belongs to a master key, verified.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubkeyAttestation {
    subkey: PublicKey,
    master: PublicKey,
    signature: [u8; 64],
}

impl SubkeyAttestation {
    /// Length of an ed25519 attestation in bytes.
    pub const LEN: usize = ATTESTED_LEN + 64;

    /// Has `subkey` attest that it belongs to `master`.
    pub fn new(master: &PublicKey, subkey: &SecretKey) -> SubkeyAttestation {
        let signed = attested_bytes(&subkey.public(), master);
        SubkeyAttestation {
            subkey: subkey.public(),
            master: *master,
            signature: subkey.sign(&signed, RECORD_CONTEXT),
        }
    }

    /// Reads and verifies the 136 bytes of an ed25519 attestation.
    pub fn from_bytes(bytes: &[u8]) -> Result<SubkeyAttestation, KeyScheduleError> {
        parse_attestation(0, bytes)
    }

    /// The 136 bytes.
    pub fn to_bytes(&self) -> [u8; SubkeyAttestation::LEN] {
        let mut out = [0u8; SubkeyAttestation::LEN];
        out[..ATTESTED_LEN].copy_from_slice(&attested_bytes(&self.subkey, &self.master));
        out[ATTESTED_LEN..].copy_from_slice(&self.signature);
        out
    }

    /// The subkey that signed.
    pub fn subkey(&self) -> PublicKey {
        self.subkey
    }

    /// The master key it belongs to.
    pub fn master(&self) -> PublicKey {
        self.master
    }

    /// The subkey's signature over bytes `[0:72]`.
    pub fn signature(&self) -> [u8; 64] {
        self.signature
    }
}

impl fmt::Debug for SubkeyAttestation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubkeyAttestation")
            .field("subkey", &self.subkey)
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

/// Bytes `[0:72]` of an ed25519 attestation: what the subkey signs.
fn attested_bytes(subkey: &PublicKey, master: &PublicKey) -> [u8; ATTESTED_LEN] {
    let mut out = [0u8; ATTESTED_LEN];
    out[..5].copy_from_slice(&SUBKEY_ATTESTATION_MAGIC);
    out[5] = ALG_ED25519;
    out[6..8].copy_from_slice(&64u16.to_le_bytes());
    out[8..40].copy_from_slice(subkey.as_bytes());
    out[40..72].copy_from_slice(master.as_bytes());
    out
}

/// Checks the first 8 bytes of an attestation: magic, algorithm, LenS.
fn check_attestation_header(entry: usize, bytes: &[u8]) -> Result<(), KeyScheduleError> {
    if bytes.len() < 8 {
        return Err(KeyScheduleError::Truncated {
            entry,
            needed: 8,
            available: bytes.len(),
        });
    }
    if bytes[..5] != SUBKEY_ATTESTATION_MAGIC {
        return Err(KeyScheduleError::BadMagic { entry });
    }
    if bytes[5] != ALG_ED25519 {
        return Err(KeyScheduleError::UnsupportedAlgorithm {
            entry,
            algorithm: bytes[5],
        });
    }
    let len_s = le_u16(bytes, 6);
    if len_s != 64 {
        return Err(KeyScheduleError::SignatureLength { entry, len: len_s });
    }
    Ok(())
}

/// Parses and verifies an attestation occupying exactly `bytes`.
fn parse_attestation(entry: usize, bytes: &[u8]) -> Result<SubkeyAttestation, KeyScheduleError> {
    check_attestation_header(entry, bytes)?;
    if bytes.len() != SubkeyAttestation::LEN {
        return Err(KeyScheduleError::AttestationLength { len: bytes.len() });
    }
    let key = |at: usize| {
        PublicKey::from_bytes(&array(bytes, at))
            .map_err(|source| KeyScheduleError::InvalidKey { entry, source })
    };
    let subkey = key(8)?;
    let master = key(40)?;
    let signature: [u8; 64] = array(bytes, ATTESTED_LEN);
    subkey
        .verify(&bytes[..ATTESTED_LEN], RECORD_CONTEXT, &signature)
        .map_err(|source| KeyScheduleError::AttestationSignature { subkey, source })?;
    Ok(SubkeyAttestation {
        subkey,
        master,
        signature,
    })
}

/// What a key schedule entry lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyData {
    /// An ed25519 signing subkey, with its attestation.
    Signing(SubkeyAttestation),
    /// An encryption key. It cannot sign, so it carries no attestation.
    Encryption {
        /// The algorithm.
        algorithm: EncryptionAlgorithm,
        /// The public key bytes.
        key: [u8; 32],
    },
}

impl KeyData {
    /// The listed key's 32 bytes.
    pub fn key_bytes(&self) -> [u8; 32] {
        match self {
            KeyData::Signing(a) => a.subkey.to_bytes(),
            KeyData::Encryption { key, .. } => *key,
        }
    }
}

/// One entry of a key schedule: a key, its marker and the marker's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyScheduleEntry {
    marker: KeyMarker,
    timestamp: Timestamp,
    data: KeyData,
}

impl KeyScheduleEntry {
    /// Lists the signing subkey `subkey` of `master`, having it sign its
    /// attestation.
    pub fn new_attested(
        master: &PublicKey,
        subkey: &SecretKey,
        marker: KeyMarker,
        timestamp: Timestamp,
    ) -> Result<KeyScheduleEntry, KeyScheduleError> {
        KeyScheduleEntry::from_attestation(
            SubkeyAttestation::new(master, subkey),
            marker,
            timestamp,
        )
    }

    /// Lists a signing subkey with an attestation made earlier (for example
    /// taken from the previous schedule, to revoke a key whose secret is
    /// lost).
    pub fn from_attestation(
        attestation: SubkeyAttestation,
        marker: KeyMarker,
        timestamp: Timestamp,
    ) -> Result<KeyScheduleEntry, KeyScheduleError> {
        KeyScheduleEntry::checked(marker, timestamp, KeyData::Signing(attestation))
    }

    /// Lists an encryption key.
    pub fn encryption_key(
        algorithm: EncryptionAlgorithm,
        key: [u8; 32],
        marker: KeyMarker,
        timestamp: Timestamp,
    ) -> Result<KeyScheduleEntry, KeyScheduleError> {
        KeyScheduleEntry::checked(marker, timestamp, KeyData::Encryption { algorithm, key })
    }

    /// The same key with another marker and timestamp (to retire or revoke
    /// it).
    pub fn with_marker(
        &self,
        marker: KeyMarker,
        timestamp: Timestamp,
    ) -> Result<KeyScheduleEntry, KeyScheduleError> {
        KeyScheduleEntry::checked(marker, timestamp, self.data)
    }

    /// Checks the marker against the data and normalises the timestamp.
    fn checked(
        marker: KeyMarker,
        timestamp: Timestamp,
        data: KeyData,
    ) -> Result<KeyScheduleEntry, KeyScheduleError> {
        check_marker(marker, timestamp, &data)?;
        let timestamp = if marker.uses_timestamp() {
            timestamp
        } else {
            Timestamp::ZERO
        };
        Ok(KeyScheduleEntry {
            marker,
            timestamp,
            data,
        })
    }

    /// The marker.
    pub fn marker(&self) -> KeyMarker {
        self.marker
    }

    /// The marker's timestamp (zero when none was given).
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The listed key and its attestation or algorithm.
    pub fn data(&self) -> &KeyData {
        &self.data
    }

    /// The listed key's 32 bytes.
    pub fn key_bytes(&self) -> [u8; 32] {
        self.data.key_bytes()
    }

    /// The signing subkey, if this entry lists one.
    pub fn signing_key(&self) -> Option<PublicKey> {
        match &self.data {
            KeyData::Signing(a) => Some(a.subkey),
            KeyData::Encryption { .. } => None,
        }
    }

    /// The attestation, if this entry lists a signing subkey.
    pub fn attestation(&self) -> Option<&SubkeyAttestation> {
        match &self.data {
            KeyData::Signing(a) => Some(a),
            KeyData::Encryption { .. } => None,
        }
    }

    /// The entry's bytes in the payload.
    fn encode(&self, out: &mut Vec<u8>) {
        let (kind, len) = match self.data {
            KeyData::Signing(_) => (
                ENTRY_KIND_ATTESTATION,
                ENTRY_HEADER_LEN + SubkeyAttestation::LEN,
            ),
            KeyData::Encryption { .. } => (
                ENTRY_KIND_ENCRYPTION,
                ENTRY_HEADER_LEN + ENCRYPTION_DATA_LEN,
            ),
        };
        out.push(kind);
        out.push(0);
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&self.marker.as_u16().to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        match &self.data {
            KeyData::Signing(a) => out.extend_from_slice(&a.to_bytes()),
            KeyData::Encryption { algorithm, key } => {
                out.extend_from_slice(&ENCRYPTION_KEY_MAGIC);
                out.push(algorithm.as_u8());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(key);
            }
        }
    }
}

fn check_marker(
    marker: KeyMarker,
    timestamp: Timestamp,
    data: &KeyData,
) -> Result<(), KeyScheduleError> {
    let fits = match data {
        KeyData::Signing(_) => matches!(
            marker,
            KeyMarker::ActiveSigningKey
                | KeyMarker::RevokedAll
                | KeyMarker::RevokedPast
                | KeyMarker::OutOfUse
        ),
        KeyData::Encryption { .. } => {
            matches!(marker, KeyMarker::ActiveEncryptionKey | KeyMarker::OutOfUse)
        }
    };
    if !fits {
        return Err(KeyScheduleError::MarkerMismatch { marker });
    }
    if marker.requires_timestamp() && timestamp == Timestamp::ZERO {
        return Err(KeyScheduleError::MarkerNeedsTimestamp { marker });
    }
    Ok(())
}

/// What a key schedule says about a record's signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignerStatus {
    /// The author's master key: always valid.
    Master,
    /// An active signing subkey: valid.
    ActiveSubkey,
    /// A REVOKED_PAST subkey, but the record was timestamped and received
    /// before the revocation: valid.
    ReceivedBeforeRevocation {
        /// The revocation timestamp.
        revoked_at: Timestamp,
    },
    /// An OUT_OF_USE subkey, and the record predates its retirement (or no
    /// retirement time is given): valid.
    RetiredSubkey {
        /// The retirement timestamp (zero when not given).
        since: Timestamp,
    },
    /// A revoked subkey (REVOKED_ALL, or REVOKED_PAST with the record
    /// timestamped or received at or after the revocation): invalid.
    Revoked {
        /// The marker.
        marker: KeyMarker,
        /// The revocation timestamp.
        at: Timestamp,
    },
    /// An OUT_OF_USE subkey used for a record timestamped at or after its
    /// retirement: invalid.
    UsedAfterRetirement {
        /// The retirement timestamp.
        since: Timestamp,
    },
    /// Not the master key and not a listed signing subkey: invalid.
    Unknown,
}

impl SignerStatus {
    /// Whether a record signed by this key is valid.
    pub fn is_valid(&self) -> bool {
        matches!(
            self,
            SignerStatus::Master
                | SignerStatus::ActiveSubkey
                | SignerStatus::ReceivedBeforeRevocation { .. }
                | SignerStatus::RetiredSubkey { .. }
        )
    }
}

/// A master key's verified key schedule.
///
/// ```
/// use mosaic_core::{
///     Kind, KeyMarker, KeySchedule, KeyScheduleEntry, Nonce, RecordBuilder, SecretKey,
///     SignerStatus, Timestamp, validate_record_signer,
/// };
///
/// # fn main() -> Result<(), mosaic_core::Error> {
/// let master = SecretKey::from_bytes(&[1u8; 32]);
/// let device = SecretKey::from_bytes(&[2u8; 32]);
/// let now = Timestamp::from_nanos(1_750_000_000_000_000_000)?;
/// let entry = KeyScheduleEntry::new_attested(
///     &master.public(),
///     &device,
///     KeyMarker::ActiveSigningKey,
///     Timestamp::ZERO,
/// )?;
/// let schedule = KeySchedule::new(master.public(), vec![entry])?;
/// let record = schedule.build_record(&master, now, KeySchedule::default_nonce())?;
/// let schedule = KeySchedule::from_record(&record)?;
///
/// // A post signed by the device on the master's behalf.
/// let post = RecordBuilder::new(Kind::MICROBLOG_ROOT, now)
///     .nonce(Nonce::from_key(b"post"))
///     .author(master.public())
///     .payload(b"from my phone")
///     .build(&device)?;
/// let status = validate_record_signer(&post, Some(&schedule), Some(now))?;
/// assert_eq!(status, SignerStatus::ActiveSubkey);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeySchedule {
    master: PublicKey,
    entries: Vec<KeyScheduleEntry>,
}

impl KeySchedule {
    /// A schedule of `master` listing `entries`: every attestation must name
    /// `master`, and no key may appear twice.
    pub fn new(
        master: PublicKey,
        entries: Vec<KeyScheduleEntry>,
    ) -> Result<KeySchedule, KeyScheduleError> {
        let mut seen = BTreeSet::new();
        for entry in &entries {
            let key = entry.key_bytes();
            if let KeyData::Signing(a) = &entry.data
                && a.master != master
            {
                return Err(KeyScheduleError::AttestationMaster {
                    subkey: a.subkey,
                    attested: a.master,
                    master,
                });
            }
            if key == master.to_bytes() {
                return Err(KeyScheduleError::MasterListed);
            }
            if !seen.insert(key) {
                return Err(KeyScheduleError::DuplicateKey { key });
            }
        }
        Ok(KeySchedule { master, entries })
    }

    /// The convention this crate uses for a key schedule's address nonce,
    /// so that each new schedule replaces the last: the key
    /// `"mosaic key schedule"` (see [`Nonce::from_key`]). The spec fixes no
    /// nonce; readers should take the author's newest key schedule whatever
    /// its nonce.
    pub fn default_nonce() -> Nonce {
        Nonce::from_key(b"mosaic key schedule")
    }

    /// Reads and fully checks a key schedule record: its kind, that the
    /// master key signed it, every entry and attestation, and that the
    /// Subkey tags name exactly the listed keys.
    pub fn from_record(record: &Record) -> Result<KeySchedule, KeyScheduleError> {
        if record.kind() != Kind::KEY_SCHEDULE {
            return Err(KeyScheduleError::WrongKind {
                kind: record.kind(),
            });
        }
        let author = record.author();
        if record.signing_key() != author {
            return Err(KeyScheduleError::NotSignedByMaster {
                author,
                signer: record.signing_key(),
            });
        }
        let payload = record.payload_decompressed()?;
        let schedule = KeySchedule::from_payload(&author, &payload)?;

        let mut tagged = BTreeSet::new();
        for tag in record.tags() {
            if tag.tag_type() != TagType::SUBKEY {
                continue;
            }
            let value = tag.value();
            if value.len() != 36 || value[..4] != [0, 0, 0, 0] {
                return Err(KeyScheduleError::MalformedSubkeyTag { len: value.len() });
            }
            tagged.insert(array::<32>(value, 4));
        }
        for entry in &schedule.entries {
            let key = entry.key_bytes();
            if !tagged.remove(&key) {
                return Err(KeyScheduleError::MissingSubkeyTag { key });
            }
        }
        if let Some(key) = tagged.into_iter().next() {
            return Err(KeyScheduleError::UnlistedSubkeyTag { key });
        }
        Ok(schedule)
    }

    /// Reads a payload as the schedule of `master`, checking every entry
    /// and attestation (but not the record around it: use
    /// [`from_record`](Self::from_record) for that).
    pub fn from_payload(
        master: &PublicKey,
        payload: &[u8],
    ) -> Result<KeySchedule, KeyScheduleError> {
        let mut entries = Vec::new();
        let mut rest = payload;
        while !rest.is_empty() {
            let (entry, len) = parse_entry(entries.len(), rest)?;
            entries.push(entry);
            rest = &rest[len..];
        }
        KeySchedule::new(*master, entries)
    }

    /// The payload bytes.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for entry in &self.entries {
            entry.encode(&mut out);
        }
        out
    }

    /// One Subkey tag per listed key, in entry order.
    pub fn subkey_tags(&self) -> Result<OwnedTagSet, KeyScheduleError> {
        let mut set = OwnedTagSet::new();
        for entry in &self.entries {
            let tag = match entry.signing_key() {
                Some(key) => OwnedTag::subkey(&key),
                None => {
                    let mut value = [0u8; 36];
                    value[4..].copy_from_slice(&entry.key_bytes());
                    OwnedTag::new(TagType::SUBKEY, &value)?
                }
            };
            set.push(&tag)?;
        }
        Ok(set)
    }

    /// Builds and signs the key schedule record with the master key.
    pub fn build_record(
        &self,
        master: &SecretKey,
        timestamp: Timestamp,
        nonce: Nonce,
    ) -> Result<OwnedRecord, KeyScheduleError> {
        if master.public() != self.master {
            return Err(KeyScheduleError::WrongMaster {
                expected: self.master,
                found: master.public(),
            });
        }
        let payload = self.to_payload();
        let tags = self.subkey_tags()?;
        Ok(RecordBuilder::new(Kind::KEY_SCHEDULE, timestamp)
            .nonce(nonce)
            .tags(&tags)
            .payload(&payload)
            .build(master)?)
    }

    /// The master key.
    pub fn master(&self) -> PublicKey {
        self.master
    }

    /// The entries, in payload order.
    pub fn entries(&self) -> &[KeyScheduleEntry] {
        &self.entries
    }

    /// The entry listing these key bytes.
    pub fn entry(&self, key: &[u8; 32]) -> Option<&KeyScheduleEntry> {
        self.entries.iter().find(|e| &e.key_bytes() == key)
    }

    /// The encryption keys in current use.
    pub fn active_encryption_keys(
        &self,
    ) -> impl Iterator<Item = (EncryptionAlgorithm, [u8; 32])> + '_ {
        self.entries.iter().filter_map(|e| match e.data {
            KeyData::Encryption { algorithm, key }
                if e.marker == KeyMarker::ActiveEncryptionKey =>
            {
                Some((algorithm, key))
            }
            _ => None,
        })
    }

    /// Whether `signer` may sign a record of this master timestamped
    /// `record_timestamp` and received (first seen by this software) at
    /// `received_at` (`None` when unknown). The rules are in the module
    /// docs.
    pub fn signer_status(
        &self,
        signer: &PublicKey,
        record_timestamp: Timestamp,
        received_at: Option<Timestamp>,
    ) -> SignerStatus {
        if *signer == self.master {
            return SignerStatus::Master;
        }
        let Some(entry) = self
            .entries
            .iter()
            .find(|e| e.signing_key().as_ref() == Some(signer))
        else {
            return SignerStatus::Unknown;
        };
        let at = entry.timestamp;
        match entry.marker {
            KeyMarker::ActiveSigningKey => SignerStatus::ActiveSubkey,
            KeyMarker::RevokedPast
                if record_timestamp < at && received_at.is_some_and(|r| r < at) =>
            {
                SignerStatus::ReceivedBeforeRevocation { revoked_at: at }
            }
            KeyMarker::RevokedAll | KeyMarker::RevokedPast => SignerStatus::Revoked {
                marker: entry.marker,
                at,
            },
            KeyMarker::OutOfUse if at == Timestamp::ZERO || record_timestamp < at => {
                SignerStatus::RetiredSubkey { since: at }
            }
            KeyMarker::OutOfUse => SignerStatus::UsedAfterRetirement { since: at },
            // Not reachable for signing entries (checked on construction).
            KeyMarker::ActiveEncryptionKey | KeyMarker::ActiveNostrKey => SignerStatus::Unknown,
        }
    }
}

/// Reads one entry at the start of `bytes`; returns it and its length.
fn parse_entry(entry: usize, bytes: &[u8]) -> Result<(KeyScheduleEntry, usize), KeyScheduleError> {
    if bytes.len() < ENTRY_HEADER_LEN {
        return Err(KeyScheduleError::Truncated {
            entry,
            needed: ENTRY_HEADER_LEN,
            available: bytes.len(),
        });
    }
    let kind = bytes[0];
    let expected = match kind {
        ENTRY_KIND_ATTESTATION => ENTRY_HEADER_LEN + SubkeyAttestation::LEN,
        ENTRY_KIND_ENCRYPTION => ENTRY_HEADER_LEN + ENCRYPTION_DATA_LEN,
        _ => return Err(KeyScheduleError::UnknownEntryKind { entry, kind }),
    };
    if bytes[1] != 0 || bytes[6] != 0 || bytes[7] != 0 {
        return Err(KeyScheduleError::ReservedNotZero { entry });
    }
    let len = le_u16(bytes, 2);
    let len_usize = usize::from(len);
    if len_usize < ENTRY_HEADER_LEN + 8 {
        return Err(KeyScheduleError::EntryLength {
            entry,
            len,
            expected,
        });
    }
    if len_usize > bytes.len() {
        return Err(KeyScheduleError::Truncated {
            entry,
            needed: len_usize,
            available: bytes.len(),
        });
    }
    let marker_value = le_u16(bytes, 4);
    let marker = KeyMarker::from_u16(marker_value).ok_or(KeyScheduleError::UnknownMarker {
        entry,
        marker: marker_value,
    })?;
    let timestamp = Timestamp::from_be_bytes(array(bytes, 8))
        .map_err(|_| KeyScheduleError::InvalidTimestamp { entry })?;
    let data_bytes = &bytes[ENTRY_HEADER_LEN..len_usize];
    // The data's own header first, so that an unsupported algorithm is
    // reported as such rather than as the length of another layout.
    if kind == ENTRY_KIND_ATTESTATION {
        check_attestation_header(entry, data_bytes)?;
    } else {
        check_encryption_header(entry, data_bytes)?;
    }
    if len_usize != expected {
        return Err(KeyScheduleError::EntryLength {
            entry,
            len,
            expected,
        });
    }
    let data = if kind == ENTRY_KIND_ATTESTATION {
        KeyData::Signing(parse_attestation(entry, data_bytes)?)
    } else {
        parse_encryption_data(entry, data_bytes)?
    };
    check_marker(marker, timestamp, &data)?;
    Ok((
        KeyScheduleEntry {
            marker,
            timestamp,
            data,
        },
        expected,
    ))
}

/// Checks the first 8 bytes of encryption key data: magic, algorithm, zeros.
fn check_encryption_header(
    entry: usize,
    bytes: &[u8],
) -> Result<EncryptionAlgorithm, KeyScheduleError> {
    if bytes.len() < 8 {
        return Err(KeyScheduleError::Truncated {
            entry,
            needed: 8,
            available: bytes.len(),
        });
    }
    if bytes[..5] != ENCRYPTION_KEY_MAGIC {
        return Err(KeyScheduleError::BadMagic { entry });
    }
    let algorithm =
        EncryptionAlgorithm::from_u8(bytes[5]).ok_or(KeyScheduleError::UnsupportedAlgorithm {
            entry,
            algorithm: bytes[5],
        })?;
    if bytes[6] != 0 || bytes[7] != 0 {
        return Err(KeyScheduleError::ReservedNotZero { entry });
    }
    Ok(algorithm)
}

/// Parses encryption key data occupying exactly `bytes`.
fn parse_encryption_data(entry: usize, bytes: &[u8]) -> Result<KeyData, KeyScheduleError> {
    let algorithm = check_encryption_header(entry, bytes)?;
    if bytes.len() != ENCRYPTION_DATA_LEN {
        return Err(KeyScheduleError::Truncated {
            entry,
            needed: ENCRYPTION_DATA_LEN,
            available: bytes.len(),
        });
    }
    Ok(KeyData::Encryption {
        algorithm,
        key: array(bytes, 8),
    })
}

/// `record.md` validation step 5 (clients only): the record's signing key
/// must be its author's master key, or a signing subkey that the author's
/// key schedule lists and has not revoked for this record. Key schedules
/// and profiles must be signed by the master key itself.
///
/// `received_at` is when this software first received the record (`None`
/// when unknown), which decides REVOKED_PAST. On success, says why the
/// signer is valid.
pub fn validate_record_signer(
    record: &Record,
    schedule: Option<&KeySchedule>,
    received_at: Option<Timestamp>,
) -> Result<SignerStatus, KeyScheduleError> {
    let author = record.author();
    let signer = record.signing_key();
    if signer == author {
        return Ok(SignerStatus::Master);
    }
    if record.kind() == Kind::KEY_SCHEDULE || record.kind() == Kind::PROFILE {
        return Err(KeyScheduleError::NotSignedByMaster { author, signer });
    }
    let schedule = schedule.ok_or(KeyScheduleError::NoSchedule)?;
    if schedule.master != author {
        return Err(KeyScheduleError::ScheduleOfAnotherAuthor {
            author,
            schedule_master: schedule.master,
        });
    }
    let status = schedule.signer_status(&signer, record.timestamp(), received_at);
    if status.is_valid() {
        Ok(status)
    } else {
        Err(KeyScheduleError::InvalidSigner { signer, status })
    }
}

#[cfg(test)]
mod tests;
