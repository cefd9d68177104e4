//! Filter elements: their types, checks, borrowed views and matching.

use std::fmt;

use crate::keys::PublicKey;
use crate::kind::Kind;
use crate::record::Record;
use crate::tag::Tag;
use crate::timestamp::Timestamp;
use crate::view::{array, le_u16};

use super::{FilterError, HEADER_LEN};

/// A filter element type (the first byte of an element).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ElementType(u8);

impl ElementType {
    /// 0x01: records by any of these authors.
    pub const AUTHORS: ElementType = ElementType(0x01);
    /// 0x02: records signed by any of these keys.
    pub const SIGNERS: ElementType = ElementType(0x02);
    /// 0x03: records of any of these kinds.
    pub const KINDS: ElementType = ElementType(0x03);
    /// 0x04: records with any of these exact timestamps.
    pub const TIMESTAMPS: ElementType = ElementType(0x04);
    /// 0x05: records carrying any of these tags.
    pub const INCLUDED_TAGS: ElementType = ElementType(0x05);
    /// 0x80: records at or after this timestamp.
    pub const SINCE: ElementType = ElementType(0x80);
    /// 0x81: records at or before this timestamp.
    pub const UNTIL: ElementType = ElementType(0x81);
    /// 0x82: records the server received at or after this time.
    pub const RECEIVED_SINCE: ElementType = ElementType(0x82);
    /// 0x83: records the server received at or before this time.
    pub const RECEIVED_UNTIL: ElementType = ElementType(0x83);
    /// 0x84: records whose id starts with none of these 32-byte prefixes.
    pub const EXCLUDE: ElementType = ElementType(0x84);
    /// 0x85: records carrying none of these tags.
    pub const EXCLUDED_TAGS: ElementType = ElementType(0x85);

    /// Every type this implementation knows.
    pub const ALL: [ElementType; 11] = [
        ElementType::AUTHORS,
        ElementType::SIGNERS,
        ElementType::KINDS,
        ElementType::TIMESTAMPS,
        ElementType::INCLUDED_TAGS,
        ElementType::SINCE,
        ElementType::UNTIL,
        ElementType::RECEIVED_SINCE,
        ElementType::RECEIVED_UNTIL,
        ElementType::EXCLUDE,
        ElementType::EXCLUDED_TAGS,
    ];

    /// The type byte.
    pub const fn as_u8(self) -> u8 {
        self.0
    }

    /// The type of a known type byte.
    pub fn from_u8(byte: u8) -> Option<ElementType> {
        ElementType::ALL.into_iter().find(|t| t.0 == byte)
    }

    /// Narrow elements (below 0x80) can be answered from an index (D-15).
    pub const fn is_narrow(self) -> bool {
        self.0 < 0x80
    }

    /// Tag elements may appear several times (each must pass); other types
    /// count once.
    pub const fn may_repeat(self) -> bool {
        self.0 == 0x05 || self.0 == 0x85
    }

    fn name(self) -> &'static str {
        match self.0 {
            0x01 => "authors",
            0x02 => "signers",
            0x03 => "kinds",
            0x04 => "timestamps",
            0x05 => "included_tags",
            0x80 => "since",
            0x81 => "until",
            0x82 => "received_since",
            0x83 => "received_until",
            0x84 => "exclude",
            0x85 => "excluded_tags",
            _ => "unknown",
        }
    }
}

