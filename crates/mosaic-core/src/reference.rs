//! Ids, addresses and references (`reference.md`, `record.md`).
//!
//! A record has two 48-byte names. Its [`Id`] (`[0:48]` of the record) is the
//! timestamp followed by the first 40 bytes of the record's hash: it names
//! exactly these bytes. Its [`Address`] (`[48:96]`) is a nonce, the kind and
//! the author's key: it names a slot that replaceable and versioned records
//! share. A [`Reference`] is either, told apart by the first bit (0 for an id,
//! 1 for an address, which is why timestamps stay below 2^63 and nonces start
//! with a 1 bit).

use std::fmt;
use std::str::FromStr;

use crate::keys::{KeyError, PublicKey};
use crate::kind::Kind;
use crate::printable::{self, Prefix, PrintableError};
use crate::timestamp::Timestamp;
use crate::view::array;

/// Why 48 bytes or a `moref0` string are not the reference asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// An address was given where an id is required (the first bit is 1).
    #[error("expected a record id, found an address")]
    NotAnId,
    /// An id was given where an address is required (the first bit is 0).
    #[error("expected a record address, found an id")]
    NotAnAddress,
    /// The author key inside an address is not a valid key.
    #[error("the address's author key is invalid: {0}")]
    AuthorKey(KeyError),
    /// A byte string of the wrong length.
    #[error("a reference is 48 bytes, found {found}")]
    WrongLength {
        /// The length given.
        found: usize,
    },
    /// The `moref0` form is malformed.
    #[error("invalid printable reference: {0}")]
    Printable(#[from] PrintableError),
}

/// The 8-byte nonce that starts an address. Its first bit is always 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Nonce([u8; 8]);

impl Nonce {
    /// Wraps 8 bytes, forcing the first bit to 1 as `record.md` requires.
    pub const fn from_bytes_forced(mut bytes: [u8; 8]) -> Nonce {
        bytes[0] |= 0x80;
        Nonce(bytes)
    }

    /// Wraps 8 bytes that must already start with a 1 bit.
    pub const fn from_bytes(bytes: [u8; 8]) -> Option<Nonce> {
        if bytes[0] & 0x80 == 0 {
            None
        } else {
            Some(Nonce(bytes))
        }
    }

    /// A random nonce from the caller's RNG.
    pub fn random<R: rand_core::Rng + ?Sized>(rng: &mut R) -> Nonce {
        let mut bytes = [0u8; 8];
        rng.fill_bytes(&mut bytes);
        Nonce::from_bytes_forced(bytes)
    }

    /// A nonce derived from a fixed byte string: the first 8 bytes of its
    /// BLAKE3 extended output, first bit forced on. Use it to find a record by
    /// a known key (with a known author and kind).
    pub fn from_key(key: &[u8]) -> Nonce {
        let mut bytes = [0u8; 8];
        let mut hasher = blake3::Hasher::new();
        hasher.update(key);
        hasher.finalize_xof().fill(&mut bytes);
        Nonce::from_bytes_forced(bytes)
    }

    /// A nonce that sorts in time order: the timestamp with its first bit set.
    pub fn from_timestamp(timestamp: Timestamp) -> Nonce {
        Nonce::from_bytes_forced(timestamp.to_be_bytes())
    }

    /// The 8 bytes.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0
    }
}

/// A record id: the timestamp (8 bytes, big-endian) and the first 40 bytes of
/// the record's BLAKE3 hash. Ids sort by time, then by hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id([u8; 48]);

impl Id {
    /// Wraps 48 bytes, which must start with a 0 bit.
    pub fn from_bytes(bytes: &[u8; 48]) -> Result<Id, ReferenceError> {
        if bytes[0] & 0x80 != 0 {
            return Err(ReferenceError::NotAnId);
        }
        Ok(Id(*bytes))
    }

    pub(crate) const fn from_bytes_unchecked(bytes: [u8; 48]) -> Id {
        Id(bytes)
    }

    /// The 48 bytes.
    pub const fn as_bytes(&self) -> &[u8; 48] {
        &self.0
    }

    /// The record's timestamp.
    pub fn timestamp(&self) -> Timestamp {
        // The first bit is 0, so this is below 2^63 and always valid.
        Timestamp::from_nanos(u64::from_be_bytes(array(&self.0, 0))).unwrap_or(Timestamp::MAX)
    }

    /// The first 40 bytes of the record's hash.
    pub fn hash_prefix(&self) -> &[u8] {
        &self.0[8..]
    }

    /// The printable form, `moref0...`.
    pub fn to_printable(&self) -> String {
        printable::encode(Prefix::Reference, &self.0)
    }

    /// Parses a `moref0` string that must hold an id.
    pub fn from_printable(s: &str) -> Result<Id, ReferenceError> {
        Id::from_bytes(&printable::decode_fixed::<48>(Prefix::Reference, s)?)
    }
}

/// A record address: a nonce, the kind and the author's public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address([u8; 48]);

impl Address {
    /// Builds an address from its parts.
    pub fn new(nonce: Nonce, kind: Kind, author: PublicKey) -> Address {
        let mut bytes = [0u8; 48];
        bytes[..8].copy_from_slice(&nonce.to_bytes());
        bytes[8..16].copy_from_slice(&kind.to_be_bytes());
        bytes[16..].copy_from_slice(author.as_bytes());
        Address(bytes)
    }

