//! Filters (`filter.md`): which records a query or subscription wants.
//!
//! Layout: `byte length (u16 LE, the whole filter) | 6 zero bytes |
//! elements`, where each element is `type (u8) | length in 8-byte words
//! (u8, its header included) | 6 zero bytes | data`. A record matches a filter
//! when it passes every element.
//!
//! | type | element | data | kind |
//! |---|---|---|---|
//! | 0x01 | authors | 32-byte keys | narrow |
//! | 0x02 | signers | 32-byte keys | narrow |
//! | 0x03 | kinds | 8-byte kinds, big-endian (D-14) | narrow |
//! | 0x04 | timestamps | 8-byte timestamps, big-endian | narrow |
//! | 0x05 | included tags | tags, zero-padded to a word | narrow |
//! | 0x80 | since | timestamp (inclusive) | wide |
//! | 0x81 | until | timestamp (inclusive) | wide |
//! | 0x82 | received since | timestamp (inclusive) | wide |
//! | 0x83 | received until | timestamp (inclusive) | wide |
//! | 0x84 | exclude | 32-byte id prefixes (D-20) | wide |
//! | 0x85 | excluded tags | tags, zero-padded to a word | wide |
//!
//! A filter with a narrow element can be answered from an index; one without
//! is "open" (D-6, D-15). Each element type but the two tag types may appear
//! once: when it is repeated, the first counts and later ones are ignored
//! (still checked for well-formedness). Tag elements may repeat and each must
//! pass: a record must carry one tag of every included-tags element and no
//! tag of any excluded-tags element. A timestamp with its top bit set makes
//! the filter invalid (D-19).

mod builder;
mod element;

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

pub use builder::FilterBuilder;
pub use element::{ElementType, FilterElement, IdPrefixes, Keys, Kinds, TagList, Timestamps};

use crate::record::Record;
use crate::timestamp::Timestamp;
use crate::view::{byte_view, le_u16};

/// Length of the filter header and of each element header.
pub const HEADER_LEN: usize = 8;
/// Largest filter: the byte length is a u16 and a multiple of 8.
pub const MAX_FILTER_LEN: usize = 65_528;

/// Why bytes are not a valid filter, or why a filter cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// Fewer than the 8 header bytes.
    #[error("a filter needs an 8-byte header, found {len} bytes")]
    TooShort {
        /// The length given.
        len: usize,
    },
    /// The header's byte length differs from the bytes given.
    #[error("the filter header says {declared} bytes but {actual} were given")]
    LengthMismatch {
        /// The header's length.
        declared: usize,
        /// The length given.
        actual: usize,
    },
    /// The length is not a multiple of 8.
    #[error("filter length {len} is not a multiple of 8")]
    NotAligned {
        /// The length.
        len: usize,
    },
    /// A reserved header byte is not zero.
    #[error("reserved byte at offset {offset} is not zero")]
    ReservedNotZero {
        /// Offset within the filter.
        offset: usize,
    },
    /// An element declares zero words.
    #[error("element at offset {offset} has zero length")]
    ZeroLengthElement {
        /// Offset of the element.
        offset: usize,
    },
    /// An element runs past the end of the filter.
    #[error("element at offset {offset} ({words} words) runs past the end of the filter")]
    ElementOverrun {
        /// Offset of the element.
        offset: usize,
        /// Its declared length in words.
        words: u8,
    },
    /// An element type this implementation does not know.
    #[error("unknown filter element type {element_type:#04x} at offset {offset}")]
    UnknownElement {
        /// Offset of the element.
        offset: usize,
        /// The type byte.
        element_type: u8,
    },
    /// An element's length does not fit its type (e.g. a partial key).
    #[error("element {element_type:?} at offset {offset} cannot be {words} words long")]
    BadElementLength {
        /// Offset of the element.
        offset: usize,
        /// The element type.
        element_type: ElementType,
        /// Its declared length in words.
        words: u8,
    },
    /// A key in an authors or signers element is invalid.
    #[error("invalid key at offset {offset}")]
    InvalidKey {
        /// Offset of the key.
        offset: usize,
    },
    /// A timestamp has its top bit set (D-19).
    #[error("timestamp at offset {offset} has its top bit set")]
    TimestampOutOfRange {
        /// Offset of the timestamp.
        offset: usize,
    },
    /// An exclude element lists an address prefix, not an id prefix (D-20).
    #[error("exclude element lists an address prefix at offset {offset}")]
    ExcludeNotAnId {
        /// Offset of the prefix.
        offset: usize,
    },
    /// A tag inside a tag element is malformed.
    #[error("malformed tag at offset {offset}")]
    BadTag {
        /// Offset of the tag.
        offset: usize,
    },
    /// Padding after the tags of a tag element is not zero.
    #[error("non-zero padding at offset {offset}")]
    BadPadding {
        /// Offset of the padding.
        offset: usize,
    },
    /// The builder was given more entries than one element can hold.
    #[error("{count} entries do not fit in one {element_type:?} element (at most {max})")]
    TooManyEntries {
        /// The element type.
        element_type: ElementType,
        /// Entries given.
        count: usize,
        /// Entries that fit.
        max: usize,
    },
    /// The filter would exceed the maximum length.
    #[error("the filter would be {len} bytes, more than {MAX_FILTER_LEN}")]
    TooLong {
        /// The length it would have.
        len: usize,
    },
}