impl fmt::Debug for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({:#04x})", self.name(), self.0)
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Checks the element at `offset`, returning its length in words.
pub(super) fn check(filter: &[u8], offset: usize) -> Result<u8, FilterError> {
    // The filter length is a multiple of 8, so a whole header is present.
    let type_byte = filter[offset];
    let words = filter[offset + 1];
    if words == 0 {
        return Err(FilterError::ZeroLengthElement { offset });
    }
    let end = offset + usize::from(words) * 8;
    if end > filter.len() {
        return Err(FilterError::ElementOverrun { offset, words });
    }
    let element_type = ElementType::from_u8(type_byte).ok_or(FilterError::UnknownElement {
        offset,
        element_type: type_byte,
    })?;
    if let Some(i) = filter[offset + 2..offset + HEADER_LEN]
        .iter()
        .position(|&b| b != 0)
    {
        return Err(FilterError::ReservedNotZero {
            offset: offset + 2 + i,
        });
    }
    let data_at = offset + HEADER_LEN;
    let data = &filter[data_at..end];
    let bad_length = || FilterError::BadElementLength {
        offset,
        element_type,
        words,
    };
    match element_type {
        ElementType::AUTHORS | ElementType::SIGNERS => {
            if !data.len().is_multiple_of(32) {
                return Err(bad_length());
            }
            for (i, key) in data.chunks_exact(32).enumerate() {
                PublicKey::from_bytes(&array(key, 0)).map_err(|_| FilterError::InvalidKey {
                    offset: data_at + 32 * i,
                })?;
            }
        }
        ElementType::KINDS => {}
        ElementType::TIMESTAMPS => {
            for (i, t) in data.chunks_exact(8).enumerate() {
                if t[0] & 0x80 != 0 {
                    return Err(FilterError::TimestampOutOfRange {
                        offset: data_at + 8 * i,
                    });
                }
            }
        }
        ElementType::SINCE
        | ElementType::UNTIL
        | ElementType::RECEIVED_SINCE
        | ElementType::RECEIVED_UNTIL => {
            if data.len() != 8 {
                return Err(bad_length());
            }
            if data[0] & 0x80 != 0 {
                return Err(FilterError::TimestampOutOfRange { offset: data_at });
            }
        }
        ElementType::EXCLUDE => {
            if !data.len().is_multiple_of(32) {
                return Err(bad_length());
            }
            for (i, prefix) in data.chunks_exact(32).enumerate() {
                if prefix[0] & 0x80 != 0 {
                    return Err(FilterError::ExcludeNotAnId {
                        offset: data_at + 32 * i,
                    });
                }
            }
        }
        _ => check_tags(data, data_at)?,
    }
    Ok(words)
}

/// Tags laid end to end, then zero padding; a zero length starts the padding.
fn check_tags(data: &[u8], data_at: usize) -> Result<(), FilterError> {
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        if rest.len() < 4 || le_u16(rest, 0) == 0 {
            return match rest.iter().position(|&b| b != 0) {
                Some(i) => Err(FilterError::BadPadding {
                    offset: data_at + at + i,
                }),
                None => Ok(()),
            };
        }
        let len = Tag::from_bytes(&rest[..usize::from(le_u16(rest, 0)).min(rest.len())])
            .map_err(|_| FilterError::BadTag {
                offset: data_at + at,
            })?
            .as_bytes()
            .len();
        at += len;
    }
    Ok(())
}

/// Iterates over the (checked) elements of a filter.
pub(super) struct Iter<'a> {
    filter: &'a [u8],
    offset: usize,
}

