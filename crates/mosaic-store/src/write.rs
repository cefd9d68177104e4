//! The write path: one [`Writer`] per write transaction applies inserts and
//! removals to the records table and every index, and keeps the per-kind
//! counts.

use std::collections::BTreeMap;

use mosaic_core::{Address, Id, Kind, Record, Timestamp};
use redb::{ReadableTable, Table, WriteTransaction};

use crate::error::StoreError;
use crate::layout::{
    self, BY_AUTHOR_KIND, BY_KIND, BY_SIGNER, BY_TAG, ID_LEN, KIND_STATS, KindCounts, RECORDS,
    concat, decode_counts, decode_record, encode_counts, encode_record, names,
};
use crate::postings::Postings;

/// What happened to one submitted record (D-7).
///
/// | outcome | stored | on the wire |
/// |---|---|---|
/// | [`Inserted`](Self::Inserted) | yes | ACCEPTED |
/// | [`Replaced`](Self::Replaced) | yes | ACCEPTED |
/// | [`Duplicate`](Self::Duplicate) | already | DUPLICATE |
/// | [`Superseded`](Self::Superseded) | no | DUPLICATE |
/// | [`Ephemeral`](Self::Ephemeral) | no | relayed; NO_CONSUMERS without subscribers |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InsertOutcome {
    /// The record is new and now stored (durably, once the call returns).
    Inserted,
    /// The record is replaceable and newer than the one stored at its
    /// address: it is stored, and `old` (with its index entries) is gone.
    Replaced {
        /// The retired record.
        old: Id,
    },
    /// A record with this id is already stored; nothing changed.
    Duplicate,
    /// The record is replaceable and not newer (by timestamp, then id) than
    /// `newer`, stored at its address: it is not stored, and never served.
    Superseded {
        /// The stored record that wins.
        newer: Id,
    },
    /// The record's kind is ephemeral: it is never stored. Serve it to live
    /// subscribers only.
    Ephemeral,
}

impl InsertOutcome {
    /// Whether the record is now stored because of this call.
    pub fn is_stored(&self) -> bool {
        matches!(
            self,
            InsertOutcome::Inserted | InsertOutcome::Replaced { .. }
        )
    }
}

/// The index entries of one record, as flat keys (prefix | id | suffix).
struct Entries {
    signer: [u8; 80],
    kind: [u8; 56],
    author_kind: [u8; 96],
    tags: Vec<[u8; 70]>,
}

impl Entries {
    fn of(record: &Record) -> Entries {
        let id = record.id();
        let id = id.as_bytes();
        Entries {
            signer: concat(&[record.signing_key().as_bytes(), id]),
            kind: concat(&[&record.kind().to_be_bytes(), id]),
            author_kind: layout::author_kind_key(record),
            tags: layout::tag_prefixes(record)
                .iter()
                .map(|p| concat(&[p, id]))
                .collect(),
        }
    }
}

/// Applies changes inside one write transaction. [`finish`](Self::finish)
/// must be called before the transaction commits.
pub(crate) struct Writer<'t> {
    records: Table<'t, &'static [u8; ID_LEN], &'static [u8]>,
    by_signer: Postings<'t, 80, 80>,
    by_kind: Postings<'t, 56, 56>,
    by_tag: Postings<'t, 70, 70>,
    by_author_kind: Postings<'t, 88, 96>,
    kind_stats: Table<'t, &'static [u8; 8], &'static [u8]>,
    /// Per kind: change in record count and in bytes.
    deltas: BTreeMap<Kind, (i64, i64)>,
}

