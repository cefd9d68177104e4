//! [`FilterBuilder`]: encodes a filter from typed parts.

use crate::keys::PublicKey;
use crate::kind::Kind;
use crate::reference::Id;
use crate::tag::Tag;
use crate::timestamp::Timestamp;
use crate::view::padded;

use super::{ElementType, FilterError, HEADER_LEN, MAX_FILTER_LEN, OwnedFilter};

/// Most words one element can span (its length is a u8).
const MAX_ELEMENT_WORDS: usize = 255;
/// Most data bytes one element can carry.
const MAX_ELEMENT_DATA: usize = (MAX_ELEMENT_WORDS - 1) * 8;

/// Builds a filter.
///
/// Calling a list method twice extends the list; each included- or
/// excluded-tags call adds an element of its own (a record must match each).
///
/// ```
/// use mosaic_core::{FilterBuilder, Kind, SecretKey, Timestamp};
///
/// # fn main() -> Result<(), mosaic_core::Error> {
/// let alice = SecretKey::from_bytes(&[1u8; 32]).public();
/// let filter = FilterBuilder::new()
///     .authors([alice])
///     .kinds([Kind::MICROBLOG_ROOT])
///     .since(Timestamp::from_nanos(1_700_000_000_000_000_000)?)
///     .build()?;
/// assert!(filter.is_narrow());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct FilterBuilder {
    authors: Option<Vec<PublicKey>>,
    signers: Option<Vec<PublicKey>>,
    kinds: Option<Vec<Kind>>,
    timestamps: Option<Vec<Timestamp>>,
    included_tags: Vec<Vec<u8>>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    received_since: Option<Timestamp>,
    received_until: Option<Timestamp>,
    exclude: Option<Vec<Id>>,
    excluded_tags: Vec<Vec<u8>>,
}

impl FilterBuilder {
    /// An empty filter (it matches every record).
    pub fn new() -> FilterBuilder {
        FilterBuilder::default()
    }

    /// Records by any of these authors.
    pub fn authors(mut self, keys: impl IntoIterator<Item = PublicKey>) -> Self {
        self.authors.get_or_insert_with(Vec::new).extend(keys);
        self
    }

    /// Records signed by any of these keys.
    pub fn signers(mut self, keys: impl IntoIterator<Item = PublicKey>) -> Self {
        self.signers.get_or_insert_with(Vec::new).extend(keys);
        self
    }

    /// Records of any of these kinds.
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = Kind>) -> Self {
        self.kinds.get_or_insert_with(Vec::new).extend(kinds);
        self
    }

    /// Records with any of these exact timestamps.
    pub fn timestamps(mut self, timestamps: impl IntoIterator<Item = Timestamp>) -> Self {
        self.timestamps
            .get_or_insert_with(Vec::new)
            .extend(timestamps);
        self
    }

    /// Records carrying at least one of these tags (adds one element).
    pub fn included_tags<'t>(mut self, tags: impl IntoIterator<Item = &'t Tag>) -> Self {
        self.included_tags.push(concat_tags(tags));
        self
    }

    /// Records at or after `t`.
    pub fn since(mut self, t: Timestamp) -> Self {
        self.since = Some(t);
        self
    }

    /// Records at or before `t`.
    pub fn until(mut self, t: Timestamp) -> Self {
        self.until = Some(t);
        self
    }

    /// Records the server received at or after `t`.
    pub fn received_since(mut self, t: Timestamp) -> Self {
        self.received_since = Some(t);
        self
    }

    /// Records the server received at or before `t`.
    pub fn received_until(mut self, t: Timestamp) -> Self {
        self.received_until = Some(t);
        self
    }

    /// Leaves out these records (by the first 32 bytes of their ids).
    pub fn exclude(mut self, ids: impl IntoIterator<Item = Id>) -> Self {
        self.exclude.get_or_insert_with(Vec::new).extend(ids);
        self
    }

    /// Records carrying none of these tags (adds one element).
    pub fn excluded_tags<'t>(mut self, tags: impl IntoIterator<Item = &'t Tag>) -> Self {
        self.excluded_tags.push(concat_tags(tags));
        self
    }

    /// Encodes the filter.
    pub fn build(&self) -> Result<OwnedFilter, FilterError> {
        let mut out = vec![0u8; HEADER_LEN];
        if let Some(keys) = &self.authors {
            let data: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes().as_slice()).collect();
            element(&mut out, ElementType::AUTHORS, &data, 32)?;
        }
        if let Some(keys) = &self.signers {
            let data: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes().as_slice()).collect();
            element(&mut out, ElementType::SIGNERS, &data, 32)?;
        }
        if let Some(kinds) = &self.kinds {
            let bytes: Vec<[u8; 8]> = kinds.iter().map(|k| k.to_be_bytes()).collect();
            let data: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
            element(&mut out, ElementType::KINDS, &data, 8)?;
        }
        if let Some(ts) = &self.timestamps {
            let bytes: Vec<[u8; 8]> = ts.iter().map(|t| t.to_be_bytes()).collect();
            let data: Vec<&[u8]> = bytes.iter().map(|b| b.as_slice()).collect();
            element(&mut out, ElementType::TIMESTAMPS, &data, 8)?;
        }
        for tags in &self.included_tags {
            element(
                &mut out,
                ElementType::INCLUDED_TAGS,
                &[tags],
                tags.len().max(1),
            )?;
        }
        for (t, value) in [
            (ElementType::SINCE, self.since),
            (ElementType::UNTIL, self.until),
            (ElementType::RECEIVED_SINCE, self.received_since),
            (ElementType::RECEIVED_UNTIL, self.received_until),
        ] {
            if let Some(value) = value {
                element(&mut out, t, &[&value.to_be_bytes()], 8)?;
            }
        }
        if let Some(ids) = &self.exclude {
            let data: Vec<&[u8]> = ids.iter().map(|id| &id.as_bytes()[..32]).collect();
            element(&mut out, ElementType::EXCLUDE, &data, 32)?;
        }
        for tags in &self.excluded_tags {
            element(
                &mut out,
                ElementType::EXCLUDED_TAGS,
                &[tags],
                tags.len().max(1),
            )?;
        }
        if out.len() > MAX_FILTER_LEN {
            return Err(FilterError::TooLong { len: out.len() });
        }
        let len = out.len() as u16;
        out[..2].copy_from_slice(&len.to_le_bytes());
        Ok(OwnedFilter::from_built(out))
    }
}

fn concat_tags<'t>(tags: impl IntoIterator<Item = &'t Tag>) -> Vec<u8> {
    let mut data = Vec::new();
    for tag in tags {
        data.extend_from_slice(tag.as_bytes());
    }
    data
}

/// Appends one element; `unit` is the size of one entry (for the error).
fn element(
    out: &mut Vec<u8>,
    element_type: ElementType,
    entries: &[&[u8]],
    unit: usize,
) -> Result<(), FilterError> {
    let data_len: usize = entries.iter().map(|e| e.len()).sum();
    if padded(data_len) > MAX_ELEMENT_DATA {
        return Err(FilterError::TooManyEntries {
            element_type,
            count: data_len / unit,
            max: MAX_ELEMENT_DATA / unit,
        });
    }
    let words = 1 + padded(data_len) / 8;
    out.extend_from_slice(&[element_type.as_u8(), words as u8, 0, 0, 0, 0, 0, 0]);
    for e in entries {
        out.extend_from_slice(e);
    }
    out.resize(out.len() + padded(data_len) - data_len, 0);
    if out.len() > MAX_FILTER_LEN {
        return Err(FilterError::TooLong { len: out.len() });
    }
    Ok(())
}
