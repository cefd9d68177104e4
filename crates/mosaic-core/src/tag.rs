//! Tags (`tags.md`, `core_tags.md`, `tag_types.md`).
//!
//! A tag is `length (u16 LE, the whole tag including this 4-byte header) |
//! type (u16 LE) | value`. A record's tag section is a [`TagSet`]: tags back
//! to back, filling exactly `LenT` bytes; its padding to 8 bytes is outside
//! the set. [`Tag`] and [`TagSet`] are borrowed views over checked bytes;
//! [`OwnedTag`] and [`OwnedTagSet`] own theirs.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use crate::keys::PublicKey;
use crate::kind::Kind;
use crate::reference::{Reference, ReferenceError};
use crate::view::{array, byte_view, le_u16, le_u32};

/// Why bytes are not a tag or a tag set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TagError {
    /// A tag's length field is below the 4-byte header.
    #[error("tag at offset {offset} has length {length}, below the 4-byte minimum")]
    LengthTooSmall {
        /// Offset of the tag within the set.
        offset: usize,
        /// The length field.
        length: u16,
    },
    /// A tag's length runs past the end of the bytes.
    #[error("tag at offset {offset} has length {length} but only {available} bytes remain")]
    Truncated {
        /// Offset of the tag within the set.
        offset: usize,
        /// The length field.
        length: usize,
        /// Bytes left from that offset.
        available: usize,
    },
    /// A value too long for the u16 length field.
    #[error("a tag value of {len} bytes does not fit (at most 65531)")]
    ValueTooLong {
        /// The value length.
        len: usize,
    },
    /// A tag set too long for the record's u16 `LenT`.
    #[error("a tag set of {len} bytes does not fit (at most 65535)")]
    SetTooLong {
        /// The set length.
        len: usize,
    },
    /// A core tag's value has the wrong size or layout for its type.
    #[error("tag of type {tag_type} has a malformed value ({len} bytes)")]
    MalformedValue {
        /// The tag type.
        tag_type: TagType,
        /// The value length.
        len: usize,
    },
    /// A core tag holds an invalid key.
    #[error("tag of type {tag_type} holds an invalid key")]
    InvalidKey {
        /// The tag type.
        tag_type: TagType,
    },
    /// A core tag holds an invalid reference.
    #[error("tag of type {tag_type} holds an invalid reference: {source}")]
    InvalidReference {
        /// The tag type.
        tag_type: TagType,
        /// Why the reference is invalid.
        source: ReferenceError,
    },
    /// A content-segment URL is not UTF-8.
    #[error("tag of type {tag_type} holds a URL that is not UTF-8")]
    NotUtf8 {
        /// The tag type.
        tag_type: TagType,
    },
}

/// A tag type (u16).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagType(pub u16);

impl TagType {
    /// Not a tag: marks padding inside filter tag elements.
    pub const PADDING: TagType = TagType(0x0);
    /// Notify Public Key: deliver to this user's inboxes.
    pub const NOTIFY_PUBLIC_KEY: TagType = TagType(0x1);
    /// Reply: the record this one replies to.
    pub const REPLY: TagType = TagType(0x2);
    /// Root: the root of the reply thread.
    pub const ROOT: TagType = TagType(0x3);
    /// Nostr Sister Event: the id of a parallel nostr event.
    pub const NOSTR_SISTER: TagType = TagType(0x8);
    /// Subkey: used in key schedules.
    pub const SUBKEY: TagType = TagType(0x10);
    /// Content segment: a user mention.
    pub const USER_MENTION: TagType = TagType(0x20);
    /// Content segment: a server mention.
    pub const SERVER_MENTION: TagType = TagType(0x21);
    /// Content segment: a quoted record.
    pub const QUOTE: TagType = TagType(0x22);
    /// Content segment: a URL to a web page.
    pub const URL: TagType = TagType(0x24);
    /// Content segment: a URL to an image.
    pub const IMAGE: TagType = TagType(0x25);
    /// Content segment: a URL to a video.
    pub const VIDEO: TagType = TagType(0x26);

