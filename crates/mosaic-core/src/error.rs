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
    /// A filter was invalid, or could not be built.
    #[error(transparent)]
    Filter(#[from] crate::filter::FilterError),
    /// A HELLO exchange failed.
    #[error(transparent)]
    Handshake(#[from] crate::handshake::HandshakeError),
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
    /// A key schedule was invalid, or a record's signer is not valid for
    /// its author.
    #[error(transparent)]
    KeySchedule(#[from] crate::keyschedule::KeyScheduleError),
    /// A profile was invalid, or could not be built.
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    /// A record's human-readable content could not be read.
    #[error(transparent)]
    Content(#[from] crate::content::ContentError),
    /// A protocol message was malformed, or could not be encoded.
    #[error(transparent)]
    Message(#[from] crate::message::MessageError),
    /// A signature did not verify.
    #[error(transparent)]
    Signature(#[from] crate::crypto::SignatureError),
    /// A kind could not be parsed.
    #[error(transparent)]
    Kind(#[from] crate::kind::KindError),
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