/// A validated filter, borrowed.
#[repr(transparent)]
#[derive(PartialEq, Eq, Hash)]
pub struct Filter([u8]);

byte_view!(Filter);

impl Filter {
    /// Reads a filter's total length from its first 8 bytes.
    pub fn len_from_header(header: &[u8]) -> Result<usize, FilterError> {
        if header.len() < HEADER_LEN {
            return Err(FilterError::TooShort { len: header.len() });
        }
        let len = usize::from(le_u16(header, 0));
        if len < HEADER_LEN {
            return Err(FilterError::TooShort { len });
        }
        if !len.is_multiple_of(8) {
            return Err(FilterError::NotAligned { len });
        }
        Ok(len)
    }

    /// Checks that `bytes` is exactly one well-formed filter.
    pub fn from_bytes(bytes: &[u8]) -> Result<&Filter, FilterError> {
        let declared = Filter::len_from_header(bytes)?;
        if declared != bytes.len() {
            return Err(FilterError::LengthMismatch {
                declared,
                actual: bytes.len(),
            });
        }
        if let Some(i) = bytes[2..HEADER_LEN].iter().position(|&b| b != 0) {
            return Err(FilterError::ReservedNotZero { offset: 2 + i });
        }
        let mut offset = HEADER_LEN;
        while offset < bytes.len() {
            let words = element::check(bytes, offset)?;
            offset += usize::from(words) * 8;
        }
        Ok(Filter::cast(bytes))
    }

    /// The filter's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Every element, in order, repeated ones included.
    pub fn elements(&self) -> impl Iterator<Item = FilterElement<'_>> + '_ {
        element::Iter::new(&self.0)
    }

    /// The elements that take effect: for each type but the tag types, only
    /// the first.
    pub fn effective_elements(&self) -> impl Iterator<Item = FilterElement<'_>> + '_ {
        let mut seen = [false; 256];
        self.elements().filter(move |e| {
            let t = e.element_type();
            if t.may_repeat() {
                return true;
            }
            let first = !seen[usize::from(t.as_u8())];
            seen[usize::from(t.as_u8())] = true;
            first
        })
    }

    /// Whether the filter has a narrow element (one an index can answer).
    pub fn is_narrow(&self) -> bool {
        self.elements().any(|e| e.element_type().is_narrow())
    }

