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
    /// A record was invalid, or could not be built.
    #[error(transparent)]
    Record(#[from] crate::record::RecordError),
    /// A reference, id or address was invalid.
    #[error(transparent)]
    Reference(#[from] crate::reference::ReferenceError),
    /// A tag or tag set was invalid.
    #[error(transparent)]
    Tag(#[from] crate::tag::TagError),
    /// A timestamp was out of range or malformed.
    #[error(transparent)]
    Timestamp(#[from] crate::timestamp::TimestampError),
    /// A protocol message was malformed, or could not be encoded.
    #[error(transparent)]
    Message(#[from] crate::message::MessageError),
    /// A signature did not verify.
    #[error(transparent)]
    Signature(#[from] crate::crypto::SignatureError),
}
