//! User profiles (`profile.md`): a CBOR map with snake_case text keys.
//!
//! A profile is a record of kind [`Kind::PROFILE`] (`0x0000_0000_0002_000e`:
//! replaceable, everybody, not printable) signed by the master key itself.
//! Its payload is a CBOR map; `name` is required, the other known fields are
//! optional, and fields this crate does not know are kept as
//! [`CborValue`]s, so that a profile read and written again loses nothing.
//!
//! Decisions where `profile.md` is silent:
//!
//! - **Keys are text** (SPEC-NOTES section 3): a map with any other key type
//!   (the reference library writes integers) is refused, as is a key that
//!   appears twice.
//! - **`name`** must be non-empty and only "typeable ASCII" (`' '..='~'`).
//! - **Known fields have their types**: text for `name`, `display_name`,
//!   `about`, `avatar`, `website`, `banner` and `lud16`; booleans for `org`
//!   and `bot`. Another type is an error; `null` counts as absent.
//! - **Bounds**: payloads above [`Profile::MAX_PAYLOAD_LEN`] bytes and
//!   values nested deeper than [`Profile::MAX_DEPTH`] are refused, as are
//!   trailing bytes after the map.
//! - **Encoding** is deterministic: map keys sorted by their encoded bytes
//!   (RFC 8949 section 4.2.1), lengths in their shortest form, absent fields
//!   omitted; a float is written as f32 when that is exact, else as f64.
//!   Values of unknown fields are written back as they were read (nested
//!   maps keep their order).

use std::collections::{BTreeMap, BTreeSet};

pub use ciborium::value::Value as CborValue;
use ciborium::value::Value;

use crate::keys::{PublicKey, SecretKey};
use crate::kind::Kind;
use crate::record::{OwnedRecord, Record, RecordBuilder, RecordError};
use crate::reference::Nonce;
use crate::timestamp::Timestamp;

/// Why a profile payload or record is invalid, or a profile cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The record is not of kind [`Kind::PROFILE`]: it is something else.
    #[error("kind {:#018x} is not a profile", kind.as_u64())]
    WrongKind {
        /// The record's kind.
        kind: Kind,
    },
    /// The record was signed by a subkey; profiles must be signed by the
    /// master key. The record is invalid.
    #[error("signed by {signer}, not by the master key {author}")]
    NotSignedByMaster {
        /// The record's author.
        author: PublicKey,
        /// The key that signed it.
        signer: PublicKey,
    },
    /// The payload is larger than this crate reads as a profile.
    #[error("profile payload of {len} bytes exceeds {max}")]
    TooLarge {
        /// The payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not well-formed CBOR (or hold invalid UTF-8 text).
    #[error("malformed CBOR (at byte {offset:?})")]
    Malformed {
        /// Where the decoder stopped, when known.
        offset: Option<usize>,
    },
    /// The CBOR ended in the middle of an item.
    #[error("the CBOR is truncated")]
    Truncated,
    /// Bytes follow the map.
    #[error("{len} bytes follow the profile map")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
    /// Values are nested deeper than [`Profile::MAX_DEPTH`].
    #[error("CBOR nested deeper than {max}")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// The payload is not a CBOR map.
    #[error("the profile is not a CBOR map")]
    NotAMap,
    /// A map key is not text (the spec asks for snake_case text keys).
    #[error("map entry {index} has a key that is not text")]
    NonTextKey {
        /// Index of the entry in the map.
        index: usize,
    },
    /// A key appears twice.
    #[error("key {key:?} appears twice")]
    DuplicateKey {
        /// The key.
        key: String,
    },
    /// The required `name` is absent (or null).
    #[error("the profile has no name")]
    MissingName,
    /// `name` is empty.
    #[error("the profile name is empty")]
    EmptyName,
    /// `name` holds a character that is not typeable ASCII.
    #[error("the profile name holds {character:?}, which is not typeable ASCII")]
    NameNotAscii {
        /// The first offending character.
        character: char,
    },
    /// A known field has the wrong CBOR type.
    #[error("field {field} has the wrong type")]
    FieldType {
        /// The field.
        field: &'static str,
    },
    /// [`Profile::set_extra`] was given the name of a known field; set the
    /// typed field instead.
    #[error("{key:?} is a known field")]
    KnownField {
        /// The key.
        key: String,
    },
    /// The record could not be read or built (payload decompression, size).
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// The fields `profile.md` defines, in the order it lists them.
const KNOWN_FIELDS: [&str; 9] = [
    "name",
    "display_name",
    "about",
    "avatar",
    "website",
    "banner",
    "org",
    "bot",
    "lud16",
];

/// A user profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    name: String,
    /// A name for display, in any UTF-8.
    pub display_name: Option<String>,
    /// Prose the user writes about themself.
    pub about: Option<String>,
    /// URL of a square avatar picture.
    pub avatar: Option<String>,
    /// URL of the user's website.
    pub website: Option<String>,
    /// URL of a background picture (1024x768).
    pub banner: Option<String>,
    /// Whether the profile is an organisation's.
    pub org: Option<bool>,
    /// Whether the profile is a bot's.
    pub bot: Option<bool>,
    /// A lightning payment address (LUD-16).
    pub lud16: Option<String>,
    extra: BTreeMap<String, Value>,
}