impl<'a> Iter<'a> {
    pub(super) fn new(filter: &'a [u8]) -> Iter<'a> {
        Iter {
            filter,
            offset: HEADER_LEN,
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = FilterElement<'a>;
    fn next(&mut self) -> Option<FilterElement<'a>> {
        // Checked on construction; stop rather than panic if not.
        let header = self.filter.get(self.offset..self.offset + HEADER_LEN)?;
        let end = self.offset + usize::from(header[1]) * 8;
        let bytes = self.filter.get(self.offset..end)?;
        if end <= self.offset {
            return None;
        }
        self.offset = end;
        FilterElement::from_checked(bytes)
    }
}

/// One element of a filter, borrowed.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterElement<'a> {
    /// Records by any of these authors.
    Authors(Keys<'a>),
    /// Records signed by any of these keys.
    Signers(Keys<'a>),
    /// Records of any of these kinds.
    Kinds(Kinds<'a>),
    /// Records with any of these timestamps.
    Timestamps(Timestamps<'a>),
    /// Records with at least one of these tags.
    IncludedTags(TagList<'a>),
    /// Records at or after this timestamp.
    Since(Timestamp),
    /// Records at or before this timestamp.
    Until(Timestamp),
    /// Records received at or after this time.
    ReceivedSince(Timestamp),
    /// Records received at or before this time.
    ReceivedUntil(Timestamp),
    /// Records whose ids start with none of these prefixes.
    Exclude(IdPrefixes<'a>),
    /// Records with none of these tags.
    ExcludedTags(TagList<'a>),
}

impl<'a> FilterElement<'a> {
    fn from_checked(bytes: &'a [u8]) -> Option<FilterElement<'a>> {
        let data = bytes.get(HEADER_LEN..)?;
        let ts = || Timestamp::from_be_bytes(array(data, 0)).ok();
        let all = bytes;
        Some(match ElementType::from_u8(bytes[0])? {
            ElementType::AUTHORS => FilterElement::Authors(Keys { data, all }),
            ElementType::SIGNERS => FilterElement::Signers(Keys { data, all }),
            ElementType::KINDS => FilterElement::Kinds(Kinds { data, all }),
            ElementType::TIMESTAMPS => FilterElement::Timestamps(Timestamps { data, all }),
            ElementType::INCLUDED_TAGS => FilterElement::IncludedTags(TagList { data, all }),
            ElementType::SINCE => FilterElement::Since(ts()?),
            ElementType::UNTIL => FilterElement::Until(ts()?),
            ElementType::RECEIVED_SINCE => FilterElement::ReceivedSince(ts()?),
            ElementType::RECEIVED_UNTIL => FilterElement::ReceivedUntil(ts()?),
            ElementType::EXCLUDE => FilterElement::Exclude(IdPrefixes { data, all }),
            _ => FilterElement::ExcludedTags(TagList { data, all }),
        })
    }

    /// The element's type.
    pub fn element_type(&self) -> ElementType {
        match self {
            FilterElement::Authors(_) => ElementType::AUTHORS,
            FilterElement::Signers(_) => ElementType::SIGNERS,
            FilterElement::Kinds(_) => ElementType::KINDS,
            FilterElement::Timestamps(_) => ElementType::TIMESTAMPS,
            FilterElement::IncludedTags(_) => ElementType::INCLUDED_TAGS,
            FilterElement::Since(_) => ElementType::SINCE,
            FilterElement::Until(_) => ElementType::UNTIL,
            FilterElement::ReceivedSince(_) => ElementType::RECEIVED_SINCE,
            FilterElement::ReceivedUntil(_) => ElementType::RECEIVED_UNTIL,
            FilterElement::Exclude(_) => ElementType::EXCLUDE,
            FilterElement::ExcludedTags(_) => ElementType::EXCLUDED_TAGS,
        }
    }

    /// The element's encoded bytes, header included.
    pub fn as_bytes(&self) -> Vec<u8> {
        let (t, data): (ElementType, Vec<u8>) = match self {
            FilterElement::Authors(k) | FilterElement::Signers(k) => {
                return k.all.to_vec();
            }
            FilterElement::Kinds(k) => return k.all.to_vec(),
            FilterElement::Timestamps(t) => return t.all.to_vec(),
            FilterElement::IncludedTags(t) | FilterElement::ExcludedTags(t) => {
                return t.all.to_vec();
            }
            FilterElement::Exclude(x) => return x.all.to_vec(),
            FilterElement::Since(t)
            | FilterElement::Until(t)
            | FilterElement::ReceivedSince(t)
            | FilterElement::ReceivedUntil(t) => (self.element_type(), t.to_be_bytes().to_vec()),
        };
        let mut out = vec![t.as_u8(), 2, 0, 0, 0, 0, 0, 0];
        out.extend_from_slice(&data);
        out
    }

    /// Whether `record`, received at `received_at`, passes this element.
    pub fn matches(&self, record: &Record, received_at: Timestamp) -> bool {
        match self {
            FilterElement::Authors(k) => k.contains(&record.author()),
            FilterElement::Signers(k) => k.contains(&record.signing_key()),
            FilterElement::Kinds(k) => k.contains(record.kind()),
            FilterElement::Timestamps(t) => t.contains(record.timestamp()),
            FilterElement::IncludedTags(t) => record.tags().iter().any(|tag| t.contains(tag)),
            FilterElement::Since(t) => record.timestamp() >= *t,
            FilterElement::Until(t) => record.timestamp() <= *t,
            FilterElement::ReceivedSince(t) => received_at >= *t,
            FilterElement::ReceivedUntil(t) => received_at <= *t,
            FilterElement::Exclude(x) => !x.excludes(record),
            FilterElement::ExcludedTags(t) => !record.tags().iter().any(|tag| t.contains(tag)),
        }
    }
}

impl fmt::Debug for FilterElement<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilterElement::Authors(k) => f.debug_tuple("Authors").field(k).finish(),
            FilterElement::Signers(k) => f.debug_tuple("Signers").field(k).finish(),
            FilterElement::Kinds(k) => f.debug_tuple("Kinds").field(k).finish(),
            FilterElement::Timestamps(t) => f.debug_tuple("Timestamps").field(t).finish(),
            FilterElement::IncludedTags(t) => f.debug_tuple("IncludedTags").field(t).finish(),
            FilterElement::Since(t) => f.debug_tuple("Since").field(t).finish(),
            FilterElement::Until(t) => f.debug_tuple("Until").field(t).finish(),
            FilterElement::ReceivedSince(t) => f.debug_tuple("ReceivedSince").field(t).finish(),
            FilterElement::ReceivedUntil(t) => f.debug_tuple("ReceivedUntil").field(t).finish(),
            FilterElement::Exclude(x) => f.debug_tuple("Exclude").field(x).finish(),
            FilterElement::ExcludedTags(t) => f.debug_tuple("ExcludedTags").field(t).finish(),
        }
    }
}

/// The keys of an authors or signers element.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Keys<'a> {
    data: &'a [u8],
    all: &'a [u8],
}

impl<'a> Keys<'a> {
    /// The keys, in order.
    pub fn iter(&self) -> impl Iterator<Item = PublicKey> + 'a {
        self.data
            .chunks_exact(32)
            .map(|c| PublicKey::from_bytes_unchecked(array(c, 0)))
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.data.len() / 32
    }

    /// Whether there are none (the element then matches nothing).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Whether `key` is listed.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.data.chunks_exact(32).any(|c| c == key.as_bytes())
    }
}

impl fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The kinds of a kinds element.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Kinds<'a> {
    data: &'a [u8],
    all: &'a [u8],
}

impl<'a> Kinds<'a> {
    /// The kinds, in order.
    pub fn iter(&self) -> impl Iterator<Item = Kind> + 'a {
        self.data
            .chunks_exact(8)
            .map(|c| Kind::from_u64(u64::from_be_bytes(array(c, 0))))
    }

    /// How many kinds.
    pub fn len(&self) -> usize {
        self.data.len() / 8
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Whether `kind` is listed.
    pub fn contains(&self, kind: Kind) -> bool {
        let bytes = kind.to_be_bytes();
        self.data.chunks_exact(8).any(|c| c == bytes)
    }
}

impl fmt::Debug for Kinds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The timestamps of a timestamps element.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Timestamps<'a> {
    data: &'a [u8],
    all: &'a [u8],
}

impl<'a> Timestamps<'a> {
    /// The timestamps, in order.
    pub fn iter(&self) -> impl Iterator<Item = Timestamp> + 'a {
        self.data
            .chunks_exact(8)
            .filter_map(|c| Timestamp::from_be_bytes(array(c, 0)).ok())
    }

