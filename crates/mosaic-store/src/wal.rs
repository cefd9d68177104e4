//! The write-ahead log: record writes made durable with one `fdatasync` of
//! a small file, then applied to the database without waiting for it.
//!
//! The file `store.wal` ([`LOG_FILE`]) holds a header and a sequence of
//! entries. The header is the magic `MOSAICWL`, the log's version (`u32`,
//! little-endian), the store's 16-byte identity (kept in the database's
//! `meta` table) and the first 16 bytes of the BLAKE3 hash of those 28
//! bytes. Each entry is:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | length of the payload (`u32`, little-endian) |
//! | 16 | the first 16 bytes of BLAKE3 over the length, sequence and payload |
//! | 8 | sequence number (`u64`, little-endian), one more than the previous entry's |
//! | length | payload |
//!
//! A payload is one operation: `1` followed by records as `received-at
//! (u64 LE) | length (u32 LE) | bytes`, or `2` followed by 48-byte ids to
//! remove. Reading stops at the first entry that is cut short, fails its
//! checksum, or does not follow its predecessor's sequence number: that
//! entry and everything after it were never acknowledged.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use mosaic_core::{Id, Record, Timestamp, blake3_xof64};

use crate::error::{LogProblem, StoreError};

/// The name of the write-ahead log inside a store's directory.
pub const LOG_FILE: &str = "store.wal";

const MAGIC: [u8; 8] = *b"MOSAICWL";
/// The version of the log's layout.
pub(crate) const LOG_VERSION: u32 = 1;
/// Magic, version, store identity, checksum.
pub(crate) const HEADER_LEN: usize = 8 + 4 + 16 + 16;
/// Length, checksum, sequence number.
pub(crate) const ENTRY_HEAD: usize = 4 + 16 + 8;

const OP_INSERT: u8 = 1;
const OP_REMOVE: u8 = 2;

/// A store's identity: it ties a log to its database.
pub(crate) type StoreId = [u8; 16];

fn checksum(parts: &[&[u8]]) -> [u8; 16] {
    let mut data = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        data.extend_from_slice(p);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&blake3_xof64(&data)[..16]);
    out
}

/// The header of a log for the store `id`.
pub(crate) fn header(id: &StoreId) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&LOG_VERSION.to_le_bytes());
    out[12..28].copy_from_slice(id);
    let sum = checksum(&[&out[..28]]);
    out[28..].copy_from_slice(&sum);
    out
}

/// One entry, ready to append.
pub(crate) fn entry(seq: u64, payload: &[u8]) -> Vec<u8> {
    // Payloads are bounded far below 4 GiB by the callers (a batch larger
    // than `checkpoint_bytes` is not logged).
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let seq = seq.to_le_bytes();
    let sum = checksum(&[&len, &seq, payload]);
    let mut out = Vec::with_capacity(ENTRY_HEAD + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&sum);
    out.extend_from_slice(&seq);
    out.extend_from_slice(payload);
    out
}

/// The payload of an insert: the stored records with their received-at
/// times, in the order they were applied.
pub(crate) fn insert_payload<'r>(
    records: impl Iterator<Item = (&'r Record, Timestamp)>,
) -> Vec<u8> {
    let mut out = vec![OP_INSERT];
    for (record, received_at) in records {
        out.extend_from_slice(&received_at.as_nanos().to_le_bytes());
        let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(record.as_bytes());
    }
    out
}

/// The payload of a removal: the ids removed.
pub(crate) fn remove_payload<'i>(ids: impl Iterator<Item = &'i Id>) -> Vec<u8> {
    let mut out = vec![OP_REMOVE];
    for id in ids {
        out.extend_from_slice(id.as_bytes());
    }
    out
}

/// One logged operation, decoded for replay.
#[derive(Debug)]
pub(crate) enum Op<'a> {
    /// Records to insert, with their received-at times.
    Insert(Vec<(&'a Record, Timestamp)>),
    /// Records to remove.
    Remove(Vec<Id>),
}

/// Decodes a payload; `None` when it is malformed.
pub(crate) fn decode(payload: &[u8]) -> Option<Op<'_>> {
    let (&op, mut rest) = payload.split_first()?;
    match op {
        OP_INSERT => {
            let mut records = Vec::new();
            while !rest.is_empty() {
                let at = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
                let len = u32::from_le_bytes(rest.get(8..12)?.try_into().ok()?) as usize;
                let bytes = rest.get(12..12 + len)?;
                let record = Record::danger_from_bytes_unverified(bytes).ok()?;
                records.push((record, Timestamp::from_nanos(at).ok()?));
                rest = &rest[12 + len..];
            }
            Some(Op::Insert(records))
        }
        OP_REMOVE => {
            let mut ids = Vec::new();
            for chunk in rest.chunks(48) {
                let bytes: &[u8; 48] = chunk.try_into().ok()?;
                ids.push(Id::from_bytes(bytes).ok()?);
            }
            Some(Op::Remove(ids))
        }
        _ => None,
    }
}

/// What reading a log found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Each entry's sequence number and payload range, in order.
    pub(crate) entries: Vec<(u64, std::ops::Range<usize>)>,
    /// Where the last whole entry ends: everything after it is dropped.
    pub(crate) end: usize,
}

