//! `mosaic-core`: every data format of the Mosaic protocol (spec 0.8.0) and
//! its cryptography, with no IO.
//!
//! This crate never touches a socket, a file, the clock or the environment:
//! time and randomness arrive as arguments. Everything above it (transports,
//! the store, the DHT, the server and the client) builds on these types.
//!
//! The central types:
//! - [`PublicKey`] and [`SecretKey`]: ed25519 identities and their human
//!   encodings (`mopub0`, `mosrv0`, `mosec0`).
//! - [`Record`] (a validated view over bytes) and [`OwnedRecord`], made by
//!   [`RecordBuilder`]; named by [`Id`], [`Address`] and [`Reference`].
//!   [`Record::from_bytes_batch`] validates many records at once, with the
//!   verdicts of [`Record::from_bytes`] and their signatures checked
//!   together.
//!
//! ```
//! use mosaic_core::{Kind, Nonce, OwnedRecord, RecordBuilder, SecretKey, Timestamp};
//!
//! # fn main() -> Result<(), mosaic_core::Error> {
//! let secret = SecretKey::from_bytes(&[7u8; 32]);
//! let record = RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(1_750_000_000_000_000_000)?)
//!     .nonce(Nonce::from_key(b"hello"))
//!     .payload(b"Hello, Mosaic!")
//!     .build(&secret)?;
//! // Anyone can check the bytes: every validation step of record.md runs.
//! let checked = OwnedRecord::from_vec(record.as_bytes().to_vec())?;
//! assert_eq!(checked.author(), secret.public());
//! # Ok(())
//! # }
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod view;

pub mod bootstrap;
pub mod content;
mod crypto;
mod encrypted;
mod error;
mod filter;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
mod keys;
mod keyschedule;
mod kind;
pub mod message;
pub mod printable;
mod profile;
mod record;
mod reference;
mod tag;
mod timestamp;
mod url;

pub use bootstrap::{
    BootstrapError, ServerBootstrap, ServerUsage, UserBootstrap, UserBootstrapEntry,
};
pub use content::ContentError;
pub use crypto::{
    CLIENT_AUTH_CONTEXT, RECORD_CONTEXT, SERVER_AUTH_CONTEXT, SignatureError, blake3_xof64,
};
pub use encrypted::{EncryptedKeyError, EncryptedSecretKey};
pub use error::Error;
pub use filter::{
    ElementType, Filter, FilterBuilder, FilterElement, FilterError, IdPrefixes, Keys, Kinds,
    MAX_FILTER_LEN, OwnedFilter, TagList, Timestamps,
};
pub use keys::{KeyError, PublicKey, SecretKey};
pub use keyschedule::{
    ENCRYPTION_KEY_MAGIC, EncryptionAlgorithm, KeyData, KeyMarker, KeySchedule, KeyScheduleEntry,
    KeyScheduleError, SUBKEY_ATTESTATION_MAGIC, SignerStatus, SubkeyAttestation,
    validate_record_signer,
};
pub use kind::{DuplicateHandling, Kind, KindError, KindFlags, ReadAccess};
pub use message::{
    DhtTarget, IdPrefix, MAX_MESSAGE_LEN, MIN_MESSAGE_LEN, Message, MessageError, MessageRef,
    MessageType, QueryId, ResultCategory, ResultCode, blob_hash, frame_len,
};
pub use profile::{CborValue, Profile, ProfileError};
pub use record::{
    HEADER_LEN, MAX_RECORD_LEN, OwnedRecord, Record, RecordBuilder, RecordError, RecordFlags,
    SIGNATURE_LEN, ValidationStep,
};
pub use reference::{Address, Id, Nonce, Reference, ReferenceError};
pub use tag::{OwnedTag, OwnedTagSet, Tag, TagError, TagIter, TagSet, TagType, TagValue};
pub use timestamp::{DateTimeField, Timestamp, TimestampError};
pub use url::{Host, Scheme, Url, UrlError};
