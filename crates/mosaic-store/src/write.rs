//! The write path: one [`Writer`] per write transaction applies inserts and
//! removals to the records table and every index, and keeps the per-kind
//! counts.

use std::collections::BTreeMap;

use mosaic_core::{Address, Id, Kind, Record, Timestamp};
use redb::{ReadableTable, Table, WriteTransaction};

use crate::error::StoreError;
use crate::layout::{
    self, AUTHOR_KIND_ENTRY, AUTHOR_KIND_PREFIX, BY_AUTHOR_KIND, BY_KIND, BY_SIGNER, BY_TAG,
    KIND_STATS, KindCounts, RECORDS, SHORT_LEN, ShortId, TAG_VALUE_PREFIX, concat, decode_counts,
    decode_record, encode_counts, encode_record, names, short_id,
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
    /// A record with this id is already stored; nothing changed. Also the
    /// outcome, with nothing stored, for a record whose id shares its first
    /// 16 bytes (timestamp and 8 bytes of hash) with a stored record's:
    /// only a deliberate hash collision, by the author of both, yields one.
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

/// Flat key lengths (prefix, short id, suffix) of the four indexes.
const SIGNER_FLAT: usize = 32 + SHORT_LEN;
const KIND_FLAT: usize = 8 + SHORT_LEN;
const TAG_FLAT: usize = 2 + TAG_VALUE_PREFIX + SHORT_LEN;
const AUTHOR_KIND_FLAT: usize = AUTHOR_KIND_PREFIX + AUTHOR_KIND_ENTRY;

/// The index entries of one record, as flat keys (prefix | short id |
/// suffix).
struct Entries {
    /// None when the record is signed by its author: `by_author_kind`
    /// answers for the signer then.
    signer: Option<[u8; SIGNER_FLAT]>,
    kind: [u8; KIND_FLAT],
    author_kind: [u8; AUTHOR_KIND_FLAT],
    tags: Vec<[u8; TAG_FLAT]>,
}

impl Entries {
    fn of(record: &Record) -> Entries {
        let short = short_id(&record.id());
        Entries {
            signer: Entries::signer(record, &short),
            kind: Entries::kind(record, &short),
            author_kind: layout::author_kind_key(record),
            tags: layout::tag_prefixes(record)
                .iter()
                .map(|p| concat(&[p, &short]))
                .collect(),
        }
    }

    /// The `by_signer` entry, for a record not signed by its author.
    fn signer(record: &Record, short: &ShortId) -> Option<[u8; SIGNER_FLAT]> {
        let signer = record.signing_key();
        (signer != record.author()).then(|| concat(&[signer.as_bytes(), short]))
    }

    fn kind(record: &Record, short: &ShortId) -> [u8; KIND_FLAT] {
        concat(&[&record.kind().to_be_bytes(), short])
    }
}

/// Applies changes inside one write transaction. [`finish`](Self::finish)
/// must be called before the transaction commits.
pub(crate) struct Writer<'t> {
    records: Table<'t, &'static ShortId, &'static [u8]>,
    by_signer: Postings<'t, SIGNER_FLAT, SIGNER_FLAT>,
    by_kind: Postings<'t, KIND_FLAT, KIND_FLAT>,
    by_tag: Postings<'t, TAG_FLAT, TAG_FLAT>,
    by_author_kind: Postings<'t, { AUTHOR_KIND_PREFIX + SHORT_LEN }, AUTHOR_KIND_FLAT>,
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

    /// Makes room for the index entries of `records` more records.
    pub(crate) fn reserve(&mut self, records: usize) {
        self.by_signer.reserve(records);
        self.by_kind.reserve(records);
        self.by_author_kind.reserve(records);
        self.by_tag.reserve(records.saturating_mul(2));
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
        let short = short_id(&id);
        let mut outcome = InsertOutcome::Inserted;
        if handling.is_replaceable() {
            // Stored, or its short id is taken (see `InsertOutcome::Duplicate`).
            if self.records.get(&short)?.is_some() {
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
        // Store the bytes. A short id already stored is a duplicate (the
        // same record, or one sharing its short id), whose stored value
        // (with its first received time) is put back.
        let value = encode_record(record, received_at);
        let previous = self
            .records
            .insert(&short, value.as_slice())?
            .map(|old| old.value().to_vec());
        if let Some(previous) = previous {
            self.records.insert(&short, previous.as_slice())?;
            return Ok(InsertOutcome::Duplicate);
        }
        // The entries of `Entries::of`, without collecting them first.
        if let Some(signer) = Entries::signer(record, &short) {
            self.by_signer.insert(signer);
        }
        self.by_kind.insert(Entries::kind(record, &short));
        let author_kind = layout::author_kind_key(record);
        if handling.is_replaceable() {
            // Seen by later address lookups of this transaction.
            self.by_author_kind.insert_findable(author_kind);
        } else {
            self.by_author_kind.insert(author_kind);
        }
        // A tag repeated in the record gives one entry: the flush drops
        // repeats.
        for tag in record.tags().iter() {
            self.by_tag
                .insert(concat(&[&layout::tag_prefix(tag), &short]));
        }
        self.count(record.kind(), 1, record.len());
        Ok(outcome)
    }

    /// The ids stored at an address, newest first. Only addresses of
    /// replaceable kinds see the entries of this transaction before
    /// [`finish`](Self::finish).
    fn ids_at(&self, address: &Address) -> Result<Vec<Id>, StoreError> {
        let prefix: [u8; AUTHOR_KIND_PREFIX] =
            concat(&[address.author().as_bytes(), &address.kind().to_be_bytes()]);
        let nonce = address.nonce().to_bytes();
        let mut ids = Vec::new();
        for flat in self.by_author_kind.with_prefix(&prefix)? {
            if flat[AUTHOR_KIND_PREFIX + SHORT_LEN..] != nonce {
                continue;
            }
            let short: ShortId =
                concat(&[&flat[AUTHOR_KIND_PREFIX..AUTHOR_KIND_PREFIX + SHORT_LEN]]);
            // An entry whose record is missing (damage) names nothing to
            // replace.
            if let Some(value) = self.records.get(&short)? {
                ids.push(decode_record(&short, value.value())?.0.id());
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        Ok(ids)
    }

    /// Removes a record and all its index entries. Returns whether it was
    /// stored.
    pub(crate) fn remove(&mut self, id: &Id) -> Result<bool, StoreError> {
        let short = short_id(id);
        let (entries, kind, len) = {
            let Some(value) = self.records.get(&short)? else {
                return Ok(false);
            };
            let (record, _) = decode_record(&short, value.value())?;
            if record.id() != *id {
                // Another record holds the short id: this one is not stored.
                return Ok(false);
            }
            (Entries::of(record), record.kind(), record.len())
        };
        self.records.remove(&short)?;
        if let Some(signer) = &entries.signer {
            self.by_signer.remove(signer)?;
        }
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
