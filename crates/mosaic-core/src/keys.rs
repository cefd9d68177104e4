//! Ed25519 keys: [`PublicKey`] and [`SecretKey`] (`identity.md`, `cryptography.md`).

use std::fmt;
use std::str::FromStr;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use zeroize::Zeroize;

use crate::crypto::{self, Expanded, SignatureError};
use crate::printable::{self, Prefix, PrintableError};

/// Why bytes or text are not a usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The 32 bytes do not decode to a point on the curve; the key was
    /// corrupted or is not an ed25519 public key.
    #[error("public key is not a point on the curve")]
    NotOnCurve,
    /// The point is encoded non-canonically (a y coordinate of p or more, or a
    /// sign bit on x = 0). Only the canonical encoding is a Mosaic key.
    #[error("public key is not canonically encoded")]
    NonCanonical,
    /// The point has small order (one of the 8 weak keys); anyone could forge
    /// signatures for it.
    #[error("public key is one of the 8 small-order points")]
    SmallOrder,
    /// A byte string of the wrong length was given where 32 bytes belong.
    #[error("a key is 32 bytes, found {found}")]
    WrongLength {
        /// The length given.
        found: usize,
    },
    /// The key's printable form is malformed.
    #[error("invalid printable key: {0}")]
    Printable(#[from] PrintableError),
}

/// An ed25519 public key, valid for Mosaic: a canonical encoding of a point
/// that is not of small order.
///
/// Displayed in its user form (`mopub0...`); use
/// [`to_server_printable`](Self::to_server_printable) for the server form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Length of a public key in bytes.
    pub const LEN: usize = 32;

    /// Checks and wraps 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        PublicKey::decode(bytes).map(|(key, _)| key)
    }

    /// Checks 32 bytes as [`from_bytes`](Self::from_bytes) does, and also
    /// returns the decompressed point, so that a caller about to verify a
    /// signature by this key does not decompress it a second time.
    pub(crate) fn decode(bytes: &[u8; 32]) -> Result<(PublicKey, EdwardsPoint), KeyError> {
        let point = CompressedEdwardsY(*bytes)
            .decompress()
            .ok_or(KeyError::NotOnCurve)?;
        if !crypto::is_canonical_encoding(bytes) {
            return Err(KeyError::NonCanonical);
        }
        if point.is_small_order() {
            return Err(KeyError::SmallOrder);
        }
        Ok((PublicKey(*bytes), point))
    }

    /// Wraps bytes already checked by [`from_bytes`](Self::from_bytes), such as
    /// those inside a validated record.
    pub(crate) const fn from_bytes_unchecked(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }

    /// The 32 bytes of the key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 32 bytes of the key, copied.
    pub const fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The user form, `mopub0...`.
    pub fn to_printable(&self) -> String {
        printable::encode(Prefix::UserPublicKey, &self.0)
    }

    /// The server form, `mosrv0...`.
    pub fn to_server_printable(&self) -> String {
        printable::encode(Prefix::ServerPublicKey, &self.0)
    }

    /// Parses the user form, `mopub0...`.
    pub fn from_printable(s: &str) -> Result<PublicKey, KeyError> {
        PublicKey::from_bytes(&printable::decode_fixed::<32>(Prefix::UserPublicKey, s)?)
    }

    /// Parses the server form, `mosrv0...`.
    pub fn from_server_printable(s: &str) -> Result<PublicKey, KeyError> {
        PublicKey::from_bytes(&printable::decode_fixed::<32>(Prefix::ServerPublicKey, s)?)
    }

    /// Parses either form, `mopub0...` or `mosrv0...`, for places where a
    /// person may paste either.
    pub fn from_any_printable(s: &str) -> Result<PublicKey, KeyError> {
        if s.starts_with(Prefix::ServerPublicKey.as_str()) {
            PublicKey::from_server_printable(s)
        } else {
            PublicKey::from_printable(s)
        }
    }

    /// Verifies a Mosaic Ed25519ph signature over a 64-byte prehash under
    /// `context` (strict, cofactored).
    pub fn verify_prehashed(
        &self,
        prehash: &[u8; 64],
        context: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), SignatureError> {
        let point = crypto::decompress_public(&self.0).ok_or(SignatureError::InvalidPublicKey)?;
        crypto::verify_prehashed(&self.0, &point, prehash, context, signature)
    }

    /// Verifies a signature made by [`SecretKey::sign`] over `data`.
    pub fn verify(
        &self,
        data: &[u8],
        context: &[u8],
        signature: &[u8; 64],
    ) -> Result<(), SignatureError> {
        self.verify_prehashed(&crypto::blake3_xof64(data), context, signature)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_printable())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_printable())
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PublicKey::from_any_printable(s)
    }
}

