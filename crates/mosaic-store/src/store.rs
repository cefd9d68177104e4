//! [`Store`]: opening a store, writing records, looking them up, counting them.

use std::fmt;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use mosaic_core::{Address, Filter, Id, Kind, Record, Timestamp};
use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableHandle,
    WriteTransaction,
};

use crate::config::StoreConfig;
use crate::error::{Corruption, DatabaseError, LogProblem, StoreError};
use crate::layout::{
    BLOBS, BY_AUTHOR_KIND, BY_KIND, BY_SIGNER, BY_TAG, FORMAT_VERSION, KIND_STATS, META,
    META_FORMAT_VERSION, META_LOG_SEQUENCE, META_STORE_ID, RECORDS, RecordMeta, decode_counts,
    decode_record, short_id,
};
use crate::query::{self, QueryCursor, Records, StoredRecord};
use crate::wal::{self, HEADER_LEN, LOG_FILE, Log, Op, StoreId};
use crate::write::{InsertOutcome, Writer};

/// The name of the database file inside a store's directory.
pub const DATABASE_FILE: &str = "store.redb";

/// The durable record store.
///
/// One writer at a time (writes queue up behind each other), any number of
/// concurrent readers, which never block the writer and see a consistent
/// snapshot. `Store` is `Send + Sync`: share it through an `Arc`.
///
/// Every method that changes the store returns only after the change is
/// on disk. Record writes (`insert`, `insert_batch`, `remove`,
/// `remove_batch`) are made durable in the write-ahead log and then applied
/// to the database, where every later read sees them at once; the other
/// writes, and batches of `StoreConfig::checkpoint_records` records or
/// more, commit durably in the database itself.
pub struct Store {
    db: Database,
    path: PathBuf,
    config: StoreConfig,
    /// The write-ahead log. Its lock is the store's write lock: every write
    /// transaction begins and ends under it.
    pub(crate) log: Mutex<Log>,
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
    /// first recovers the last durable commit of the database, then replays
    /// the write-ahead log ([`LOG_FILE`](crate::LOG_FILE)) beyond it and
    /// checkpoints. A log that belongs to another store or is of another
    /// layout is refused with [`StoreError::Log`].
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Store, StoreError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DATABASE_FILE);
        let started = Instant::now();
        if !path.try_exists()? {
            Store::create(dir, &path, &config)?;
        }
        let db = Store::engine(&path, &config, false)?;
        let (id, checkpointed) = check_format(&db, &path, &config)?;
        let (mut log, bytes) = Log::open(dir, &id)?;
        let replayed = recover(&db, &config, &mut log, &bytes, &id, checkpointed)?;
        let store = Store {
            db,
            path,
            config,
            log: Mutex::new(log),
            #[cfg(any(test, feature = "fault-injection"))]
            faults: crate::fault::Faults::default(),
        };
        tracing::info!(
            path = %store.path.display(),
            replayed,
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
            check_format(&db, &fresh, config)?;
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

    /// The write-ahead log's file.
    fn log_path(&self) -> PathBuf {
        self.path.with_file_name(LOG_FILE)
    }

    /// Takes the write lock (the log's), unless an earlier write left the
    /// log and the database apart.
    fn lock_log(&self) -> Result<MutexGuard<'_, Log>, StoreError> {
        let failed = || StoreError::Log {
            path: self.log_path(),
            problem: LogProblem::Failed,
        };
        let log = self.log.lock().map_err(|_| failed())?;
        if log.failed {
            return Err(failed());
        }
        Ok(log)
    }

    /// A durable write transaction, which bypasses the log (BLOBs,
    /// moderation data). End it with [`commit`](Self::commit) or
    /// [`abort`](Self::abort).
    pub(crate) fn begin_write(&self) -> Result<DurableWrite<'_>, StoreError> {
        #[cfg(any(test, feature = "fault-injection"))]
        self.faults.before_write()?;
        let log = self.lock_log()?;
        let txn = durable_txn(&self.db, &self.config)?;
        Ok(DurableWrite { log, txn })
    }

    /// Commits a write transaction durably. The commit also makes every
    /// logged write durable in the database, so the log starts over.
    pub(crate) fn commit(&self, write: DurableWrite<'_>) -> Result<(), StoreError> {
        let DurableWrite { mut log, txn } = write;
        txn.commit()?;
        rewind_after_checkpoint(&mut log);
        #[cfg(any(test, feature = "fault-injection"))]
        self.faults.after_write()?;
        Ok(())
    }

    /// Drops a write transaction that has nothing to store.
    pub(crate) fn abort(&self, write: DurableWrite<'_>) -> Result<(), StoreError> {
        write.txn.abort()?;
        #[cfg(any(test, feature = "fault-injection"))]
        self.faults.after_write()?;
        Ok(())
    }

    /// Applies record changes in one write transaction and makes them
    /// durable: with `direct`, by a durable commit of the database (which
    /// also checkpoints the log); otherwise by appending one log entry and
    /// syncing it, and then committing the transaction without waiting for
    /// the disk. `entry` gives the entry's payload and record count from
    /// what `apply` returned, or `None` when nothing changed (the
    /// transaction is then dropped).
    fn write_records<T>(
        &self,
        direct: bool,
        apply: impl FnOnce(&mut Writer<'_>) -> Result<T, StoreError>,
        entry: impl FnOnce(&T) -> Option<(Vec<u8>, u64)>,
    ) -> Result<T, StoreError> {
        #[cfg(any(test, feature = "fault-injection"))]
        self.faults.before_write()?;
        let mut log = self.lock_log()?;
        let txn = if direct {
            durable_txn(&self.db, &self.config)?
        } else {
            let mut txn = self.db.begin_write()?;
            txn.set_durability(Durability::None)?;
            txn
        };
        let result = {
            let mut writer = Writer::open(&txn)?;
            let result = apply(&mut writer)?;
            writer.finish()?;
            result
        };
        match entry(&result) {
            None => txn.abort()?,
            Some(_) if direct => {
                txn.commit()?;
                rewind_after_checkpoint(&mut log);
            }
            Some((payload, records)) => {
                let seq = log.next_seq;
                let entry = wal::entry(seq, &payload);
                // On an error nothing was applied, and the entry was never
                // acknowledged; the log is marked failed.
                log.append(&entry)?;
                // The entry is durable: from here, a failure leaves the
                // database behind the log until the store is reopened.
                let applied = set_log_sequence(&txn, seq).and_then(|()| Ok(txn.commit()?));
                if let Err(e) = applied {
                    log.failed = true;
                    return Err(e);
                }
                log.pending_records += records;
                log.pending_bytes += entry.len() as u64;
                if log.pending_records >= self.config.checkpoint_records
                    || log.pending_bytes >= self.config.checkpoint_bytes
                    || log.checkpointed_at.elapsed() >= self.config.checkpoint_interval
                {
                    // The write is durable in the log either way.
                    if let Err(e) = checkpoint(&self.db, &self.config, &mut log) {
                        tracing::warn!(error = %e, "checkpoint failed; the log keeps every write");
                    }
                }
            }
        }
        #[cfg(any(test, feature = "fault-injection"))]
        self.faults.after_write()?;
        Ok(result)
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

    /// Stores many records in ONE durable write (group commit) and
    /// returns each one's outcome, in order. Records are applied in order,
    /// so two replaceable records at one address in a batch behave as if
    /// submitted one after the other. The call returns only after the
    /// batch is durable (one log entry and one `fdatasync`, or one durable
    /// commit for a batch of `StoreConfig::checkpoint_records` records or
    /// more), and every later read sees it; on an error nothing of the
    /// batch is stored, unless the error says the log failed after the
    /// write (then the store must be reopened, and the batch may be there).
    pub fn insert_batch<R: AsRef<Record>>(
        &self,
        batch: impl IntoIterator<Item = (R, Timestamp)>,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let started = Instant::now();
        let batch: Vec<(R, Timestamp)> = batch.into_iter().collect();
        let bytes: u64 = batch.iter().map(|(r, _)| r.as_ref().len() as u64).sum();
        let direct = batch.len() as u64 >= self.config.checkpoint_records.max(1)
            || bytes >= self.config.checkpoint_bytes;
        let outcomes = self.write_records(
            direct,
            |writer| {
                writer.reserve(batch.len());
                batch
                    .iter()
                    .map(|(record, received_at)| writer.insert(record.as_ref(), *received_at))
                    .collect::<Result<Vec<_>, _>>()
            },
            |outcomes: &Vec<InsertOutcome>| {
                // Only the records stored: the others changed nothing, so
                // replaying without them ends in the same state.
                let stored: Vec<_> = batch
                    .iter()
                    .zip(outcomes)
                    .filter(|(_, o)| o.is_stored())
                    .map(|((r, at), _)| (r.as_ref(), *at))
                    .collect();
                let n = stored.len() as u64;
                (n > 0).then(|| (wal::insert_payload(stored.into_iter()), n))
            },
        )?;
        let stored = outcomes.iter().filter(|o| o.is_stored()).count();
        tracing::debug!(
            records = outcomes.len(),
            stored,
            took_us = started.elapsed().as_micros() as u64,
            "batch committed"
        );
        Ok(outcomes)
    }

    /// Removes a record and all its index entries, durably (operators
    /// moderate their servers). The space is reused by later writes.
    /// Returns whether the record was stored.
    pub fn remove(&self, id: &Id) -> Result<bool, StoreError> {
        Ok(self.remove_batch([id])? == 1)
    }

    /// Removes many records in one durable write (one log entry), as
    /// [`remove`](Self::remove) does one. Returns how many were stored.
    pub fn remove_batch<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a Id>,
    ) -> Result<u64, StoreError> {
        let removed = self.write_records(
            false,
            |writer| {
                let mut removed = Vec::new();
                for id in ids {
                    if writer.remove(id)? {
                        tracing::debug!(id = ?id, "record removed");
                        removed.push(*id);
                    }
                }
                Ok(removed)
            },
            |removed: &Vec<Id>| {
                (!removed.is_empty())
                    .then(|| (wal::remove_payload(removed.iter()), removed.len() as u64))
            },
        )?;
        Ok(removed.len() as u64)
    }

    /// Makes everything written so far durable in the database and starts
    /// the write-ahead log over, as happens by itself every
    /// `StoreConfig::checkpoint_records` records or
    /// `StoreConfig::checkpoint_interval`, and when the store is dropped.
    /// Nothing needs it for durability: it only shortens the replay of the
    /// next open after a crash.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        let mut log = self.lock_log()?;
        checkpoint(&self.db, &self.config, &mut log)
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

/// Checks the format version, or writes it into a new database, and
/// creates any missing table. Returns the store's identity (drawn now for
/// a store that has none) and the last log entry the database holds.
fn check_format(
    db: &Database,
    path: &Path,
    config: &StoreConfig,
) -> Result<(StoreId, u64), StoreError> {
    let txn = durable_txn(db, config)?;
    let found = {
        let mut meta = txn.open_table(META)?;
        let found = match meta.get(META_FORMAT_VERSION)? {
            Some(v) => {
                Some(
                    postcard::from_bytes::<u32>(v.value()).map_err(|_| Corruption::Meta {
                        name: META_FORMAT_VERSION,
                    })?,
                )
            }
            None => None,
        };
        match found {
            Some(FORMAT_VERSION) => {}
            Some(found) => {
                return Err(StoreError::FormatVersion {
                    path: path.to_path_buf(),
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
                        path: path.to_path_buf(),
                    });
                }
                let version = postcard::to_allocvec(&FORMAT_VERSION).unwrap_or_default();
                meta.insert(META_FORMAT_VERSION, version.as_slice())?;
            }
        }
        let id = match meta.get(META_STORE_ID)? {
            Some(v) => Some(
                <StoreId>::try_from(v.value()).map_err(|_| Corruption::Meta {
                    name: META_STORE_ID,
                })?,
            ),
            None => None,
        };
        let id = match id {
            Some(id) => id,
            None => {
                let id = new_store_id();
                meta.insert(META_STORE_ID, id.as_slice())?;
                id
            }
        };
        let sequence = match meta.get(META_LOG_SEQUENCE)? {
            Some(v) => postcard::from_bytes::<u64>(v.value()).map_err(|_| Corruption::Meta {
                name: META_LOG_SEQUENCE,
            })?,
            None => 0,
        };
        (id, sequence)
    };
    txn.open_table(RECORDS)?;
    txn.open_table(BY_SIGNER)?;
    txn.open_table(BY_KIND)?;
    txn.open_table(BY_TAG)?;
    txn.open_table(BY_AUTHOR_KIND)?;
    txn.open_table(KIND_STATS)?;
    txn.open_table(BLOBS)?;
    crate::moderation::create_tables(&txn)?;
    txn.commit()?;
    Ok(found)
}