    /// The registry name of a core tag type.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            TagType::NOTIFY_PUBLIC_KEY => "notify",
            TagType::REPLY => "reply",
            TagType::ROOT => "root",
            TagType::NOSTR_SISTER => "nostr-sister",
            TagType::SUBKEY => "subkey",
            TagType::USER_MENTION => "user-mention",
            TagType::SERVER_MENTION => "server-mention",
            TagType::QUOTE => "quote",
            TagType::URL => "url",
            TagType::IMAGE => "image",
            TagType::VIDEO => "video",
            _ => return None,
        })
    }

    /// Whether this type is a content segment (it carries a character offset).
    pub fn is_content_segment(self) -> bool {
        matches!(self.0, 0x20..=0x22 | 0x24..=0x26)
    }
}

impl fmt::Display for TagType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "0x{:x} ({name})", self.0),
            None => write!(f, "0x{:x}", self.0),
        }
    }
}

impl fmt::Debug for TagType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A borrowed tag: at least 4 bytes, with a length field equal to its size.
#[repr(transparent)]
#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag([u8]);

byte_view!(Tag);

impl Tag {
    /// Largest value a tag can carry (the u16 length includes the header).
    pub const MAX_VALUE_LEN: usize = u16::MAX as usize - 4;

    /// Checks that `bytes` is exactly one tag.
    pub fn from_bytes(bytes: &[u8]) -> Result<&Tag, TagError> {
        let len = tag_len_at(bytes, 0)?;
        if len != bytes.len() {
            return Err(TagError::Truncated {
                offset: 0,
                length: len,
                available: bytes.len(),
            });
        }
        Ok(Tag::cast(bytes))
    }

    /// The whole tag, header included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The tag type.
    pub fn tag_type(&self) -> TagType {
        TagType(le_u16(&self.0, 2))
    }

    /// The value (after the 4-byte header).
    pub fn value(&self) -> &[u8] {
        &self.0[4..]
    }

    /// Interprets a core tag's value. Tags of types this crate does not know
    /// come back as [`TagValue::Other`].
    pub fn parse(&self) -> Result<TagValue<'_>, TagError> {
        let t = self.tag_type();
        let v = self.value();
        let malformed = || TagError::MalformedValue {
            tag_type: t,
            len: v.len(),
        };
        let key_at = |at: usize| {
            PublicKey::from_bytes(&array(v, at)).map_err(|_| TagError::InvalidKey { tag_type: t })
        };
        let kind_ref = || -> Result<(Kind, Reference), TagError> {
            let kind = Kind::from_u64(u64::from_be_bytes(array(v, 4)));
            let reference = Reference::from_bytes(&array(v, 12)).map_err(|source| {
                TagError::InvalidReference {
                    tag_type: t,
                    source,
                }
            })?;
            Ok((kind, reference))
        };
        let url = || -> Result<(u32, &str), TagError> {
            if v.len() < 4 {
                return Err(malformed());
            }
            let text =
                std::str::from_utf8(&v[4..]).map_err(|_| TagError::NotUtf8 { tag_type: t })?;
            Ok((le_u32(v, 0), text))
        };
        let zeroed4 = |v: &[u8]| v[..4] == [0, 0, 0, 0];
        Ok(match t {
            TagType::NOTIFY_PUBLIC_KEY | TagType::SUBKEY => {
                if v.len() != 36 || !zeroed4(v) {
                    return Err(malformed());
                }
                let key = key_at(4)?;
                if t == TagType::SUBKEY {
                    TagValue::Subkey(key)
                } else {
                    TagValue::NotifyPublicKey(key)
                }
            }
            TagType::REPLY | TagType::ROOT => {
                if v.len() != 60 || !zeroed4(v) {
                    return Err(malformed());
                }
                let (kind, reference) = kind_ref()?;
                if t == TagType::REPLY {
                    TagValue::Reply { kind, reference }
                } else {
                    TagValue::Root { kind, reference }
                }
            }
            TagType::NOSTR_SISTER => {
                if v.len() != 36 || !zeroed4(v) {
                    return Err(malformed());
                }
                TagValue::NostrSister(array(v, 4))
            }
            TagType::USER_MENTION | TagType::SERVER_MENTION => {
                if v.len() != 36 {
                    return Err(malformed());
                }
                let offset = le_u32(v, 0);
                let key = key_at(4)?;
                if t == TagType::USER_MENTION {
                    TagValue::UserMention { offset, key }
                } else {
                    TagValue::ServerMention { offset, key }
                }
            }
            TagType::QUOTE => {
                if v.len() != 60 {
                    return Err(malformed());
                }
                let (kind, reference) = kind_ref()?;
                TagValue::Quote {
                    offset: le_u32(v, 0),
                    kind,
                    reference,
                }
            }
            TagType::URL => {
                let (offset, url) = url()?;
                TagValue::Url { offset, url }
            }
            TagType::IMAGE => {
                let (offset, url) = url()?;
                TagValue::Image { offset, url }
            }
            TagType::VIDEO => {
                let (offset, url) = url()?;
                TagValue::Video { offset, url }
            }
            _ => TagValue::Other {
                tag_type: t,
                value: v,
            },
        })
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parse() {
            Ok(TagValue::Other { .. }) | Err(_) => {
                write!(f, "Tag({}, ", self.tag_type())?;
                for b in self.value() {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(")")
            }
            Ok(value) => write!(f, "{value:?}"),
        }
    }
}

