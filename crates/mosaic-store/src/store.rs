//! [`Store`]: opening a store, writing records, looking them up, counting them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mosaic_core::{Address, Filter, Id, Kind, Record, Timestamp};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableHandle,
    WriteTransaction,
};

use crate::config::StoreConfig;
use crate::error::{Corruption, DatabaseError, StoreError};
use crate::layout::{
    BLOBS, BY_AUTHOR_KIND, BY_KIND, BY_SIGNER, BY_TAG, FORMAT_VERSION, KIND_STATS, META,
    META_FORMAT_VERSION, RECORDS, RecordMeta, decode_counts, decode_record, short_id,
};
use crate::query::{self, QueryCursor, Records, StoredRecord};
use crate::write::{InsertOutcome, Writer};

/// The name of the database file inside a store's directory.
pub const DATABASE_FILE: &str = "store.redb";

/// The durable record store.
///
/// One writer at a time (writes queue up behind each other), any number of
/// concurrent readers, which never block the writer and see a consistent
/// snapshot. `Store` is `Send + Sync`: share it through an `Arc`.
///
/// Every method that changes the store commits one durable transaction and
/// returns only after it is on disk.
pub struct Store {
    db: Database,
    path: PathBuf,
    config: StoreConfig,
    #[cfg(any(test, feature = "fault-injection"))]
    pub(crate) faults: crate::fault::Faults,
}

/// Counts of one kind, from [`Store::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindStats {
    /// The kind.
    pub kind: Kind,
    /// How many records of it are stored.
    pub records: u64,
    /// Their total size in bytes (the records' own bytes).
    pub bytes: u64,
}

/// What a store holds, from [`Store::stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStats {
    /// How many records are stored.
    pub records: u64,
    /// Their total size in bytes (the records' own bytes, without indexes).
    pub record_bytes: u64,
    /// Counts per kind, in kind order; kinds with no record are absent.
    pub kinds: Vec<KindStats>,
    /// How many BLOBs are stored.
    pub blobs: u64,
    /// Their total size in bytes.
    pub blob_bytes: u64,
    /// The size of the database file, indexes and free space included.
    pub file_bytes: u64,
}

