//! Who may read a record (`kind.md` read access; SPEC-NOTES D-8).

use mosaic_core::{PublicKey, ReadAccess, Record};

/// Whether `reader` (the connection's authenticated key, if any) may be
/// served `record`.
///
/// - "everybody": anyone, authenticated or not;
/// - "author only": the authenticated author;
/// - "author + tagged": the author and the keys of its Notify Public Key
///   tags (D-8);
/// - the reserved value: nobody, until the spec defines it.
pub fn may_read(record: &Record, reader: Option<&PublicKey>) -> bool {
    match record.kind().read_access() {
        ReadAccess::Everybody => true,
        ReadAccess::AuthorOnly => reader == Some(&record.author()),
        ReadAccess::AuthorAndTagged => match reader {
            Some(reader) => {
                *reader == record.author() || record.tags().notified_keys().any(|k| k == *reader)
            }
            None => false,
        },
        _ => false,
    }
}