    /// How many timestamps.
    pub fn len(&self) -> usize {
        self.data.len() / 8
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Whether `t` is listed.
    pub fn contains(&self, t: Timestamp) -> bool {
        let bytes = t.to_be_bytes();
        self.data.chunks_exact(8).any(|c| c == bytes)
    }
}

impl fmt::Debug for Timestamps<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The id prefixes of an exclude element.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IdPrefixes<'a> {
    data: &'a [u8],
    all: &'a [u8],
}

impl<'a> IdPrefixes<'a> {
    /// The 32-byte prefixes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.data.chunks_exact(32)
    }

    /// How many prefixes.
    pub fn len(&self) -> usize {
        self.data.len() / 32
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Whether the record's id starts with a listed prefix.
    pub fn excludes(&self, record: &Record) -> bool {
        let id = record.id();
        let prefix = &id.as_bytes()[..32];
        self.data.chunks_exact(32).any(|c| c == prefix)
    }
}

impl fmt::Debug for IdPrefixes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for p in self.iter() {
            let hex: String = p.iter().map(|b| format!("{b:02x}")).collect();
            list.entry(&hex);
        }
        list.finish()
    }
}

/// The tags of an included-tags or excluded-tags element.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TagList<'a> {
    data: &'a [u8],
    all: &'a [u8],
}

impl<'a> TagList<'a> {
    /// The tags, in order (padding skipped).
    pub fn iter(&self) -> impl Iterator<Item = &'a Tag> + 'a {
        let mut rest = self.data;
        std::iter::from_fn(move || {
            if rest.len() < 4 {
                return None;
            }
            let len = usize::from(le_u16(rest, 0));
            if len < 4 || len > rest.len() {
                return None;
            }
            let (tag, tail) = rest.split_at(len);
            rest = tail;
            Some(Tag::cast(tag))
        })
    }

    /// Whether `tag` is listed (the same type and value).
    pub fn contains(&self, tag: &Tag) -> bool {
        self.iter().any(|t| t == tag)
    }
}

impl fmt::Debug for TagList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