/// Reads a whole log file's bytes. Checks the header against `id`; reads
/// entries up to the first one cut short, damaged, or out of sequence.
pub(crate) fn parse(bytes: &[u8], id: &StoreId) -> Result<Parsed, LogProblem> {
    let head = bytes.get(..HEADER_LEN).ok_or(LogProblem::NotALog)?;
    if head[..8] != MAGIC {
        return Err(LogProblem::NotALog);
    }
    let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if version != LOG_VERSION {
        return Err(LogProblem::Version {
            found: version,
            expected: LOG_VERSION,
        });
    }
    if checksum(&[&head[..28]]) != head[28..] {
        return Err(LogProblem::DamagedHeader);
    }
    if head[12..28] != id[..] {
        return Err(LogProblem::OtherStore);
    }
    let mut entries: Vec<(u64, std::ops::Range<usize>)> = Vec::new();
    let mut at = HEADER_LEN;
    while let Some(head) = bytes.get(at..at + ENTRY_HEAD) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let seq_bytes = &head[20..28];
        let seq = u64::from_le_bytes([
            seq_bytes[0],
            seq_bytes[1],
            seq_bytes[2],
            seq_bytes[3],
            seq_bytes[4],
            seq_bytes[5],
            seq_bytes[6],
            seq_bytes[7],
        ]);
        let start = at + ENTRY_HEAD;
        let Some(payload) = bytes.get(start..start.saturating_add(len)) else {
            break;
        };
        if checksum(&[&head[..4], seq_bytes, payload]) != head[4..20] {
            break;
        }
        if let Some((last, _)) = entries.last()
            && last.checked_add(1) != Some(seq)
        {
            break;
        }
        entries.push((seq, start..start + len));
        at = start + len;
    }
    Ok(Parsed { entries, end: at })
}

/// The open log: where the next entry goes and what it is numbered, and how
/// much has been logged since the last checkpoint.
#[derive(Debug)]
pub(crate) struct Log {
    file: File,
    path: PathBuf,
    /// Where the next entry is written.
    end: u64,
    /// The sequence number of the next entry.
    pub(crate) next_seq: u64,
    /// Records and bytes logged since the last checkpoint.
    pub(crate) pending_records: u64,
    pub(crate) pending_bytes: u64,
    /// When the last checkpoint ended.
    pub(crate) checkpointed_at: Instant,
    /// Set when a write to the log or the database failed halfway: the
    /// log and the database may disagree until the store is reopened.
    pub(crate) failed: bool,
    /// How many times the log was synced (tests check every batch is).
    #[cfg(test)]
    pub(crate) syncs: u64,
}

impl Log {
    /// Opens the log of store `id` in `dir`, creating an empty one when
    /// there is none. Returns it with its bytes as read.
    pub(crate) fn open(dir: &Path, id: &StoreId) -> Result<(Log, Vec<u8>), StoreError> {
        let path = dir.join(LOG_FILE);
        if !path.try_exists()? {
            Log::create(dir, &path, id)?;
        }
        let mut file = OpenOptions::new().read(true).write(true).open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let log = Log {
            file,
            path,
            end: bytes.len() as u64,
            next_seq: 1,
            pending_records: 0,
            pending_bytes: 0,
            checkpointed_at: Instant::now(),
            failed: false,
            #[cfg(test)]
            syncs: 0,
        };
        Ok((log, bytes))
    }

    /// Writes a new log under a temporary name, syncs it and renames it
    /// into place, so that `store.wal` always has a whole header.
    fn create(dir: &Path, path: &Path, id: &StoreId) -> Result<(), StoreError> {
        let prefix = format!("{LOG_FILE}.new-");
        // Left behind by a creation that was interrupted.
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                std::fs::remove_file(entry.path())?;
            }
        }
        let fresh = dir.join(format!("{prefix}{}", std::process::id()));
        {
            let mut file = File::create(&fresh)?;
            file.write_all(&header(id))?;
            file.sync_all()?;
        }
        std::fs::rename(&fresh, path)?;
        File::open(dir)?.sync_all()?;
        Ok(())
    }

    /// The log file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and makes it durable with one `fdatasync`. On an
    /// error the log is marked failed.
    pub(crate) fn append(&mut self, entry: &[u8]) -> Result<(), StoreError> {
        let result = self.write_at_end(entry);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn write_at_end(&mut self, entry: &[u8]) -> Result<(), StoreError> {
        self.file.seek(SeekFrom::Start(self.end))?;
        self.file.write_all(entry)?;
        self.sync()?;
        self.end += entry.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    /// `fdatasync`: the entries written are on stable storage once it
    /// returns.
    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        #[cfg(test)]
        {
            self.syncs += 1;
        }
        Ok(())
    }

    /// Starts the log over after a checkpoint made everything in it durable
    /// in the database: the next entry is written after the header, over
    /// the old ones, and the file keeps its length. Writing inside the file
    /// lets `fdatasync` skip the file's size and block map, which costs a
    /// third of a small sync on this kind of disk. Nothing needs syncing
    /// here: old entries left behind carry sequence numbers up to the
    /// checkpoint, which recovery skips, and they cannot follow a newer
    /// entry in sequence, so a scan stops at the first of them.
    pub(crate) fn rewind(&mut self) {
        self.end = HEADER_LEN as u64;
        self.pending_records = 0;
        self.pending_bytes = 0;
        self.checkpointed_at = Instant::now();
    }

    /// Empties the log (after recovery): keeps the header only.
    /// On an error the log is marked failed: appending after a length
    /// that may not have been cut would leave a hole.
    pub(crate) fn truncate(&mut self) -> Result<(), StoreError> {
        let cut = self
            .file
            .set_len(HEADER_LEN as u64)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = cut {
            self.failed = true;
            return Err(e.into());
        }
        self.end = HEADER_LEN as u64;
        self.pending_records = 0;
        self.pending_bytes = 0;
        self.checkpointed_at = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