impl ToOwned for Tag {
    type Owned = OwnedTag;
    fn to_owned(&self) -> OwnedTag {
        OwnedTag(self.0.to_vec())
    }
}

/// The meaning of a core tag, borrowed from the tag's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TagValue<'a> {
    /// 0x1: the record is of interest to this user (deliver to their inboxes).
    NotifyPublicKey(PublicKey),
    /// 0x2: the record replies to this one.
    Reply {
        /// Kind of the record replied to.
        kind: Kind,
        /// Which record.
        reference: Reference,
    },
    /// 0x3: the root of the thread.
    Root {
        /// Kind of the root record.
        kind: Kind,
        /// Which record.
        reference: Reference,
    },
    /// 0x8: a nostr event id.
    NostrSister([u8; 32]),
    /// 0x10: a subkey (in key schedules).
    Subkey(PublicKey),
    /// 0x20: mention of a user at a character offset.
    UserMention {
        /// Character offset in the payload.
        offset: u32,
        /// The user's master key.
        key: PublicKey,
    },
    /// 0x21: mention of a server at a character offset.
    ServerMention {
        /// Character offset in the payload.
        offset: u32,
        /// The server's key.
        key: PublicKey,
    },
    /// 0x22: a quoted record at a character offset.
    Quote {
        /// Character offset in the payload.
        offset: u32,
        /// Kind of the quoted record.
        kind: Kind,
        /// Which record.
        reference: Reference,
    },
    /// 0x24: a web URL at a character offset.
    Url {
        /// Character offset in the payload.
        offset: u32,
        /// The URL.
        url: &'a str,
    },
    /// 0x25: an image URL at a character offset.
    Image {
        /// Character offset in the payload.
        offset: u32,
        /// The URL.
        url: &'a str,
    },
    /// 0x26: a video URL at a character offset.
    Video {
        /// Character offset in the payload.
        offset: u32,
        /// The URL.
        url: &'a str,
    },
    /// A tag type this crate does not interpret.
    Other {
        /// Its type.
        tag_type: TagType,
        /// Its value.
        value: &'a [u8],
    },
}

impl TagValue<'_> {
    /// The content-segment offset (in characters), if this is a segment.
    pub fn segment_offset(&self) -> Option<u32> {
        match *self {
            TagValue::UserMention { offset, .. }
            | TagValue::ServerMention { offset, .. }
            | TagValue::Quote { offset, .. }
            | TagValue::Url { offset, .. }
            | TagValue::Image { offset, .. }
            | TagValue::Video { offset, .. } => Some(offset),
            _ => None,
        }
    }
}

/// An owned tag.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnedTag(Vec<u8>);

impl OwnedTag {
    /// A tag of any type with a raw value.
    pub fn new(tag_type: TagType, value: &[u8]) -> Result<OwnedTag, TagError> {
        if value.len() > Tag::MAX_VALUE_LEN {
            return Err(TagError::ValueTooLong { len: value.len() });
        }
        let mut bytes = Vec::with_capacity(4 + value.len());
        bytes.extend_from_slice(&((4 + value.len()) as u16).to_le_bytes());
        bytes.extend_from_slice(&tag_type.0.to_le_bytes());
        bytes.extend_from_slice(value);
        Ok(OwnedTag(bytes))
    }

    fn fixed(tag_type: TagType, head: [u8; 4], rest: &[&[u8]]) -> OwnedTag {
        let len: usize = 8 + rest.iter().map(|r| r.len()).sum::<usize>();
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(&(len as u16).to_le_bytes());
        bytes.extend_from_slice(&tag_type.0.to_le_bytes());
        bytes.extend_from_slice(&head);
        for r in rest {
            bytes.extend_from_slice(r);
        }
        OwnedTag(bytes)
    }