impl Profile {
    /// Largest payload read as a profile, in bytes.
    pub const MAX_PAYLOAD_LEN: usize = 65_536;
    /// Deepest nesting of CBOR values, counting the profile map itself.
    pub const MAX_DEPTH: usize = 16;

    /// A profile with only a name.
    pub fn new(name: impl Into<String>) -> Result<Profile, ProfileError> {
        let name = name.into();
        check_name(&name)?;
        Ok(Profile {
            name,
            display_name: None,
            about: None,
            avatar: None,
            website: None,
            banner: None,
            org: None,
            bot: None,
            lud16: None,
            extra: BTreeMap::new(),
        })
    }

    /// The convention this crate uses for a profile's address nonce, so
    /// that each new profile replaces the last: the key `"mosaic profile"`
    /// (see [`Nonce::from_key`]). The spec fixes no nonce; readers should
    /// take the author's newest profile whatever its nonce.
    pub fn default_nonce() -> Nonce {
        Nonce::from_key(b"mosaic profile")
    }

    /// The name used for `@name` mentions.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Changes the name.
    pub fn set_name(&mut self, name: impl Into<String>) -> Result<(), ProfileError> {
        let name = name.into();
        check_name(&name)?;
        self.name = name;
        Ok(())
    }

    /// The fields this crate does not know.
    pub fn extra(&self) -> &BTreeMap<String, CborValue> {
        &self.extra
    }

    /// One unknown field's value.
    pub fn extra_value(&self, key: &str) -> Option<&CborValue> {
        self.extra.get(key)
    }

    /// Sets an unknown field, returning its previous value.
    pub fn set_extra(
        &mut self,
        key: impl Into<String>,
        value: CborValue,
    ) -> Result<Option<CborValue>, ProfileError> {
        let key = key.into();
        if KNOWN_FIELDS.contains(&key.as_str()) {
            return Err(ProfileError::KnownField { key });
        }
        if depth(&value, Profile::MAX_DEPTH) >= Profile::MAX_DEPTH {
            return Err(ProfileError::TooDeep {
                max: Profile::MAX_DEPTH,
            });
        }
        Ok(self.extra.insert(key, value))
    }

    /// Removes an unknown field, returning its value.
    pub fn remove_extra(&mut self, key: &str) -> Option<CborValue> {
        self.extra.remove(key)
    }

    /// Reads a profile payload.
    pub fn from_payload(payload: &[u8]) -> Result<Profile, ProfileError> {
        if payload.len() > Profile::MAX_PAYLOAD_LEN {
            return Err(ProfileError::TooLarge {
                len: payload.len(),
                max: Profile::MAX_PAYLOAD_LEN,
            });
        }
        let mut reader = payload;
        let value: Value =
            ciborium::de::from_reader_with_recursion_limit(&mut reader, Profile::MAX_DEPTH)
                .map_err(|e| match e {
                    ciborium::de::Error::Io(_) => ProfileError::Truncated,
                    ciborium::de::Error::Syntax(offset) => ProfileError::Malformed {
                        offset: Some(offset),
                    },
                    ciborium::de::Error::Semantic(offset, _) => ProfileError::Malformed { offset },
                    ciborium::de::Error::RecursionLimitExceeded => ProfileError::TooDeep {
                        max: Profile::MAX_DEPTH,
                    },
                })?;
        if !reader.is_empty() {
            return Err(ProfileError::TrailingBytes { len: reader.len() });
        }
        let Value::Map(entries) = value else {
            return Err(ProfileError::NotAMap);
        };

        let mut seen = BTreeSet::new();
        let mut name = None;
        let mut profile = Profile {
            name: String::new(),
            display_name: None,
            about: None,
            avatar: None,
            website: None,
            banner: None,
            org: None,
            bot: None,
            lud16: None,
            extra: BTreeMap::new(),
        };
        for (index, (key, value)) in entries.into_iter().enumerate() {
            let Value::Text(key) = key else {
                return Err(ProfileError::NonTextKey { index });
            };
            if !seen.insert(key.clone()) {
                return Err(ProfileError::DuplicateKey { key });
            }
            match key.as_str() {
                "name" => name = text(value, "name")?,
                "display_name" => profile.display_name = text(value, "display_name")?,
                "about" => profile.about = text(value, "about")?,
                "avatar" => profile.avatar = text(value, "avatar")?,
                "website" => profile.website = text(value, "website")?,
                "banner" => profile.banner = text(value, "banner")?,
                "lud16" => profile.lud16 = text(value, "lud16")?,
                "org" => profile.org = boolean(value, "org")?,
                "bot" => profile.bot = boolean(value, "bot")?,
                _ => {
                    profile.extra.insert(key, value);
                }
            }
        }
        let name = name.ok_or(ProfileError::MissingName)?;
        check_name(&name)?;
        profile.name = name;
        Ok(profile)
    }

