//! The store's error type, and the opaque wrapper around the database engine's errors.

use std::fmt;
use std::path::PathBuf;

use mosaic_core::{Id, Kind, RecordError};

/// Any error from `mosaic-store`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process (or another [`Store`](crate::Store) in this one) has
    /// the database open. Close it, or point this one at another directory.
    #[error("the store at {} is already open elsewhere", path.display())]
    AlreadyOpen {
        /// The database file.
        path: PathBuf,
    },
    /// The database was written in another format version. Nothing was
    /// changed; run a program that reads version `found`, export the records
    /// with it and import them here.
    #[error(
        "the store at {} has format version {found}, this program reads only version {expected}",
        path.display()
    )]
    FormatVersion {
        /// The database file.
        path: PathBuf,
        /// The version the file records.
        found: u32,
        /// The version this program reads and writes.
        expected: u32,
    },
    /// The file is a database of the engine this store uses, but not a
    /// Mosaic store (it has tables and no format version). Nothing was
    /// changed; choose another directory.
    #[error("{} is a database but not a Mosaic store", path.display())]
    NotAStore {
        /// The database file.
        path: PathBuf,
    },
    /// The database engine failed (disk full, an I/O error, a damaged file).
    /// The operation was not applied; see [`DatabaseError`] for the cause.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// Data read back from the store is damaged. The operation stopped
    /// before changing anything; the damaged entry can be removed with
    /// [`Store::remove`](crate::Store::remove) or by re-importing an export.
    #[error("damaged data in the store: {0}")]
    Corrupt(#[from] Corruption),
    /// The store's write-ahead log (`store.wal`, beside the database) cannot
    /// be used; `problem` says why and what to do. A store that refuses its
    /// log changes nothing.
    #[error("the write-ahead log {}: {problem}", path.display())]
    Log {
        /// The log file.
        path: PathBuf,
        /// What is wrong with it.
        problem: LogProblem,
    },
    /// Reading an import stream, writing an export stream or preparing the
    /// store's directory failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A BLOB's data does not hash to the hash it was submitted under
    /// (D-18: the submission is INVALID). Resubmit with the right hash.
    #[error(
        "the BLOB hashes to {}, not to the claimed {}",
        hex(actual),
        hex(claimed)
    )]
    BlobHashMismatch {
        /// The hash the caller gave.
        claimed: [u8; 32],
        /// The BLAKE3-256 hash of the data.
        actual: [u8; 32],
    },
    /// A BLOB is larger than [`StoreConfig::max_blob_len`](crate::StoreConfig::max_blob_len)
    /// (TOO_LARGE on the wire). Raise the limit or refuse the BLOB.
    #[error("a BLOB of {len} bytes is larger than the limit of {max} bytes")]
    BlobTooLarge {
        /// The BLOB's length.
        len: u64,
        /// The configured limit.
        max: u64,
    },
    /// An import stream holds a length prefix that no record can have
    /// (larger than a record's 1 MiB or smaller than its header). The
    /// stream is not an export, or is damaged at `offset`; records before
    /// it were imported.
    #[error("the import stream has an impossible record length {len} at byte {offset}")]
    ImportFrame {
        /// Byte offset of the length prefix in the stream.
        offset: u64,
        /// The length it declares.
        len: u64,
    },
    /// An import stream ends in the middle of a record. Records before it
    /// were imported; the stream was probably cut short.
    #[error("the import stream ends inside the record that starts at byte {offset}")]
    ImportTruncated {
        /// Byte offset of the incomplete record's length prefix.
        offset: u64,
    },
}

impl StoreError {
    /// Whether trying the same operation again later may succeed without
    /// anyone acting on the store (a server answers TEMPORARY_ERROR for
    /// these and PERSISTENT_ERROR for the rest).
    ///
    /// | variant | transient |
    /// |---|---|
    /// | [`AlreadyOpen`](Self::AlreadyOpen) | yes: the other holder may close it |
    /// | [`Io`](Self::Io), [`Database`](Self::Database) on I/O | when the I/O error's kind is [`Interrupted`](std::io::ErrorKind::Interrupted), [`WouldBlock`](std::io::ErrorKind::WouldBlock), [`TimedOut`](std::io::ErrorKind::TimedOut) or [`ResourceBusy`](std::io::ErrorKind::ResourceBusy); not for other kinds, such as a full disk or a denied permission |
    /// | [`Database`](Self::Database), other | only when the file is open elsewhere; not for damage, an engine format to upgrade or an engine that needs reopening after a failed write |
    /// | [`FormatVersion`](Self::FormatVersion), [`NotAStore`](Self::NotAStore), [`Corrupt`](Self::Corrupt), [`Log`](Self::Log) | no: an operator must act (for a failed log write: reopen the store) |
    /// | [`BlobHashMismatch`](Self::BlobHashMismatch), [`BlobTooLarge`](Self::BlobTooLarge) | no: the same request fails again |
    /// | [`ImportFrame`](Self::ImportFrame), [`ImportTruncated`](Self::ImportTruncated) | no: the stream is damaged |
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::AlreadyOpen { .. } => true,
            StoreError::Io(e) => transient_io(e.kind()),
            StoreError::Database(d) => d.is_already_open() || d.io_kind().is_some_and(transient_io),
            StoreError::FormatVersion { .. }
            | StoreError::NotAStore { .. }
            | StoreError::Corrupt(_)
            | StoreError::Log { .. }
            | StoreError::BlobHashMismatch { .. }
            | StoreError::BlobTooLarge { .. }
            | StoreError::ImportFrame { .. }
            | StoreError::ImportTruncated { .. } => false,
        }
    }
}