    /// 0x1 Notify Public Key.
    pub fn notify_public_key(key: &PublicKey) -> OwnedTag {
        OwnedTag::fixed(TagType::NOTIFY_PUBLIC_KEY, [0; 4], &[key.as_bytes()])
    }

    /// 0x2 Reply.
    pub fn reply(reference: &Reference, kind: Kind) -> OwnedTag {
        OwnedTag::fixed(
            TagType::REPLY,
            [0; 4],
            &[&kind.to_be_bytes(), reference.as_bytes()],
        )
    }

    /// 0x3 Root.
    pub fn root(reference: &Reference, kind: Kind) -> OwnedTag {
        OwnedTag::fixed(
            TagType::ROOT,
            [0; 4],
            &[&kind.to_be_bytes(), reference.as_bytes()],
        )
    }

    /// 0x8 Nostr Sister Event.
    pub fn nostr_sister(nostr_id: &[u8; 32]) -> OwnedTag {
        OwnedTag::fixed(TagType::NOSTR_SISTER, [0; 4], &[nostr_id])
    }

    /// 0x10 Subkey.
    pub fn subkey(key: &PublicKey) -> OwnedTag {
        OwnedTag::fixed(TagType::SUBKEY, [0; 4], &[key.as_bytes()])
    }

    /// 0x20 Content segment: user mention at a character offset.
    pub fn user_mention(offset: u32, key: &PublicKey) -> OwnedTag {
        OwnedTag::fixed(
            TagType::USER_MENTION,
            offset.to_le_bytes(),
            &[key.as_bytes()],
        )
    }

    /// 0x21 Content segment: server mention at a character offset.
    pub fn server_mention(offset: u32, key: &PublicKey) -> OwnedTag {
        OwnedTag::fixed(
            TagType::SERVER_MENTION,
            offset.to_le_bytes(),
            &[key.as_bytes()],
        )
    }

    /// 0x22 Content segment: quote at a character offset.
    pub fn quote(offset: u32, reference: &Reference, kind: Kind) -> OwnedTag {
        OwnedTag::fixed(
            TagType::QUOTE,
            offset.to_le_bytes(),
            &[&kind.to_be_bytes(), reference.as_bytes()],
        )
    }

    fn url_like(tag_type: TagType, offset: u32, url: &str) -> Result<OwnedTag, TagError> {
        if url.len() + 4 > Tag::MAX_VALUE_LEN {
            return Err(TagError::ValueTooLong { len: url.len() + 4 });
        }
        Ok(OwnedTag::fixed(
            tag_type,
            offset.to_le_bytes(),
            &[url.as_bytes()],
        ))
    }

    /// 0x24 Content segment: web URL at a character offset.
    pub fn url(offset: u32, url: &str) -> Result<OwnedTag, TagError> {
        OwnedTag::url_like(TagType::URL, offset, url)
    }

    /// 0x25 Content segment: image URL at a character offset.
    pub fn image(offset: u32, url: &str) -> Result<OwnedTag, TagError> {
        OwnedTag::url_like(TagType::IMAGE, offset, url)
    }

    /// 0x26 Content segment: video URL at a character offset.
    pub fn video(offset: u32, url: &str) -> Result<OwnedTag, TagError> {
        OwnedTag::url_like(TagType::VIDEO, offset, url)
    }

    /// Checks and takes ownership of one tag's bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Result<OwnedTag, TagError> {
        Tag::from_bytes(&bytes)?;
        Ok(OwnedTag(bytes))
    }

    /// The bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl Deref for OwnedTag {
    type Target = Tag;
    fn deref(&self) -> &Tag {
        Tag::cast(&self.0)
    }
}

impl Borrow<Tag> for OwnedTag {
    fn borrow(&self) -> &Tag {
        self
    }
}

impl AsRef<Tag> for OwnedTag {
    fn as_ref(&self) -> &Tag {
        self
    }
}

