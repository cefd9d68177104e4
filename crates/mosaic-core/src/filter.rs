//! TEMPORARY STUB of the filter module (replaced by the real one at merge):
//! checks only the 8-byte header, so that the message codec compiles.
#![allow(missing_docs, dead_code)]

use std::ops::Deref;

use crate::view::{byte_view, le_u16};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    #[error("filter too short: {len}")]
    TooShort { len: usize },
    #[error("filter length {declared} but {actual} bytes")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("filter header reserved bytes not zero")]
    ReservedNotZero,
}

#[repr(transparent)]
#[derive(PartialEq, Eq, Hash, Debug)]
pub struct Filter([u8]);

byte_view!(Filter);

impl Filter {
    pub fn len_from_header(header: &[u8]) -> Result<usize, FilterError> {
        if header.len() < 8 {
            return Err(FilterError::TooShort { len: header.len() });
        }
        Ok(usize::from(le_u16(header, 0)))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<&Filter, FilterError> {
        let declared = Filter::len_from_header(bytes)?;
        if declared != bytes.len() || declared % 8 != 0 || declared < 8 {
            return Err(FilterError::LengthMismatch {
                declared,
                actual: bytes.len(),
            });
        }
        if bytes[2..8].iter().any(|&b| b != 0) {
            return Err(FilterError::ReservedNotZero);
        }
        Ok(Filter::cast(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OwnedFilter(Vec<u8>);

impl OwnedFilter {
    pub fn from_vec(bytes: Vec<u8>) -> Result<OwnedFilter, FilterError> {
        Filter::from_bytes(&bytes)?;
        Ok(OwnedFilter(bytes))
    }
}

impl Deref for OwnedFilter {
    type Target = Filter;
    fn deref(&self) -> &Filter {
        Filter::cast(&self.0)
    }
}

impl ToOwned for Filter {
    type Owned = OwnedFilter;
    fn to_owned(&self) -> OwnedFilter {
        OwnedFilter(self.0.to_vec())
    }
}

impl std::borrow::Borrow<Filter> for OwnedFilter {
    fn borrow(&self) -> &Filter {
        self
    }
}
