//! Human encodings: z-base-32 with a Mosaic prefix (`human_encodings.md`).
//!
//! Every printable form is `prefix || zbase32(bytes)`. The body is the
//! canonical z-base-32 encoding: exactly `ceil(8 * len / 5)` characters from
//! the alphabet `ybndrfg8ejkmcpqxot1uwisza345h769`, with the unused low bits
//! of the last character zero. Anything else is refused, so every value has
//! exactly one printable form.

/// The z-base-32 alphabet, in value order.
const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

/// Maps an ASCII byte to its 5-bit value, or `0xff` when it is not in the alphabet.
const DECODE: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 32 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The prefixes of Mosaic's printable forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Prefix {
    /// `mopub0`: a user's public key (32 bytes).
    UserPublicKey,
    /// `mosrv0`: a server's public key (32 bytes).
    ServerPublicKey,
    /// `mosec0`: a secret key (32 bytes).
    SecretKey,
    /// `mocryptsec0`: a password-encrypted secret key (58 bytes).
    EncryptedSecretKey,
    /// `moref0`: a reference, an id or an address (48 bytes).
    Reference,
    /// `morecord0`: a whole record (variable length).
    Record,
}

impl Prefix {
    /// Every prefix, for callers that detect which form a string has.
    pub const ALL: [Prefix; 6] = [
        Prefix::UserPublicKey,
        Prefix::ServerPublicKey,
        Prefix::SecretKey,
        Prefix::EncryptedSecretKey,
        Prefix::Reference,
        Prefix::Record,
    ];

    /// The literal prefix text, such as `"mopub0"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Prefix::UserPublicKey => "mopub0",
            Prefix::ServerPublicKey => "mosrv0",
            Prefix::SecretKey => "mosec0",
            Prefix::EncryptedSecretKey => "mocryptsec0",
            Prefix::Reference => "moref0",
            Prefix::Record => "morecord0",
        }
    }

    /// The prefix a printable string starts with, if any.
    pub fn detect(s: &str) -> Option<Prefix> {
        // `mocryptsec0` and `mosec0` share no prefix with each other, so the
        // first match is the only one.
        Prefix::ALL.into_iter().find(|p| s.starts_with(p.as_str()))
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a printable string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrintableError {
    /// The string does not start with the expected prefix. Check which kind of
    /// value was pasted (a `mosec0` where a `mopub0` belongs, say).
    #[error("expected a printable starting with {expected}, found {found:?}")]
    WrongPrefix {
        /// The prefix that was required.
        expected: Prefix,
        /// The start of what was given (at most 12 characters).
        found: String,
    },
    /// A character outside the z-base-32 alphabet.
    #[error("character {character:?} at index {index} is not z-base-32")]
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// Its character index within the body (after the prefix).
        index: usize,
    },
    /// The body has the wrong number of characters for the value.
    #[error("a {prefix} body must be {expected} characters long, found {found}")]
    WrongLength {
        /// The prefix of the value.
        prefix: Prefix,
        /// The required body length in characters.
        expected: usize,
        /// The body length given.
        found: usize,
    },
    /// The body has a length no byte string encodes to.
    #[error("{found} characters is not the length of any z-base-32 encoding")]
    ImpossibleLength {
        /// The body length given.
        found: usize,
    },
    /// The unused bits of the last character are not zero, so this is not the
    /// canonical encoding of any value.
    #[error("the last character has non-zero padding bits: not a canonical encoding")]
    NonCanonical,
}

/// Number of z-base-32 characters that encode `len` bytes.
pub const fn encoded_len(len: usize) -> usize {
    (len * 8).div_ceil(5)
}

/// Encodes bytes as canonical z-base-32 (no prefix).
pub fn zbase32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 0x1f) as usize] as char);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 0x1f) as usize] as char);
    }
    out
}