/// A durable write transaction that holds the write lock.
pub(crate) struct DurableWrite<'s> {
    log: MutexGuard<'s, Log>,
    txn: WriteTransaction,
}

impl Deref for DurableWrite<'_> {
    type Target = WriteTransaction;

    fn deref(&self) -> &WriteTransaction {
        &self.txn
    }
}

/// A write transaction that commits durably.
fn durable_txn(db: &Database, config: &StoreConfig) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.set_quick_repair(config.quick_repair);
    Ok(txn)
}

/// Records in `meta` that the log entry `seq` is applied.
fn set_log_sequence(txn: &WriteTransaction, seq: u64) -> Result<(), StoreError> {
    let value = postcard::to_allocvec(&seq).unwrap_or_default();
    txn.open_table(META)?
        .insert(META_LOG_SEQUENCE, value.as_slice())?;
    Ok(())
}

/// A durable commit of the database, recording the last log entry it
/// holds, then an empty log.
fn checkpoint(db: &Database, config: &StoreConfig, log: &mut Log) -> Result<(), StoreError> {
    let started = Instant::now();
    let txn = durable_txn(db, config)?;
    set_log_sequence(&txn, log.next_seq.saturating_sub(1))?;
    txn.commit()?;
    let records = log.pending_records;
    log.rewind();
    tracing::debug!(
        records,
        took_us = started.elapsed().as_micros() as u64,
        "checkpoint"
    );
    Ok(())
}