    /// Whether the filter has no element at all (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.0.len() == HEADER_LEN
    }

    /// Whether `record`, received at `received_at`, passes every element.
    pub fn matches(&self, record: &Record, received_at: Timestamp) -> bool {
        self.effective_elements()
            .all(|e| e.matches(record, received_at))
    }

    /// Whether `record` passes every element that can be judged from the
    /// record alone (the received-time elements are taken as passing).
    pub fn matches_record(&self, record: &Record) -> bool {
        self.effective_elements().all(|e| match e {
            FilterElement::ReceivedSince(_) | FilterElement::ReceivedUntil(_) => true,
            e => e.matches(record, Timestamp::ZERO),
        })
    }

    /// The first authors element.
    pub fn authors(&self) -> Option<Keys<'_>> {
        self.effective_elements().find_map(|e| match e {
            FilterElement::Authors(k) => Some(k),
            _ => None,
        })
    }

    /// The first signers element.
    pub fn signers(&self) -> Option<Keys<'_>> {
        self.effective_elements().find_map(|e| match e {
            FilterElement::Signers(k) => Some(k),
            _ => None,
        })
    }

    /// The first kinds element.
    pub fn kinds(&self) -> Option<Kinds<'_>> {
        self.effective_elements().find_map(|e| match e {
            FilterElement::Kinds(k) => Some(k),
            _ => None,
        })
    }

    /// The first timestamps element.
    pub fn timestamps(&self) -> Option<Timestamps<'_>> {
        self.effective_elements().find_map(|e| match e {
            FilterElement::Timestamps(t) => Some(t),
            _ => None,
        })
    }

    /// Every included-tags element (a record must match each).
    pub fn included_tags(&self) -> impl Iterator<Item = TagList<'_>> + '_ {
        self.elements().filter_map(|e| match e {
            FilterElement::IncludedTags(t) => Some(t),
            _ => None,
        })
    }

    /// The lower bound on record timestamps (inclusive), if any.
    pub fn since(&self) -> Option<Timestamp> {
        self.effective_elements().find_map(|e| match e {
            FilterElement::Since(t) => Some(t),
            _ => None,
        })
    }

    /// The upper bound on record timestamps (inclusive), if any.
    pub fn until(&self) -> Option<Timestamp> {
        self.effective_elements().find_map(|e| match e {
            FilterElement::Until(t) => Some(t),
            _ => None,
        })
    }

    /// The lower bound on received times (inclusive), if any.
    pub fn received_since(&self) -> Option<Timestamp> {
        self.effective_elements().find_map(|e| match e {
            FilterElement::ReceivedSince(t) => Some(t),
            _ => None,
        })
    }

    /// The upper bound on received times (inclusive), if any.
    pub fn received_until(&self) -> Option<Timestamp> {
        self.effective_elements().find_map(|e| match e {
            FilterElement::ReceivedUntil(t) => Some(t),
            _ => None,
        })
    }

    /// A copy of this filter with `since` replaced (or added), as a client
    /// does when it re-opens a subscription after a reconnection.
    pub fn with_since(&self, since: Timestamp) -> Result<OwnedFilter, FilterError> {
        let mut bytes = Vec::with_capacity(self.0.len() + 16);
        bytes.extend_from_slice(&self.0[..HEADER_LEN]);
        for e in self.elements() {
            if e.element_type() != ElementType::SINCE {
                bytes.extend_from_slice(&e.as_bytes());
            }
        }
        bytes.extend_from_slice(&[ElementType::SINCE.as_u8(), 2, 0, 0, 0, 0, 0, 0]);
        bytes.extend_from_slice(&since.to_be_bytes());
        if bytes.len() > MAX_FILTER_LEN {
            return Err(FilterError::TooLong { len: bytes.len() });
        }
        let len = bytes.len() as u16;
        bytes[..2].copy_from_slice(&len.to_le_bytes());
        OwnedFilter::from_vec(bytes)
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.elements()).finish()
    }
}

impl ToOwned for Filter {
    type Owned = OwnedFilter;
    fn to_owned(&self) -> OwnedFilter {
        OwnedFilter(self.0.to_vec())
    }
}

impl AsRef<[u8]> for Filter {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A validated filter that owns its bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OwnedFilter(Vec<u8>);

impl OwnedFilter {
    /// Checks and takes ownership of a filter's bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Result<OwnedFilter, FilterError> {
        Filter::from_bytes(&bytes)?;
        Ok(OwnedFilter(bytes))
    }

    /// The empty filter, which matches every record.
    pub fn empty() -> OwnedFilter {
        OwnedFilter(vec![8, 0, 0, 0, 0, 0, 0, 0])
    }

    /// The bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    pub(crate) fn from_built(bytes: Vec<u8>) -> OwnedFilter {
        OwnedFilter(bytes)
    }
}

impl Deref for OwnedFilter {
    type Target = Filter;
    fn deref(&self) -> &Filter {
        Filter::cast(&self.0)
    }
}

impl Borrow<Filter> for OwnedFilter {
    fn borrow(&self) -> &Filter {
        self
    }
}

impl AsRef<Filter> for OwnedFilter {
    fn as_ref(&self) -> &Filter {
        self
    }
}

impl fmt::Debug for OwnedFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests;
