//! The one place where bytes are reinterpreted as an unsized view type.
//!
//! `Record`, `TagSet`, `Tag` and `Filter` are `#[repr(transparent)]` newtypes
//! over `[u8]`, used as `&Record` like `&str` or `&Path`. Their constructors
//! check the bytes and then call the function this macro writes.

/// Writes `fn cast(bytes: &[u8]) -> &Self` for a `#[repr(transparent)]`
/// newtype over `[u8]`. Callers must have checked the bytes first.
macro_rules! byte_view {
    ($ty:ident) => {
        impl $ty {
            /// Reinterprets checked bytes as this view.
            #[allow(unsafe_code)]
            #[inline]
            pub(crate) const fn cast(bytes: &[u8]) -> &$ty {
                // SAFETY: `$ty` is `#[repr(transparent)]` over `[u8]`, so a
                // `*const [u8]` and a `*const $ty` have the same layout and
                // the same slice-length metadata; the lifetime is carried over
                // unchanged.
                unsafe { &*(bytes as *const [u8] as *const $ty) }
            }
        }
    };
}

pub(crate) use byte_view;

/// Rounds a length up to the next multiple of 8.
#[inline]
pub(crate) const fn padded(len: usize) -> usize {
    (len + 7) & !7
}

/// Reads a little-endian u16 at `at`; the caller has checked the bounds.
#[inline]
pub(crate) fn le_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// Reads a little-endian u32 at `at`; the caller has checked the bounds.
#[inline]
pub(crate) fn le_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Copies `N` bytes at `at`; the caller has checked the bounds.
#[inline]
pub(crate) fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}