impl fmt::Debug for OwnedTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Reads the length of the tag starting at `offset`, checking it.
fn tag_len_at(bytes: &[u8], offset: usize) -> Result<usize, TagError> {
    let available = bytes.len() - offset;
    if available < 4 {
        return Err(TagError::Truncated {
            offset,
            length: 4,
            available,
        });
    }
    let length = le_u16(bytes, offset);
    if length < 4 {
        return Err(TagError::LengthTooSmall { offset, length });
    }
    let length = usize::from(length);
    if length > available {
        return Err(TagError::Truncated {
            offset,
            length,
            available,
        });
    }
    Ok(length)
}

/// A borrowed set of tags laid end to end (no padding).
#[repr(transparent)]
#[derive(PartialEq, Eq, Hash)]
pub struct TagSet([u8]);

byte_view!(TagSet);

impl TagSet {
    /// The empty tag set.
    pub const EMPTY: &'static TagSet = TagSet::cast(&[]);

    /// Checks that `bytes` is a sequence of whole tags.
    pub fn from_bytes(bytes: &[u8]) -> Result<&TagSet, TagError> {
        if bytes.len() > usize::from(u16::MAX) {
            return Err(TagError::SetTooLong { len: bytes.len() });
        }
        let mut offset = 0;
        while offset < bytes.len() {
            offset += tag_len_at(bytes, offset)?;
        }
        Ok(TagSet::cast(bytes))
    }

    /// The bytes of the set (no padding).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the set holds no tags.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tags, in order.
    pub fn iter(&self) -> TagIter<'_> {
        TagIter { rest: &self.0 }
    }

    /// Whether the set holds a tag with exactly these bytes.
    pub fn contains(&self, tag: &Tag) -> bool {
        self.iter().any(|t| t == tag)
    }

    /// The keys of the Notify Public Key tags (D-8: who is "tagged").
    pub fn notified_keys(&self) -> impl Iterator<Item = PublicKey> + '_ {
        self.iter()
            .filter(|t| t.tag_type() == TagType::NOTIFY_PUBLIC_KEY)
            .filter_map(|t| match t.parse() {
                Ok(TagValue::NotifyPublicKey(k)) => Some(k),
                _ => None,
            })
    }
}

impl fmt::Debug for TagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a TagSet {
    type Item = &'a Tag;
    type IntoIter = TagIter<'a>;
    fn into_iter(self) -> TagIter<'a> {
        self.iter()
    }
}

impl ToOwned for TagSet {
    type Owned = OwnedTagSet;
    fn to_owned(&self) -> OwnedTagSet {
        OwnedTagSet(self.0.to_vec())
    }
}

/// Iterator over the tags of a [`TagSet`].
#[derive(Clone, Debug)]
pub struct TagIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TagIter<'a> {
    type Item = &'a Tag;
    fn next(&mut self) -> Option<&'a Tag> {
        if self.rest.len() < 4 {
            return None;
        }
        // The set was checked on construction: the length is in bounds.
        let len = usize::from(le_u16(self.rest, 0)).clamp(4, self.rest.len());
        let (tag, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Tag::cast(tag))
    }
}

/// An owned tag set.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct OwnedTagSet(Vec<u8>);

impl OwnedTagSet {
    /// An empty set.
    pub fn new() -> OwnedTagSet {
        OwnedTagSet(Vec::new())
    }

    /// Appends a tag.
    pub fn push(&mut self, tag: &Tag) -> Result<(), TagError> {
        let len = self.0.len() + tag.as_bytes().len();
        if len > usize::from(u16::MAX) {
            return Err(TagError::SetTooLong { len });
        }
        self.0.extend_from_slice(tag.as_bytes());
        Ok(())
    }

    /// A set of the given tags, in order.
    pub fn from_tags<T: AsRef<Tag>>(
        tags: impl IntoIterator<Item = T>,
    ) -> Result<OwnedTagSet, TagError> {
        let mut set = OwnedTagSet::new();
        for tag in tags {
            set.push(tag.as_ref())?;
        }
        Ok(set)
    }

    /// Checks and takes ownership of a set's bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Result<OwnedTagSet, TagError> {
        TagSet::from_bytes(&bytes)?;
        Ok(OwnedTagSet(bytes))
    }

    /// The bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl AsRef<Tag> for Tag {
    fn as_ref(&self) -> &Tag {
        self
    }
}

impl Deref for OwnedTagSet {
    type Target = TagSet;
    fn deref(&self) -> &TagSet {
        TagSet::cast(&self.0)
    }
}

impl Borrow<TagSet> for OwnedTagSet {
    fn borrow(&self) -> &TagSet {
        self
    }
}