    /// Wraps 48 bytes, which must start with a 1 bit and end with a valid
    /// author key.
    pub fn from_bytes(bytes: &[u8; 48]) -> Result<Address, ReferenceError> {
        if bytes[0] & 0x80 == 0 {
            return Err(ReferenceError::NotAnAddress);
        }
        PublicKey::from_bytes(&array(bytes, 16)).map_err(ReferenceError::AuthorKey)?;
        Ok(Address(*bytes))
    }

    pub(crate) const fn from_bytes_unchecked(bytes: [u8; 48]) -> Address {
        Address(bytes)
    }

    /// The 48 bytes.
    pub const fn as_bytes(&self) -> &[u8; 48] {
        &self.0
    }

    /// The nonce.
    pub fn nonce(&self) -> Nonce {
        Nonce(array(&self.0, 0))
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        Kind::from_u64(u64::from_be_bytes(array(&self.0, 8)))
    }

    /// The author's public key.
    pub fn author(&self) -> PublicKey {
        PublicKey::from_bytes_unchecked(array(&self.0, 16))
    }

    /// The printable form, `moref0...`.
    pub fn to_printable(&self) -> String {
        printable::encode(Prefix::Reference, &self.0)
    }

    /// Parses a `moref0` string that must hold an address.
    pub fn from_printable(s: &str) -> Result<Address, ReferenceError> {
        Address::from_bytes(&printable::decode_fixed::<48>(Prefix::Reference, s)?)
    }
}

/// A reference to a record: an [`Id`] or an [`Address`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Reference {
    /// Names exactly one record.
    Id(Id),
    /// Names a slot: the latest record (or all versions) at that address.
    Address(Address),
}

impl Reference {
    /// Reads 48 bytes: an id when the first bit is 0, else an address.
    pub fn from_bytes(bytes: &[u8; 48]) -> Result<Reference, ReferenceError> {
        if bytes[0] & 0x80 == 0 {
            Ok(Reference::Id(Id(*bytes)))
        } else {
            Address::from_bytes(bytes).map(Reference::Address)
        }
    }

    /// Reads 48 bytes from a slice of exactly that length.
    pub fn from_slice(bytes: &[u8]) -> Result<Reference, ReferenceError> {
        let arr: &[u8; 48] = bytes
            .try_into()
            .map_err(|_| ReferenceError::WrongLength { found: bytes.len() })?;
        Reference::from_bytes(arr)
    }

    /// The 48 bytes.
    pub const fn as_bytes(&self) -> &[u8; 48] {
        match self {
            Reference::Id(id) => id.as_bytes(),
            Reference::Address(addr) => addr.as_bytes(),
        }
    }

    /// The printable form, `moref0...`.
    pub fn to_printable(&self) -> String {
        printable::encode(Prefix::Reference, self.as_bytes())
    }

    /// Parses a `moref0` string.
    pub fn from_printable(s: &str) -> Result<Reference, ReferenceError> {
        Reference::from_bytes(&printable::decode_fixed::<48>(Prefix::Reference, s)?)
    }
}

impl From<Id> for Reference {
    fn from(id: Id) -> Self {
        Reference::Id(id)
    }
}

impl From<Address> for Reference {
    fn from(addr: Address) -> Self {
        Reference::Address(addr)
    }
}

macro_rules! printable_impls {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_printable())
            }
        }

        impl FromStr for $ty {
            type Err = ReferenceError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::from_printable(s)
            }
        }
    };
}

printable_impls!(Id);
printable_impls!(Address);
printable_impls!(Reference);

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.to_printable())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.to_printable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    #[test]
    fn id_and_address_are_told_apart() {
        let author = SecretKey::from_bytes(&[1u8; 32]).public();
        let addr = Address::new(Nonce::from_key(b"x"), Kind::from_u64(0x1_0001_001c), author);
        assert_eq!(addr.author(), author);
        assert_eq!(addr.kind(), Kind::from_u64(0x1_0001_001c));
        let printed = addr.to_printable();
        assert_eq!(Address::from_printable(&printed).unwrap(), addr);
        assert_eq!(Id::from_printable(&printed), Err(ReferenceError::NotAnId));
        assert_eq!(
            Reference::from_printable(&printed).unwrap(),
            Reference::Address(addr)
        );

        let id = Id::from_bytes(&[0x11u8; 48]).unwrap();
        assert_eq!(
            Address::from_bytes(id.as_bytes()),
            Err(ReferenceError::NotAnAddress)
        );
        assert_eq!(
            Reference::from_slice(id.as_bytes()).unwrap(),
            Reference::Id(id)
        );
        assert!(matches!(
            Reference::from_slice(&[0u8; 47]),
            Err(ReferenceError::WrongLength { found: 47 })
        ));
    }

    #[test]
    fn nonce_first_bit_is_forced() {
        assert_eq!(Nonce::from_bytes_forced([0; 8]).to_bytes()[0], 0x80);
        assert!(Nonce::from_bytes([0x7f; 8]).is_none());
    }
}