    /// The payload: a deterministic CBOR map (see the module docs).
    pub fn to_payload(&self) -> Vec<u8> {
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut add = |key: &str, value: &Value| {
            let mut k = Vec::new();
            encode_text(&mut k, key);
            let mut v = Vec::new();
            encode_value(&mut v, value);
            fields.push((k, v));
        };
        let text_fields = [
            ("name", Some(&self.name)),
            ("display_name", self.display_name.as_ref()),
            ("about", self.about.as_ref()),
            ("avatar", self.avatar.as_ref()),
            ("website", self.website.as_ref()),
            ("banner", self.banner.as_ref()),
            ("lud16", self.lud16.as_ref()),
        ];
        for (key, value) in text_fields {
            if let Some(value) = value {
                add(key, &Value::Text(value.clone()));
            }
        }
        for (key, value) in [("org", self.org), ("bot", self.bot)] {
            if let Some(value) = value {
                add(key, &Value::Bool(value));
            }
        }
        for (key, value) in &self.extra {
            add(key, value);
        }
        fields.sort();
        let mut out = Vec::new();
        encode_head(&mut out, 5, fields.len() as u64);
        for (k, v) in fields {
            out.extend_from_slice(&k);
            out.extend_from_slice(&v);
        }
        out
    }

    /// Reads a profile record: checks its kind and that the master key
    /// signed it, then reads the payload.
    pub fn from_record(record: &Record) -> Result<Profile, ProfileError> {
        if record.kind() != Kind::PROFILE {
            return Err(ProfileError::WrongKind {
                kind: record.kind(),
            });
        }
        if record.signing_key() != record.author() {
            return Err(ProfileError::NotSignedByMaster {
                author: record.author(),
                signer: record.signing_key(),
            });
        }
        Profile::from_payload(&record.payload_decompressed()?)
    }

    /// Builds and signs the profile record with the master key.
    pub fn build_record(
        &self,
        master: &SecretKey,
        timestamp: Timestamp,
        nonce: Nonce,
    ) -> Result<OwnedRecord, ProfileError> {
        let payload = self.to_payload();
        if payload.len() > Profile::MAX_PAYLOAD_LEN {
            return Err(ProfileError::TooLarge {
                len: payload.len(),
                max: Profile::MAX_PAYLOAD_LEN,
            });
        }
        Ok(RecordBuilder::new(Kind::PROFILE, timestamp)
            .nonce(nonce)
            .payload(&payload)
            .build(master)?)
    }
}

fn check_name(name: &str) -> Result<(), ProfileError> {
    if name.is_empty() {
        return Err(ProfileError::EmptyName);
    }
    match name.chars().find(|c| !(' '..='~').contains(c)) {
        Some(character) => Err(ProfileError::NameNotAscii { character }),
        None => Ok(()),
    }
}

fn text(value: Value, field: &'static str) -> Result<Option<String>, ProfileError> {
    match value {
        Value::Text(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        _ => Err(ProfileError::FieldType { field }),
    }
}

fn boolean(value: Value, field: &'static str) -> Result<Option<bool>, ProfileError> {
    match value {
        Value::Bool(b) => Ok(Some(b)),
        Value::Null => Ok(None),
        _ => Err(ProfileError::FieldType { field }),
    }
}

/// How deeply `value` nests (a scalar is 1), counting no further than `max`.
fn depth(value: &Value, max: usize) -> usize {
    if max == 0 {
        return 0;
    }
    1 + match value {
        Value::Array(items) => items.iter().map(|v| depth(v, max - 1)).max().unwrap_or(0),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| depth(k, max - 1).max(depth(v, max - 1)))
            .max()
            .unwrap_or(0),
        Value::Tag(_, inner) => depth(inner, max - 1),
        _ => 0,
    }
}

