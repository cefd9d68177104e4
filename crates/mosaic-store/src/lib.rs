//! `mosaic-store`: the durable Mosaic record store.
//!
//! A [`Store`] keeps validated records on disk with the kind semantics of
//! `kind.md` and decision D-7 (unique, ephemeral, replaceable, versioned),
//! each with the time it was received. It answers lookups by id and by
//! address and streams the records matching a [`Filter`](mosaic_core::Filter) newest first
//! ([`Store::query`] returns [`Records`]), from indexes on authors, signers,
//! kinds, timestamps and tags. It also stores BLOBs by hash (D-18) and
//! exports and imports all records. Beside the records it keeps a server's
//! moderation data: the allow-list of served users and the banned keys and
//! addresses ([`Store::moderation`]).
//!
//! Writes are durable before they return; [`Store::insert_batch`] makes
//! many records durable at once (the server's group commit), with one
//! append and one `fdatasync` of a write-ahead log, and applies them to the
//! database, where every later read sees them; checkpoints make the
//! database itself durable every so often, and opening after a crash
//! replays the log. Readers see
//! consistent snapshots and never block the writer. The on-disk layout is
//! described in `docs/STORE.md`.
//!
//! ```
//! use mosaic_core::{FilterBuilder, Kind, Nonce, RecordBuilder, SecretKey, Timestamp};
//! use mosaic_store::{InsertOutcome, Store, StoreConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("mosaic-store-doc-{}", std::process::id()));
//! let store = Store::open(&dir, StoreConfig::default())?;
//! let key = SecretKey::from_bytes(&[7u8; 32]);
//! let record = RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(1_750_000_000_000_000_000)?)
//!     .nonce(Nonce::from_key(b"hello"))
//!     .payload(b"Hello, Mosaic!")
//!     .build(&key)?;
//! let now = Timestamp::from_nanos(1_750_000_001_000_000_000)?;
//! assert_eq!(store.insert(&record, now)?, InsertOutcome::Inserted);
//!
//! let filter = FilterBuilder::new().authors([key.public()]).build()?;
//! let found: Vec<_> = store.query(&filter, 100)?.collect::<Result<_, _>>()?;
//! assert_eq!(found[0].record, record);
//! assert_eq!(found[0].received_at, now);
//! # drop(store);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! A long query can be answered in parts: [`Records::resume_point`] says
//! where one part stopped and [`Store::query_after`] goes on from there with
//! a new snapshot, and [`Records::with_scan_budget`] bounds the work of one
//! part. [`StoreError::is_transient`] tells errors worth retrying from those
//! that need an operator. With the feature `fault-injection`,
//! `Store::inject` makes a store fail on command, for tests of its callers.
//!
//! Logging: `debug` per committed batch and removal, `info` when a store
//! opens and when an export or import ends, `warn` for each invalid record
//! an import skips, `trace` for each query plan. Events carry ids, counts
//! and timings, never record contents.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod blob;
mod config;
mod error;
#[cfg(any(test, feature = "fault-injection"))]
mod fault;
mod layout;
mod moderation;
mod postings;
mod query;
mod store;
mod transfer;
mod wal;
mod write;

pub use blob::{BlobOutcome, blob_hash};
pub use config::StoreConfig;
pub use error::{Corruption, DatabaseError, LogProblem, StoreError};
#[cfg(any(test, feature = "fault-injection"))]
pub use fault::Fault;
pub use moderation::{Ban, Moderation};
pub use query::{QueryCursor, Records, StoredRecord};
pub use store::{DATABASE_FILE, KindStats, Store, StoreStats};
pub use transfer::ImportReport;
pub use wal::LOG_FILE;
pub use write::InsertOutcome;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        fn assert_send<T: Send>() {}
        assert_send_sync::<Store>();
        assert_send::<Records>();
        assert_send_sync::<StoreError>();
        assert_send_sync::<QueryCursor>();
    }
}