/// Decodes a canonical z-base-32 body (no prefix).
///
/// Refuses characters outside the alphabet, lengths that no byte string
/// encodes to, and non-zero padding bits.
pub fn zbase32_decode(body: &str) -> Result<Vec<u8>, PrintableError> {
    let chars = body.len();
    let len = chars * 5 / 8;
    if encoded_len(len) != chars {
        // Also reached for non-ASCII input, whose byte length differs; the
        // character check below would refuse it anyway.
        if let Some((index, character)) = body
            .chars()
            .enumerate()
            .find(|(_, c)| !c.is_ascii() || DECODE[*c as usize] == 0xff)
        {
            return Err(PrintableError::InvalidCharacter { character, index });
        }
        return Err(PrintableError::ImpossibleLength { found: chars });
    }
    let mut out = Vec::with_capacity(len);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for (index, &c) in body.as_bytes().iter().enumerate() {
        let v = DECODE[c as usize];
        if v == 0xff {
            let character = body[index..].chars().next().unwrap_or('\u{fffd}');
            return Err(PrintableError::InvalidCharacter { character, index });
        }
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return Err(PrintableError::NonCanonical);
    }
    Ok(out)
}

/// Encodes `bytes` with `prefix`.
pub fn encode(prefix: Prefix, bytes: &[u8]) -> String {
    let mut s = String::with_capacity(prefix.as_str().len() + encoded_len(bytes.len()));
    s.push_str(prefix.as_str());
    s.push_str(&zbase32_encode(bytes));
    s
}

/// Decodes a printable string of a variable-length value, checking its prefix.
pub fn decode(prefix: Prefix, s: &str) -> Result<Vec<u8>, PrintableError> {
    let body = strip(prefix, s)?;
    zbase32_decode(body)
}

/// Decodes a printable string of a fixed-length value, checking its prefix
/// and its exact length.
pub fn decode_fixed<const N: usize>(prefix: Prefix, s: &str) -> Result<[u8; N], PrintableError> {
    let body = strip(prefix, s)?;
    let expected = encoded_len(N);
    if body.len() != expected {
        // Report a bad character first when there is one: it is the more
        // useful message for a mistyped key.
        if let Err(e @ PrintableError::InvalidCharacter { .. }) = zbase32_decode(body) {
            return Err(e);
        }
        return Err(PrintableError::WrongLength {
            prefix,
            expected,
            found: body.chars().count(),
        });
    }
    let bytes = zbase32_decode(body)?;
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes);
    Ok(out)
}

fn strip(prefix: Prefix, s: &str) -> Result<&str, PrintableError> {
    s.strip_prefix(prefix.as_str())
        .ok_or_else(|| PrintableError::WrongPrefix {
            expected: prefix,
            found: s.chars().take(12).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        for len in 0..70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let enc = zbase32_encode(&bytes);
            assert_eq!(enc.len(), encoded_len(len));
            assert_eq!(zbase32_decode(&enc).unwrap(), bytes);
        }
    }

    #[test]
    fn known_key_encoding() {
        // key_00 of the vectors: the public key of the all-zero seed.
        let pk = hex_literal("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29");
        assert_eq!(
            encode(Prefix::UserPublicKey, &pk),
            "mopub08pinxxgqs41n4aididenw5apqp1urfmzdztr8jt4abrkdn435ewo"
        );
    }

    #[test]
    fn refuses_non_canonical_padding() {
        // 'y' is 0 and 'b' is 1: one byte is 2 characters with 2 padding bits.
        assert_eq!(zbase32_decode("yy").unwrap(), vec![0]);
        assert_eq!(zbase32_decode("yb"), Err(PrintableError::NonCanonical));
    }

    #[test]
    fn refuses_bad_characters_and_lengths() {
        assert!(matches!(
            zbase32_decode("yl"),
            Err(PrintableError::InvalidCharacter {
                character: 'l',
                index: 1
            })
        ));
        assert!(matches!(
            zbase32_decode("yyy"),
            Err(PrintableError::ImpossibleLength { found: 3 })
        ));
        assert!(matches!(
            decode_fixed::<32>(Prefix::UserPublicKey, "mopub0yyyy"),
            Err(PrintableError::WrongLength {
                expected: 52,
                found: 4,
                ..
            })
        ));
        assert!(matches!(
            decode_fixed::<32>(Prefix::UserPublicKey, "mosec0yyyy"),
            Err(PrintableError::WrongPrefix { .. })
        ));
        assert!(zbase32_decode("yé").is_err());
    }

    fn hex_literal(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
