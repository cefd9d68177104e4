//! The crate's error type: one enum wrapping each area's own error.

/// Any error from `mosaic-core`.
///
/// Each variant wraps the narrower error of one area; match on that when a
/// caller needs to tell the cases apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A printable (human-encoded) string was malformed.
    #[error(transparent)]
    Printable(#[from] crate::printable::PrintableError),
    /// A key was invalid.
    #[error(transparent)]
    Key(#[from] crate::keys::KeyError),
    /// A signature did not verify.
    #[error(transparent)]
    Signature(#[from] crate::crypto::SignatureError),
    /// An encrypted secret key could not be made, parsed or opened.
    #[error(transparent)]
    EncryptedKey(#[from] crate::encrypted::EncryptedKeyError),
    /// A string is not a Mosaic URL.
    #[error(transparent)]
    Url(#[from] crate::url::UrlError),
    /// A bootstrap was malformed.
    #[error(transparent)]
    Bootstrap(#[from] crate::bootstrap::BootstrapError),
}