impl TryFrom<&[u8]> for PublicKey {
    type Error = KeyError;
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| KeyError::WrongLength { found: bytes.len() })?;
        PublicKey::from_bytes(&arr)
    }
}

/// An ed25519 secret key (the 32-byte seed), with its expanded form and public
/// key kept ready for signing.
///
/// `Debug` never shows the secret, and the memory is wiped on drop.
pub struct SecretKey {
    seed: [u8; 32],
    expanded: Expanded,
    public: PublicKey,
}

impl SecretKey {
    /// Length of a secret key in bytes.
    pub const LEN: usize = 32;

    /// Generates a new key from the caller's cryptographic RNG.
    pub fn generate<R: rand_core::CryptoRng + ?Sized>(rng: &mut R) -> SecretKey {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let key = SecretKey::from_bytes(&seed);
        seed.zeroize();
        key
    }

    /// Wraps a 32-byte seed. Every seed is a valid key.
    pub fn from_bytes(seed: &[u8; 32]) -> SecretKey {
        let expanded = Expanded::from_seed(seed);
        let public = PublicKey(expanded.public_point().compress().to_bytes());
        SecretKey {
            seed: *seed,
            expanded,
            public,
        }
    }

    /// The 32-byte seed. Handle with care.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.seed
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The printable form, `mosec0...`. Prefer
    /// [`EncryptedSecretKey`](crate::EncryptedSecretKey) for anything stored.
    pub fn to_printable(&self) -> String {
        printable::encode(Prefix::SecretKey, &self.seed)
    }

    /// Parses the printable form, `mosec0...`.
    pub fn from_printable(s: &str) -> Result<SecretKey, KeyError> {
        let mut seed = printable::decode_fixed::<32>(Prefix::SecretKey, s)?;
        let key = SecretKey::from_bytes(&seed);
        seed.zeroize();
        Ok(key)
    }

    /// Signs a 64-byte prehash with Ed25519ph under `context`.
    pub fn sign_prehashed(&self, prehash: &[u8; 64], context: &[u8]) -> [u8; 64] {
        crypto::sign_prehashed(&self.expanded, self.public.as_bytes(), prehash, context)
    }

    /// Signs `data` the Mosaic way: Ed25519ph over BLAKE3-XOF64 of `data`,
    /// under `context` ([`RECORD_CONTEXT`](crate::RECORD_CONTEXT) for records).
    pub fn sign(&self, data: &[u8], context: &[u8]) -> [u8; 64] {
        self.sign_prehashed(&crypto::blake3_xof64(data), context)
    }
}

impl Clone for SecretKey {
    fn clone(&self) -> Self {
        SecretKey::from_bytes(&self.seed)
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        // Constant time is not needed to compare two secrets we hold, but
        // costs nothing.
        self.seed
            .iter()
            .zip(other.seed.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for SecretKey {}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<redacted>, public: {})", self.public)
    }
}

impl FromStr for SecretKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SecretKey::from_printable(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::RECORD_CONTEXT;

    #[test]
    fn printable_round_trip() {
        let sk = SecretKey::from_bytes(&[9u8; 32]);
        let pk = sk.public();
        assert_eq!(PublicKey::from_printable(&pk.to_printable()).unwrap(), pk);
        assert_eq!(
            PublicKey::from_server_printable(&pk.to_server_printable()).unwrap(),
            pk
        );
        assert_eq!(SecretKey::from_printable(&sk.to_printable()).unwrap(), sk);
        assert!(PublicKey::from_printable(&pk.to_server_printable()).is_err());
        assert!(!format!("{sk:?}").contains(&sk.to_printable()));
    }

    #[test]
    fn small_order_points_refused() {
        // The identity (y = 1) and the point of order 2 (y = -1).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::SmallOrder));
        let mut order2 = [0xffu8; 32];
        order2[0] = 0xec;
        order2[31] = 0x7f;
        assert_eq!(PublicKey::from_bytes(&order2), Err(KeyError::SmallOrder));
        // y = p + 1 is a non-canonical encoding of the identity.
        let mut noncanon = [0xffu8; 32];
        noncanon[0] = 0xee;
        noncanon[31] = 0x7f;
        assert!(PublicKey::from_bytes(&noncanon).is_err());
    }

    #[test]
    fn sign_and_verify() {
        let sk = SecretKey::from_bytes(&[3u8; 32]);
        let sig = sk.sign(b"hello", RECORD_CONTEXT);
        sk.public().verify(b"hello", RECORD_CONTEXT, &sig).unwrap();
        assert!(sk.public().verify(b"hellO", RECORD_CONTEXT, &sig).is_err());
    }
}