/// Whether an I/O error of this kind may pass by itself.
fn transient_io(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind;
    matches!(
        kind,
        ErrorKind::Interrupted
            | ErrorKind::WouldBlock
            | ErrorKind::TimedOut
            | ErrorKind::ResourceBusy
    )
}

/// Why a store cannot use its write-ahead log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LogProblem {
    /// The file does not begin with the log's magic bytes (or is shorter
    /// than its header): it is not a Mosaic store log. Move it away; if it
    /// was the log of this store, writes acknowledged since its last
    /// checkpoint are lost.
    #[error("is not a Mosaic store log; move it out of the store's directory")]
    NotALog,
    /// The log was written in another layout version.
    #[error(
        "has log version {found}, this program reads only version {expected}; open the store with the program that wrote it once, which empties the log"
    )]
    Version {
        /// The version the log records.
        found: u32,
        /// The version this program reads and writes.
        expected: u32,
    },
    /// The log's header fails its checksum.
    #[error("has a damaged header; move it away (writes since the last checkpoint are lost)")]
    DamagedHeader,
    /// The log belongs to another store (its identity differs from the one
    /// this database records): a log copied or moved between directories.
    #[error(
        "belongs to another store; put it back beside its own database, or move it away if that store is gone"
    )]
    OtherStore,
    /// The log's first entry comes after the entry following the last one
    /// the database holds: entries in between are missing.
    #[error(
        "is missing entries: the database holds entries up to {checkpointed} and the log begins at {first}; restore the log or a backup"
    )]
    Gap {
        /// The last entry the database holds.
        checkpointed: u64,
        /// The first entry of the log.
        first: u64,
    },
    /// An entry passed its checksum but does not decode: the log was
    /// written by a program with another layout.
    #[error("holds entry {seq}, which does not decode; restore a backup")]
    BadEntry {
        /// The entry's sequence number.
        seq: u64,
    },
    /// A write to the log or to the database failed halfway, so the two may
    /// disagree: no more writes are taken until the store is reopened,
    /// which recovers every acknowledged write from the log.
    #[error("failed an earlier write; close and reopen the store")]
    Failed,
}

/// What is damaged, when the store reads back data it cannot make sense of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// A stored record's bytes fail the layout checks.
    #[error(
        "the stored record whose id begins with {} is malformed: {error}",
        hex(id_prefix)
    )]
    Record {
        /// The record's key: the first 16 bytes of its id.
        id_prefix: [u8; 16],
        /// What the layout check found.
        error: RecordError,
    },
    /// A stored record's metadata (received-at time) does not decode.
    #[error(
        "the metadata of the stored record whose id begins with {} does not decode",
        hex(id_prefix)
    )]
    RecordMeta {
        /// The record's key: the first 16 bytes of its id.
        id_prefix: [u8; 16],
    },
    /// A record is stored under a key that is not the start of its id.
    #[error("the record stored under {} has the id {id:?}", hex(key))]
    RecordKey {
        /// The key it is stored under.
        key: [u8; 16],
        /// The id its bytes carry.
        id: Id,
    },
    /// A block of index entries does not hold a whole number of entries.
    #[error("a block in table {table} is malformed")]
    IndexBlock {
        /// The table.
        table: &'static str,
    },
    /// An index entry names a record that is not stored. Index entries keep
    /// only the start of an id; a record whose id begins with `id_prefix`
    /// is missing.
    #[error(
        "table {table} names a record whose id begins with {}, which is not stored",
        hex(id_prefix)
    )]
    DanglingIndex {
        /// The index table.
        table: &'static str,
        /// The first 16 bytes of the missing record's id: its timestamp
        /// (big-endian) and the first 8 bytes of its hash.
        id_prefix: [u8; 16],
    },
    /// An entry of the `meta` table (such as the format version) does not
    /// decode.
    #[error("the meta entry {name} does not decode")]
    Meta {
        /// The entry's name.
        name: &'static str,
    },
    /// The per-kind counts of a kind do not decode.
    #[error("the counts of kind {kind} do not decode")]
    KindStats {
        /// The kind.
        kind: Kind,
    },
    /// An entry of a moderation table (allow-list or bans) does not decode.
    /// Lift or set the ban again, or remove and re-add the user.
    #[error("an entry of table {table} does not decode")]
    Moderation {
        /// The table.
        table: &'static str,
    },
    /// A stored BLOB does not hash to its key.
    #[error("the BLOB stored under {} is damaged", hex(hash))]
    Blob {
        /// The key it is stored under.
        hash: [u8; 32],
    },
}