/// Starts the log over after a durable commit made it redundant.
fn rewind_after_checkpoint(log: &mut Log) {
    log.rewind();
}

/// Replays the log beyond the entry `checkpointed` that the database
/// holds, one transaction per entry, then checkpoints and empties the log.
/// Returns how many entries were replayed.
fn recover(
    db: &Database,
    config: &StoreConfig,
    log: &mut Log,
    bytes: &[u8],
    id: &StoreId,
    checkpointed: u64,
) -> Result<u64, StoreError> {
    let refuse = |log: &Log, problem| StoreError::Log {
        path: log.path().to_path_buf(),
        problem,
    };
    let parsed = wal::parse(bytes, id).map_err(|problem| refuse(log, problem))?;
    let mut last = checkpointed;
    let mut replayed = 0;
    for (seq, range) in &parsed.entries {
        let seq = *seq;
        if seq <= checkpointed {
            continue;
        }
        if seq != last + 1 {
            return Err(refuse(
                log,
                LogProblem::Gap {
                    checkpointed,
                    first: seq,
                },
            ));
        }
        let op = wal::decode(&bytes[range.clone()])
            .ok_or_else(|| refuse(log, LogProblem::BadEntry { seq }))?;
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::None)?;
        {
            let mut writer = Writer::open(&txn)?;
            match op {
                Op::Insert(records) => {
                    for (record, received_at) in records {
                        writer.insert(record, received_at)?;
                    }
                }
                Op::Remove(ids) => {
                    for id in &ids {
                        writer.remove(id)?;
                    }
                }
            }
            writer.finish()?;
        }
        set_log_sequence(&txn, seq)?;
        txn.commit()?;
        last = seq;
        replayed += 1;
    }
    log.next_seq = last + 1;
    if bytes.len() > HEADER_LEN {
        if parsed.end < bytes.len() {
            tracing::info!(
                dropped_bytes = bytes.len() - parsed.end,
                "dropped what follows the last entry: a write never acknowledged, or entries the last checkpoint holds"
            );
        }
        checkpoint(db, config, log)?;
        // Once per open: the file shrinks back to its header.
        log.truncate()?;
    }
    Ok(replayed)
}

/// A new store's identity: 16 bytes that differ between stores, drawn
/// from the standard library's per-process random hash keys.
fn new_store_id() -> StoreId {
    use std::hash::{BuildHasher, Hasher};
    let mut id = [0u8; 16];
    for (i, part) in id.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(i);
        hasher.write_u32(std::process::id());
        part.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    id
}

impl Drop for Store {
    fn drop(&mut self) {
        // Empties the log, so that the next open replays nothing. The
        // engine would make the applied writes durable on its own.
        if let Ok(log) = self.log.get_mut()
            && !log.failed
            && log.pending_records > 0
            && let Err(e) = checkpoint(&self.db, &self.config, log)
        {
            tracing::warn!(error = %e, "checkpoint on close failed; the next open replays the log");
        }
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