impl fmt::Debug for OwnedTagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    #[test]
    fn core_tags_round_trip() {
        let key = SecretKey::from_bytes(&[5u8; 32]).public();
        let r = Reference::from_bytes(&[0x10; 48]).unwrap();
        let kind = Kind::from_u64(0x1_0001_001c);
        let cases = [
            (
                OwnedTag::notify_public_key(&key),
                TagValue::NotifyPublicKey(key),
            ),
            (OwnedTag::subkey(&key), TagValue::Subkey(key)),
            (
                OwnedTag::reply(&r, kind),
                TagValue::Reply { kind, reference: r },
            ),
            (
                OwnedTag::root(&r, kind),
                TagValue::Root { kind, reference: r },
            ),
            (
                OwnedTag::nostr_sister(&[9; 32]),
                TagValue::NostrSister([9; 32]),
            ),
            (
                OwnedTag::user_mention(5, &key),
                TagValue::UserMention { offset: 5, key },
            ),
            (
                OwnedTag::server_mention(6, &key),
                TagValue::ServerMention { offset: 6, key },
            ),
            (
                OwnedTag::quote(7, &r, kind),
                TagValue::Quote {
                    offset: 7,
                    kind,
                    reference: r,
                },
            ),
            (
                OwnedTag::url(8, "https://x.example/").unwrap(),
                TagValue::Url {
                    offset: 8,
                    url: "https://x.example/",
                },
            ),
            (
                OwnedTag::image(9, "i").unwrap(),
                TagValue::Image {
                    offset: 9,
                    url: "i",
                },
            ),
            (
                OwnedTag::video(10, "v").unwrap(),
                TagValue::Video {
                    offset: 10,
                    url: "v",
                },
            ),
        ];
        let mut set = OwnedTagSet::new();
        for (tag, value) in &cases {
            assert_eq!(tag.parse().unwrap(), *value);
            assert_eq!(Tag::from_bytes(tag.as_bytes()).unwrap(), &**tag);
            set.push(tag).unwrap();
        }
        let parsed = TagSet::from_bytes(set.as_bytes()).unwrap();
        assert_eq!(parsed.iter().count(), cases.len());
        assert_eq!(parsed.notified_keys().collect::<Vec<_>>(), vec![key]);
    }

    #[test]
    fn notify_layout_matches_spec() {
        let key = SecretKey::from_bytes(&[5u8; 32]).public();
        let tag = OwnedTag::notify_public_key(&key);
        assert_eq!(&tag.as_bytes()[..8], &[40, 0, 1, 0, 0, 0, 0, 0]);
        assert_eq!(&tag.as_bytes()[8..], key.as_bytes());
    }

    #[test]
    fn bad_sets_refused() {
        assert!(TagSet::from_bytes(&[]).unwrap().is_empty());
        assert!(TagSet::EMPTY.is_empty());
        assert!(matches!(
            TagSet::from_bytes(&[3, 0, 1, 0]),
            Err(TagError::LengthTooSmall { length: 3, .. })
        ));
        assert!(matches!(
            TagSet::from_bytes(&[0, 0, 0, 0]),
            Err(TagError::LengthTooSmall { length: 0, .. })
        ));
        assert!(matches!(
            TagSet::from_bytes(&[10, 0, 1, 0, 1, 2]),
            Err(TagError::Truncated { .. })
        ));
        assert!(matches!(
            TagSet::from_bytes(&[4, 0, 1, 0, 0, 0, 0]),
            Err(TagError::Truncated { offset: 4, .. })
        ));
        assert!(OwnedTag::new(TagType(0x4000), &vec![0; 70000]).is_err());
    }

    #[test]
    fn malformed_core_values_reported() {
        let tag = OwnedTag::new(TagType::NOTIFY_PUBLIC_KEY, &[0; 10]).unwrap();
        assert!(matches!(
            tag.parse(),
            Err(TagError::MalformedValue { len: 10, .. })
        ));
        let tag = OwnedTag::new(TagType::URL, &[0, 0, 0, 0, 0xff]).unwrap();
        assert!(matches!(tag.parse(), Err(TagError::NotUtf8 { .. })));
        let other = OwnedTag::new(TagType(0x4000), b"custom").unwrap();
        assert!(matches!(
            other.parse(),
            Ok(TagValue::Other {
                value: b"custom",
                ..
            })
        ));
    }
}