/// An error of the database engine, kept opaque so that the engine is not
/// part of this crate's API. [`Display`](fmt::Display) and
/// [`source`](std::error::Error::source) give the engine's own account.
pub struct DatabaseError(Box<redb::Error>);

impl DatabaseError {
    /// The kind of the underlying I/O error, when the engine failed on I/O
    /// (for example [`StorageFull`](std::io::ErrorKind::StorageFull)).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match &*self.0 {
            redb::Error::Io(e) => Some(e.kind()),
            _ => None,
        }
    }

    /// Whether the engine found the file damaged. Restore a backup or an
    /// export; the file should not be written to before that.
    pub fn is_corruption(&self) -> bool {
        matches!(&*self.0, redb::Error::Corrupted(_))
    }

    /// Whether the engine refused the file because its format is older than
    /// the engine's and must be upgraded first.
    pub fn is_upgrade_required(&self) -> bool {
        matches!(&*self.0, redb::Error::UpgradeRequired(_))
    }

    pub(crate) fn is_already_open(&self) -> bool {
        matches!(&*self.0, redb::Error::DatabaseAlreadyOpen)
    }
}

impl fmt::Debug for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseError").field(&self.0).finish()
    }
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database error: {}", self.0)
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.0 {
            redb::Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Converts each of the engine's error types into [`StoreError::Database`].
macro_rules! from_engine {
    ($($ty:ty),* $(,)?) => {
        $(
            impl From<$ty> for DatabaseError {
                fn from(e: $ty) -> DatabaseError {
                    DatabaseError(Box::new(redb::Error::from(e)))
                }
            }

            impl From<$ty> for StoreError {
                fn from(e: $ty) -> StoreError {
                    StoreError::Database(DatabaseError::from(e))
                }
            }
        )*
    };
}

from_engine!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);

/// Lower-case hex, for hashes in messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_are_wrapped_and_classified() {
        let e = StoreError::from(redb::StorageError::Corrupted("page".to_owned()));
        match &e {
            StoreError::Database(d) => {
                assert!(d.is_corruption());
                assert!(!d.is_already_open());
                assert_eq!(d.io_kind(), None);
            }
            other => panic!("expected a database error, got {other:?}"),
        }
        assert!(e.to_string().contains("page"), "{e}");

        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "full");
        let e = DatabaseError::from(redb::StorageError::Io(io));
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::StorageFull));
        assert!(std::error::Error::source(&e).is_some());
        assert!(!e.is_upgrade_required());
    }

    #[test]
    fn transient_errors_are_those_that_may_pass() {
        use std::io::{Error, ErrorKind};
        let io = |kind| StoreError::Io(Error::new(kind, "x"));
        let engine_io = |kind| StoreError::from(redb::StorageError::Io(Error::new(kind, "x")));
        for kind in [
            ErrorKind::Interrupted,
            ErrorKind::WouldBlock,
            ErrorKind::TimedOut,
            ErrorKind::ResourceBusy,
        ] {
            assert!(io(kind).is_transient(), "{kind:?}");
            assert!(engine_io(kind).is_transient(), "{kind:?}");
        }
        for kind in [
            ErrorKind::StorageFull,
            ErrorKind::PermissionDenied,
            ErrorKind::Other,
            ErrorKind::UnexpectedEof,
        ] {
            assert!(!io(kind).is_transient(), "{kind:?}");
            assert!(!engine_io(kind).is_transient(), "{kind:?}");
        }
        assert!(
            StoreError::AlreadyOpen {
                path: PathBuf::from("s")
            }
            .is_transient()
        );
        assert!(StoreError::from(redb::DatabaseError::DatabaseAlreadyOpen).is_transient());
        let persistent = [
            StoreError::from(redb::StorageError::Corrupted("page".to_owned())),
            StoreError::from(redb::StorageError::PreviousIo),
            StoreError::FormatVersion {
                path: PathBuf::from("s"),
                found: 1,
                expected: 2,
            },
            StoreError::NotAStore {
                path: PathBuf::from("s"),
            },
            StoreError::Corrupt(Corruption::Blob { hash: [0; 32] }),
            StoreError::BlobHashMismatch {
                claimed: [0; 32],
                actual: [1; 32],
            },
            StoreError::BlobTooLarge { len: 2, max: 1 },
            StoreError::ImportFrame { offset: 0, len: 1 },
            StoreError::ImportTruncated { offset: 0 },
        ];
        for e in persistent {
            assert!(!e.is_transient(), "{e:?}");
        }
    }

    #[test]
    fn blob_errors_print_hex() {
        let e = StoreError::BlobHashMismatch {
            claimed: [0xab; 32],
            actual: [0x01; 32],
        };
        let text = e.to_string();
        assert!(text.contains(&"ab".repeat(32)), "{text}");
        assert!(text.contains(&"01".repeat(32)), "{text}");
    }
}