impl<'t> Writer<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Writer<'t>, StoreError> {
        Ok(Writer {
            records: txn.open_table(RECORDS)?,
            by_signer: Postings::open(txn, BY_SIGNER, names::BY_SIGNER)?,
            by_kind: Postings::open(txn, BY_KIND, names::BY_KIND)?,
            by_tag: Postings::open(txn, BY_TAG, names::BY_TAG)?,
            by_author_kind: Postings::open(txn, BY_AUTHOR_KIND, names::BY_AUTHOR_KIND)?,
            kind_stats: txn.open_table(KIND_STATS)?,
            deltas: BTreeMap::new(),
        })
    }

    /// Applies one submission with the kind semantics of `kind.md` and D-7.
    pub(crate) fn insert(
        &mut self,
        record: &Record,
        received_at: Timestamp,
    ) -> Result<InsertOutcome, StoreError> {
        let handling = record.kind().duplicate_handling();
        if handling.is_ephemeral() {
            return Ok(InsertOutcome::Ephemeral);
        }
        let id = record.id();
        let mut outcome = InsertOutcome::Inserted;
        if handling.is_replaceable() {
            if self.records.get(id.as_bytes())?.is_some() {
                return Ok(InsertOutcome::Duplicate);
            }
            // Newest first; normally at most one.
            let existing = self.ids_at(&record.address())?;
            if let Some(&newest) = existing.first() {
                if newest > id {
                    return Ok(InsertOutcome::Superseded { newer: newest });
                }
                outcome = InsertOutcome::Replaced { old: newest };
            }
            for old in &existing {
                self.remove(old)?;
            }
        }
        // Store the bytes; an id already stored is a duplicate, whose
        // stored value (with its first received time) is put back.
        let value = encode_record(record, received_at);
        let previous = self
            .records
            .insert(id.as_bytes(), value.as_slice())?
            .map(|old| old.value().to_vec());
        if let Some(previous) = previous {
            self.records.insert(id.as_bytes(), previous.as_slice())?;
            return Ok(InsertOutcome::Duplicate);
        }
        let e = Entries::of(record);
        self.by_signer.insert(e.signer);
        self.by_kind.insert(e.kind);
        self.by_author_kind.insert(e.author_kind);
        for tag in e.tags {
            self.by_tag.insert(tag);
        }
        self.count(record.kind(), 1, record.len());
        Ok(outcome)
    }

    /// The ids stored at an address, newest first.
    fn ids_at(&self, address: &Address) -> Result<Vec<Id>, StoreError> {
        let prefix: [u8; 40] =
            concat(&[address.author().as_bytes(), &address.kind().to_be_bytes()]);
        let nonce = address.nonce().to_bytes();
        let mut ids = Vec::new();
        for key in self.by_author_kind.with_prefix(&prefix)?.iter().rev() {
            if key[40 + ID_LEN..] == nonce {
                ids.push(layout::id_at(key, 40, names::BY_AUTHOR_KIND)?);
            }
        }
        Ok(ids)
    }

    /// Removes a record and all its index entries. Returns whether it was
    /// stored.
    pub(crate) fn remove(&mut self, id: &Id) -> Result<bool, StoreError> {
        let (entries, kind, len) = {
            let Some(value) = self.records.remove(id.as_bytes())? else {
                return Ok(false);
            };
            let (record, _) = decode_record(id.as_bytes(), value.value())?;
            (Entries::of(record), record.kind(), record.len())
        };
        self.by_signer.remove(&entries.signer)?;
        self.by_kind.remove(&entries.kind)?;
        self.by_author_kind.remove(&entries.author_kind)?;
        for tag in &entries.tags {
            self.by_tag.remove(tag)?;
        }
        self.count(kind, -1, len);
        Ok(true)
    }

    fn count(&mut self, kind: Kind, records: i64, len: usize) {
        let bytes = i64::try_from(len).unwrap_or(i64::MAX);
        let delta = self.deltas.entry(kind).or_insert((0, 0));
        delta.0 += records;
        delta.1 += records * bytes;
    }

    /// Writes the pending index entries and the per-kind counts changed by
    /// this transaction.
    pub(crate) fn finish(mut self) -> Result<(), StoreError> {
        self.by_signer.flush()?;
        self.by_kind.flush()?;
        self.by_author_kind.flush()?;
        self.by_tag.flush()?;
        for (kind, (records, bytes)) in std::mem::take(&mut self.deltas) {
            if records == 0 && bytes == 0 {
                continue;
            }
            let key = kind.to_be_bytes();
            let mut counts = match self.kind_stats.get(&key)? {
                Some(v) => decode_counts(kind, v.value())?,
                None => KindCounts::default(),
            };
            counts.records = counts.records.saturating_add_signed(records);
            counts.bytes = counts.bytes.saturating_add_signed(bytes);
            if counts.records == 0 {
                self.kind_stats.remove(&key)?;
            } else {
                self.kind_stats
                    .insert(&key, encode_counts(&counts).as_slice())?;
            }
        }
        Ok(())
    }
}