/// A CBOR head: major type and argument, in the shortest form.
fn encode_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_text(out: &mut Vec<u8>, s: &str) {
    encode_head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Integer(i) => {
            let i = i128::from(*i);
            if i >= 0 {
                encode_head(out, 0, i as u64);
            } else {
                encode_head(out, 1, (-1 - i) as u64);
            }
        }
        Value::Bytes(b) => {
            encode_head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Float(f) => {
            let narrow = *f as f32;
            if f64::from(narrow) == *f {
                out.push(0xfa);
                out.extend_from_slice(&narrow.to_be_bytes());
            } else {
                out.push(0xfb);
                out.extend_from_slice(&f.to_be_bytes());
            }
        }
        Value::Text(s) => encode_text(out, s),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Tag(tag, inner) => {
            encode_head(out, 6, *tag);
            encode_value(out, inner);
        }
        Value::Array(items) => {
            encode_head(out, 4, items.len() as u64);
            for item in items {
                encode_value(out, item);
            }
        }
        Value::Map(entries) => {
            encode_head(out, 5, entries.len() as u64);
            for (k, v) in entries {
                encode_value(out, k);
                encode_value(out, v);
            }
        }
        // `Value::Null`, and any variant a later ciborium adds (none exist
        // in 0.2).
        _ => out.push(0xf6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordFlags;

    fn ts(n: u64) -> Timestamp {
        Timestamp::from_nanos(n).unwrap()
    }

    fn cbor(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(value, &mut out).unwrap();
        out
    }

    fn text_map(entries: &[(&str, Value)]) -> Vec<u8> {
        cbor(&Value::Map(
            entries
                .iter()
                .map(|(k, v)| (Value::Text((*k).into()), v.clone()))
                .collect(),
        ))
    }

    fn full() -> Profile {
        let mut p = Profile::new("carol").unwrap();
        p.display_name = Some("Carol 🎉".into());
        p.about = Some("About text\nwith newline".into());
        p.avatar = Some("https://carol.example/a.png".into());
        p.website = Some("https://carol.example".into());
        p.banner = Some("https://carol.example/b.png".into());
        p.org = Some(true);
        p.bot = Some(false);
        p.lud16 = Some("carol@example.com".into());
        p.set_extra("pronouns", Value::Text("she/her".into()))
            .unwrap();
        p.set_extra(
            "nested",
            Value::Map(vec![
                (Value::Text("z".into()), Value::Integer((-500).into())),
                (Value::Text("a".into()), Value::Float(1.5)),
                (
                    Value::Text("f".into()),
                    Value::Array(vec![Value::Float(0.1), Value::Null, Value::Bytes(vec![1])]),
                ),
                (
                    Value::Integer(7.into()),
                    Value::Tag(32, Box::new(Value::Text("x".into()))),
                ),
            ]),
        )
        .unwrap();
        p
    }

    #[test]
    fn round_trip_keeps_everything() {
        let p = full();
        let bytes = p.to_payload();
        let back = Profile::from_payload(&bytes).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.to_payload(), bytes);
        // ciborium reads our encoding as the same map.
        let value: Value = ciborium::de::from_reader(bytes.as_slice()).unwrap();
        assert!(matches!(value, Value::Map(ref m) if m.len() == 11));
    }

    #[test]
    fn encoding_is_deterministic() {
        let mut p = Profile::new("bob").unwrap();
        p.bot = Some(true);
        p.about = Some("hi".into());
        p.set_extra("a_long_key", Value::Integer(1.into())).unwrap();
        p.set_extra("zz", Value::Integer(300.into())).unwrap();
        // Keys sort by encoded bytes: shorter first, then bytewise.
        let expected = text_map(&[
            ("zz", Value::Integer(300.into())),
            ("bot", Value::Bool(true)),
            ("name", Value::Text("bob".into())),
            ("about", Value::Text("hi".into())),
            ("a_long_key", Value::Integer(1.into())),
        ]);
        assert_eq!(p.to_payload(), expected);
        // Reading keys in any order gives the same encoding back.
        let shuffled = text_map(&[
            ("name", Value::Text("bob".into())),
            ("a_long_key", Value::Integer(1.into())),
            ("about", Value::Text("hi".into())),
            ("zz", Value::Integer(300.into())),
            ("bot", Value::Bool(true)),
        ]);
        assert_eq!(
            Profile::from_payload(&shuffled).unwrap().to_payload(),
            expected
        );
        // The minimal profile of the spec's example.
        assert_eq!(
            Profile::new("bob").unwrap().to_payload(),
            hex::decode("a1646e616d6563626f62").unwrap()
        );
    }

    #[test]
    fn unknown_keys_preserved() {
        let bytes = text_map(&[
            ("name", Value::Text("dave".into())),
            ("nip05", Value::Text("dave@example.com".into())),
            ("score", Value::Float(2.25)),
        ]);
        let p = Profile::from_payload(&bytes).unwrap();
        assert_eq!(p.extra().len(), 2);
        assert_eq!(
            p.extra_value("nip05"),
            Some(&Value::Text("dave@example.com".into()))
        );
        let again = Profile::from_payload(&p.to_payload()).unwrap();
        assert_eq!(again.extra_value("score"), Some(&Value::Float(2.25)));
        let mut p = p;
        assert_eq!(
            p.remove_extra("nip05"),
            Some(Value::Text("dave@example.com".into()))
        );
        assert_eq!(p.extra().len(), 1);
        assert_eq!(
            p.set_extra("about", Value::Null),
            Err(ProfileError::KnownField {
                key: "about".into()
            })
        );
    }

    #[test]
    fn name_rules() {
        assert_eq!(Profile::new(""), Err(ProfileError::EmptyName));
        assert_eq!(
            Profile::new("Alice ✨"),
            Err(ProfileError::NameNotAscii { character: '✨' })
        );
        assert_eq!(
            Profile::new("tab\there"),
            Err(ProfileError::NameNotAscii { character: '\t' })
        );
        assert!(Profile::new("a.b-c_d 9~").is_ok());
        let no_name = text_map(&[("about", Value::Text("x".into()))]);
        assert_eq!(
            Profile::from_payload(&no_name),
            Err(ProfileError::MissingName)
        );
        let null_name = text_map(&[("name", Value::Null)]);
        assert_eq!(
            Profile::from_payload(&null_name),
            Err(ProfileError::MissingName)
        );
        let empty = text_map(&[("name", Value::Text(String::new()))]);
        assert_eq!(Profile::from_payload(&empty), Err(ProfileError::EmptyName));
        let mut p = Profile::new("x").unwrap();
        assert!(p.set_name("").is_err());
        p.set_name("y").unwrap();
        assert_eq!(p.name(), "y");
    }

    #[test]
    fn malformed_payloads_refused() {
        // Integer keys (the reference library's encoding).
        assert_eq!(
            Profile::from_payload(&hex::decode("a10063626f62").unwrap()),
            Err(ProfileError::NonTextKey { index: 0 })
        );
        // Not a map.
        assert_eq!(
            Profile::from_payload(&cbor(&Value::Text("bob".into()))),
            Err(ProfileError::NotAMap)
        );
        // Wrong types for known fields.
        let bad = text_map(&[
            ("name", Value::Text("bob".into())),
            ("avatar", Value::Bytes(vec![1, 2])),
        ]);
        assert_eq!(
            Profile::from_payload(&bad),
            Err(ProfileError::FieldType { field: "avatar" })
        );
        let bad = text_map(&[
            ("name", Value::Text("bob".into())),
            ("bot", Value::Integer(1.into())),
        ]);
        assert_eq!(
            Profile::from_payload(&bad),
            Err(ProfileError::FieldType { field: "bot" })
        );
        let bad = text_map(&[("name", Value::Integer(1.into()))]);
        assert_eq!(
            Profile::from_payload(&bad),
            Err(ProfileError::FieldType { field: "name" })
        );
        // A duplicate key.
        let dup = text_map(&[
            ("name", Value::Text("bob".into())),
            ("name", Value::Text("eve".into())),
        ]);
        assert_eq!(
            Profile::from_payload(&dup),
            Err(ProfileError::DuplicateKey { key: "name".into() })
        );
        // Trailing bytes, truncation, garbage.
        let mut trailing = text_map(&[("name", Value::Text("bob".into()))]);
        trailing.push(0);
        assert_eq!(
            Profile::from_payload(&trailing),
            Err(ProfileError::TrailingBytes { len: 1 })
        );
        let good = text_map(&[("name", Value::Text("bob".into()))]);
        assert_eq!(
            Profile::from_payload(&good[..good.len() - 1]),
            Err(ProfileError::Truncated)
        );
        assert!(Profile::from_payload(&[]).is_err());
        assert!(Profile::from_payload(&[0xff]).is_err());
        // Invalid UTF-8 in a text string.
        assert!(matches!(
            Profile::from_payload(&[0xa1, 0x64, b'n', b'a', b'm', b'e', 0x61, 0xff]),
            Err(ProfileError::Malformed { .. })
        ));
    }

    #[test]
    fn absurd_cbor_refused() {
        // Deep nesting: an array in an array ... under "x".
        let mut deep = vec![0xa2, 0x64, b'n', b'a', b'm', b'e', 0x61, b'b', 0x61, b'x'];
        deep.extend(std::iter::repeat_n(0x81, 1000));
        deep.push(0x00);
        assert_eq!(
            Profile::from_payload(&deep),
            Err(ProfileError::TooDeep {
                max: Profile::MAX_DEPTH
            })
        );
        // A string claiming 2^63 bytes.
        let mut huge = vec![0xa1, 0x64, b'n', b'a', b'm', b'e', 0x7b];
        huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert!(Profile::from_payload(&huge).is_err());
        // An array claiming 2^32 items, and a map claiming 2^64 - 1 entries.
        let mut many = vec![
            0xa2, 0x64, b'n', b'a', b'm', b'e', 0x61, b'b', 0x61, b'x', 0x9a,
        ];
        many.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Profile::from_payload(&many), Err(ProfileError::Truncated));
        let mut map = vec![0xbb];
        map.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(Profile::from_payload(&map).is_err());
        // Too large a payload.
        let big = text_map(&[
            ("name", Value::Text("bob".into())),
            ("about", Value::Text("x".repeat(Profile::MAX_PAYLOAD_LEN))),
        ]);
        assert!(matches!(
            Profile::from_payload(&big),
            Err(ProfileError::TooLarge { .. })
        ));
        // Setting an over-deep value.
        let mut v = Value::Null;
        for _ in 0..Profile::MAX_DEPTH {
            v = Value::Array(vec![v]);
        }
        let mut p = Profile::new("bob").unwrap();
        assert!(matches!(
            p.set_extra("deep", v),
            Err(ProfileError::TooDeep { .. })
        ));
    }

    #[test]
    fn record_rules() {
        let master = SecretKey::from_bytes(&[1; 32]);
        let subkey = SecretKey::from_bytes(&[2; 32]);
        let p = full();
        let record = p
            .build_record(
                &master,
                ts(1_750_000_000_000_000_000),
                Profile::default_nonce(),
            )
            .unwrap();
        let record = OwnedRecord::from_vec(record.into_vec()).unwrap();
        assert_eq!(record.kind(), Kind::PROFILE);
        assert_eq!(Profile::from_record(&record).unwrap(), p);

        let payload = p.to_payload();
        let by_subkey = RecordBuilder::new(Kind::PROFILE, ts(1))
            .nonce(Profile::default_nonce())
            .author(master.public())
            .payload(&payload)
            .build(&subkey)
            .unwrap();
        assert!(matches!(
            Profile::from_record(&by_subkey),
            Err(ProfileError::NotSignedByMaster { .. })
        ));
        let wrong_kind = RecordBuilder::new(Kind::KEY_SCHEDULE, ts(1))
            .nonce(Profile::default_nonce())
            .payload(&payload)
            .build(&master)
            .unwrap();
        assert!(matches!(
            Profile::from_record(&wrong_kind),
            Err(ProfileError::WrongKind { .. })
        ));
        let compressed = RecordBuilder::new(Kind::PROFILE, ts(1))
            .nonce(Profile::default_nonce())
            .payload(&payload)
            .zstd(true)
            .build(&master)
            .unwrap();
        assert!(compressed.flags().contains(RecordFlags::ZSTD));
        assert_eq!(Profile::from_record(&compressed).unwrap(), p);
    }

    proptest::proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Ok(p) = Profile::from_payload(&bytes) {
                // Whatever it accepts, it writes back in a form it reads the
                // same (compared as bytes: a NaN is not equal to itself).
                let bytes = p.to_payload();
                let again = Profile::from_payload(&bytes).map(|q| q.to_payload());
                proptest::prop_assert_eq!(again.ok(), Some(bytes));
            }
        }
    }
}