impl Store {
    /// Opens the store in directory `dir`, creating the directory and an
    /// empty store when there is none.
    ///
    /// A database of another format version is refused with
    /// [`StoreError::FormatVersion`], and one that is not a Mosaic store with
    /// [`StoreError::NotAStore`]; neither is changed. After a crash, the open
    /// first recovers the last durable commit.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Store, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DATABASE_FILE);
        let started = Instant::now();
        if !path.try_exists()? {
            Store::create(dir, &path, &config)?;
        }
        let db = Store::engine(&path, &config, false)?;
        let store = Store {
            db,
            path,
            config,
            #[cfg(any(test, feature = "fault-injection"))]
            faults: crate::fault::Faults::default(),
        };
        store.check_format()?;
        tracing::info!(
            path = %store.path.display(),
            took_ms = started.elapsed().as_millis() as u64,
            "store opened"
        );
        Ok(store)
    }

    /// Opens (or, with `create`, creates) the database file.
    fn engine(path: &Path, config: &StoreConfig, create: bool) -> Result<Database, StoreError> {
        let mut builder = Database::builder();
        builder.set_cache_size(config.cache_bytes);
        let opened = if create {
            builder.create(path)
        } else {
            builder.open(path)
        };
        opened.map_err(|e| {
            let e = DatabaseError::from(e);
            if e.is_already_open() {
                StoreError::AlreadyOpen {
                    path: path.to_path_buf(),
                }
            } else {
                e.into()
            }
        })
    }

    /// Makes a new, empty store at `path` atomically: it is built and
    /// committed under a temporary name, then linked into place, so that a
    /// crash while creating leaves no half-written database behind.
    fn create(dir: &Path, path: &Path, config: &StoreConfig) -> Result<(), StoreError> {
        let prefix = format!("{DATABASE_FILE}.new-");
        // Left behind by a creation that was interrupted.
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                std::fs::remove_file(entry.path())?;
            }
        }
        let fresh = dir.join(format!("{prefix}{}", std::process::id()));
        {
            let db = Store::engine(&fresh, config, true)?;
            let store = Store {
                db,
                path: fresh.clone(),
                config: config.clone(),
                #[cfg(any(test, feature = "fault-injection"))]
                faults: crate::fault::Faults::default(),
            };
            store.check_format()?;
        }
        // A hard link fails if another process created the store meanwhile;
        // where the file system has no hard links, a rename does.
        match std::fs::hard_link(&fresh, path) {
            Ok(()) => std::fs::remove_file(&fresh)?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&fresh)?;
            }
            Err(_) => std::fs::rename(&fresh, path)?,
        }
        // Make the new name durable.
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    }

    /// Checks the format version, or writes it into a new database, and
    /// creates any missing table.
    fn check_format(&self) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found =
                match meta.get(META_FORMAT_VERSION)? {
                    Some(v) => Some(postcard::from_bytes::<u32>(v.value()).map_err(|_| {
                        Corruption::Meta {
                            name: META_FORMAT_VERSION,
                        }
                    })?),
                    None => None,
                };
            match found {
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(StoreError::FormatVersion {
                        path: self.path.clone(),
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
                None => {
                    // A new database has no table but the `meta` just opened.
                    if txn.list_tables()?.any(|t| t.name() != "meta")
                        || txn.list_multimap_tables()?.next().is_some()
                    {
                        return Err(StoreError::NotAStore {
                            path: self.path.clone(),
                        });
                    }
                    let version = postcard::to_allocvec(&FORMAT_VERSION).unwrap_or_default();
                    meta.insert(META_FORMAT_VERSION, version.as_slice())?;
                }
            }
        }
        txn.open_table(RECORDS)?;
        txn.open_table(BY_SIGNER)?;
        txn.open_table(BY_KIND)?;
        txn.open_table(BY_TAG)?;
        txn.open_table(BY_AUTHOR_KIND)?;
        txn.open_table(KIND_STATS)?;
        txn.open_table(BLOBS)?;
        crate::moderation::create_tables(&txn)?;
        txn.commit()?;
        Ok(())
    }

    /// Verifies the checksum of every page of the database file, repairing
    /// the engine's own bookkeeping when it can. Returns `true` when the file
    /// was sound, `false` when it was repaired; a file beyond repair is a
    /// [`StoreError::Database`]. It reads the whole file, and needs the store
    /// to itself: no query iterator may be alive.
    pub fn check_integrity(&mut self) -> Result<bool, StoreError> {
        Ok(self.db.check_integrity()?)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// A durable write transaction. End it with [`commit`](Self::commit)
    /// or [`abort`](Self::abort).
    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        #[cfg(any(test, feature = "fault-injection"))]
        self.faults.before_write()?;
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.set_quick_repair(self.config.quick_repair);
        Ok(txn)
    }

    /// Commits a write transaction durably.
    pub(crate) fn commit(&self, txn: WriteTransaction) -> Result<(), StoreError> {
        txn.commit()?;
        #[cfg(any(test, feature = "fault-injection"))]
        self.faults.after_write()?;
        Ok(())
    }

    /// Drops a write transaction that has nothing to store.
    pub(crate) fn abort(&self, txn: WriteTransaction) -> Result<(), StoreError> {
        txn.abort()?;
        #[cfg(any(test, feature = "fault-injection"))]
        self.faults.after_write()?;
        Ok(())
    }

    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        #[cfg(any(test, feature = "fault-injection"))]
        self.faults.before_read()?;
        Ok(self.db.begin_read()?)
    }

    /// Stores one record received at `received_at`, with the kind
    /// semantics of `kind.md` and D-7, in one durable commit.
    ///
    /// The record must have been validated ([`Record::from_bytes`]); the
    /// store does not check signatures again.
    pub fn insert(
        &self,
        record: &Record,
        received_at: Timestamp,
    ) -> Result<InsertOutcome, StoreError> {
        let outcomes = self.insert_batch([(record, received_at)])?;
        // One record in, one outcome out.
        Ok(outcomes
            .into_iter()
            .next()
            .unwrap_or(InsertOutcome::Duplicate))
    }

    /// Stores many records in ONE durable transaction (group commit) and
    /// returns each one's outcome, in order. Records are applied in order,
    /// so two replaceable records at one address in a batch behave as if
    /// submitted one after the other. The call returns only after the
    /// commit is durable; on an error nothing of the batch is stored.
    pub fn insert_batch<R: AsRef<Record>>(
        &self,
        batch: impl IntoIterator<Item = (R, Timestamp)>,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let started = Instant::now();
        let txn = self.begin_write()?;
        let mut outcomes = Vec::new();
        {
            let mut writer = Writer::open(&txn)?;
            let batch = batch.into_iter();
            writer.reserve(batch.size_hint().0);
            for (record, received_at) in batch {
                outcomes.push(writer.insert(record.as_ref(), received_at)?);
            }
            writer.finish()?;
        }
        let stored = outcomes.iter().filter(|o| o.is_stored()).count();
        if stored == 0 {
            // Nothing to make durable.
            self.abort(txn)?;
        } else {
            self.commit(txn)?;
        }
        tracing::debug!(
            records = outcomes.len(),
            stored,
            took_us = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        Ok(outcomes)
    }

    /// Removes a record and all its index entries, in one durable commit
    /// (operators moderate their servers). The space is reused by later
    /// writes. Returns whether the record was stored.
    pub fn remove(&self, id: &Id) -> Result<bool, StoreError> {
        Ok(self.remove_batch([id])? == 1)
    }

    /// Removes many records in one durable commit, as
    /// [`remove`](Self::remove) does one. Returns how many were stored.
    pub fn remove_batch<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a Id>,
    ) -> Result<u64, StoreError> {
        let txn = self.begin_write()?;
        let mut removed = 0;
        {
            let mut writer = Writer::open(&txn)?;
            for id in ids {
                if writer.remove(id)? {
                    removed += 1;
                    tracing::debug!(id = ?id, "record removed");
                }
            }
            writer.finish()?;
        }
        if removed > 0 {
            self.commit(txn)?;
        } else {
            self.abort(txn)?;
        }
        Ok(removed)
    }

    /// The record with this id.
    pub fn get(&self, id: &Id) -> Result<Option<StoredRecord>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        let short = short_id(id);
        let Some(value) = table.get(&short)? else {
            return Ok(None);
        };
        let (record, received_at) = decode_record(&short, value.value())?;
        // Another record may hold the short id (see `InsertOutcome::Duplicate`).
        Ok((record.id() == *id).then(|| StoredRecord {
            record: record.to_owned(),
            received_at,
        }))
    }

    /// Whether a record with this id is stored.
    pub fn contains(&self, id: &Id) -> Result<bool, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(RECORDS)?;
        let short = short_id(id);
        let Some(value) = table.get(&short)? else {
            return Ok(false);
        };
        // The record's bytes, after its metadata, begin with its id.
        let (_, bytes) = postcard::take_from_bytes::<RecordMeta>(value.value())
            .map_err(|_| Corruption::RecordMeta { id_prefix: short })?;
        Ok(bytes.starts_with(id.as_bytes()))
    }

    /// The newest record stored at an address (by timestamp, then id): for
    /// a replaceable kind the only one, for the others the latest version.
    pub fn latest(&self, address: &Address) -> Result<Option<StoredRecord>, StoreError> {
        self.versions(address)?.next().transpose()
    }

    /// Every record stored at an address, newest first.
    pub fn versions(&self, address: &Address) -> Result<Records, StoreError> {
        Records::versions(&self.begin_read()?, address)
    }

    /// The records matching `filter`, newest first (D-5: timestamp
    /// descending, then id descending), at most `limit` of them, streamed
    /// from one snapshot without collecting the result.
    ///
    /// A filter with no narrow element scans every record: the server
    /// decides whether to allow that (D-6). LIMIT 0 on the wire means the
    /// server's maximum (D-5): resolve it before calling, as a `limit` of
    /// 0 here yields nothing.
    pub fn query(&self, filter: &Filter, limit: usize) -> Result<Records, StoreError> {
        self.query_from(filter, limit, None)
    }

    /// The same query as [`query`](Self::query), continued strictly after
    /// `after` in D-5 order: the records matching `filter` that come after
    /// the cursor, newest first, at most `limit` of them, from a new
    /// snapshot.
    ///
    /// This lets a caller answer a long query in parts without holding a
    /// snapshot in between: take [`Records::resume_point`] from one part,
    /// drop the iterator, and call this when ready for the next. When
    /// nothing is written meanwhile, the parts together are exactly the
    /// records of one query. Records written meanwhile appear when they
    /// come after the cursor (are older than the last one examined) and
    /// match; records newer than the cursor never do, and records removed
    /// meanwhile no longer appear.
    pub fn query_after(
        &self,
        filter: &Filter,
        limit: usize,
        after: QueryCursor,
    ) -> Result<Records, StoreError> {
        self.query_from(filter, limit, Some(after))
    }

    fn query_from(
        &self,
        filter: &Filter,
        limit: usize,
        after: Option<QueryCursor>,
    ) -> Result<Records, StoreError> {
        let txn = self.begin_read()?;
        let plan = {
            let stats = txn.open_table(KIND_STATS)?;
            // Unreadable counts make a kind look common, never rare.
            let count = |kind: Kind| -> u64 {
                match stats.get(&kind.to_be_bytes()) {
                    Ok(Some(v)) => decode_counts(kind, v.value()).map_or(u64::MAX, |c| c.records),
                    Ok(None) => 0,
                    Err(_) => u64::MAX,
                }
            };
            query::plan(filter, count)
        };
        tracing::trace!(?plan, limit, ?after, "query planned");
        Records::query(&txn, filter, limit, plan, after)
    }

    /// Record and BLOB counts, and the size of the file.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let txn = self.begin_read()?;
        let mut kinds = Vec::new();
        for item in txn.open_table(KIND_STATS)?.iter()? {
            let (key, value) = item?;
            let kind = Kind::from_be_bytes(*key.value());
            let counts = decode_counts(kind, value.value())?;
            kinds.push(KindStats {
                kind,
                records: counts.records,
                bytes: counts.bytes,
            });
        }
        let (blobs, blob_bytes) = crate::blob::counts(&txn)?;
        Ok(StoreStats {
            records: kinds.iter().map(|k| k.records).sum(),
            record_bytes: kinds.iter().map(|k| k.bytes).sum(),
            kinds,
            blobs,
            blob_bytes,
            file_bytes: std::fs::metadata(&self.path)?.len(),
        })
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
