//! The on-disk layout: table definitions, key encodings and value encodings.
//!
//! `docs/STORE.md` describes the same layout in prose; keep the two in step,
//! and bump [`FORMAT_VERSION`] on any change to what is written.
//!
//! Records are named by their 16-byte short id: the first 16 bytes of the
//! record id, that is its timestamp (big-endian) and the first 8 bytes of
//! its hash. The `records` table is keyed by it, and every index entry holds
//! it. A short id names at most one stored record: a second record sharing
//! one (which takes a deliberate 64-bit hash collision within one
//! nanosecond, something only the author of both can produce) is refused as
//! a duplicate. Short ids sort like ids, by timestamp first, so within one
//! index prefix a reverse scan yields records newest first (D-5) and
//! `since`/`until` become the bounds of the scan. The index tables store
//! their entries in blocks (`postings.rs`).

use mosaic_core::{Id, Kind, Record, Tag, Timestamp};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::error::Corruption;
use crate::postings::BlockTable;

/// The version of this layout, recorded in the `meta` table under
/// [`META_FORMAT_VERSION`]. A store of another version is refused.
///
/// Version 1 keyed records and index entries by the whole id; version 2 by
/// the short id.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// The `meta` entry holding the format version.
pub(crate) const META_FORMAT_VERSION: &str = "format_version";
/// The `meta` entry holding the store's identity (16 bytes), which ties the
/// write-ahead log to this database.
pub(crate) const META_STORE_ID: &str = "store_id";
/// The `meta` entry holding the sequence number (postcard `u64`) of the
/// last log entry applied to the database, written in the same transaction
/// as that entry's changes.
pub(crate) const META_LOG_SEQUENCE: &str = "log_sequence";

/// Length of a short id: the timestamp (8) and 8 bytes of the hash.
pub(crate) const SHORT_LEN: usize = 16;
/// A record's short id, the first [`SHORT_LEN`] bytes of its id.
pub(crate) type ShortId = [u8; SHORT_LEN];
/// How many bytes of a tag's value its index key keeps (with the 2-byte
/// type, 22 bytes in all).
pub(crate) const TAG_VALUE_PREFIX: usize = 20;
/// Length of the `by_author_kind` prefix: author (32) and kind (8).
pub(crate) const AUTHOR_KIND_PREFIX: usize = 40;
/// Length of a `by_author_kind` entry: short id and nonce.
pub(crate) const AUTHOR_KIND_ENTRY: usize = SHORT_LEN + 8;

/// Named store-wide entries, postcard-encoded: the format version and the
/// BLOB counts. (Moderation data has its own tables: `moderation.rs`.)
pub(crate) const META: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("meta");
/// short id (16) -> postcard([`RecordMeta`]) followed by the record's exact
/// bytes (which begin with its whole id).
pub(crate) const RECORDS: TableDefinition<'static, &'static ShortId, &'static [u8]> =
    TableDefinition::new("records");
/// The index tables hold blocks of entries (see `postings.rs`): the key is
/// `prefix | lower bound (16)`, the value up to 32 entries in ascending
/// order. The entry layout of each index is its "flat key" below, less the
/// prefix.
///
/// signing key (32) | short id (16); entries: short id.
pub(crate) const BY_SIGNER: BlockTable<48> = TableDefinition::new("by_signer");
/// kind (8, big-endian) | short id (16); entries: short id.
pub(crate) const BY_KIND: BlockTable<24> = TableDefinition::new("by_kind");
/// tag type (2, big-endian) | value prefix (20, zero-padded) | short id
/// (16); entries: short id.
pub(crate) const BY_TAG: BlockTable<38> = TableDefinition::new("by_tag");
/// author key (32) | kind (8, big-endian) | short id (16) | nonce (8);
/// entries: short id and nonce. It answers author queries (one range per
/// kind of the author), author and kind queries, and address lookups (an
/// address is a nonce, a kind and an author; its records are those of the
/// author and kind whose entry ends with its nonce).
pub(crate) const BY_AUTHOR_KIND: BlockTable<56> = TableDefinition::new("by_author_kind");
/// kind (8, big-endian) -> postcard([`KindCounts`]).
pub(crate) const KIND_STATS: TableDefinition<'static, &'static [u8; 8], &'static [u8]> =
    TableDefinition::new("kind_stats");
/// BLAKE3-256 hash (32) -> the BLOB's bytes.
pub(crate) const BLOBS: TableDefinition<'static, &'static [u8; 32], &'static [u8]> =
    TableDefinition::new("blobs");

/// Names of the tables above, for error messages.
pub(crate) mod names {
    pub(crate) const RECORDS: &str = "records";
    pub(crate) const BY_SIGNER: &str = "by_signer";
    pub(crate) const BY_KIND: &str = "by_kind";
    pub(crate) const BY_TAG: &str = "by_tag";
    pub(crate) const BY_AUTHOR_KIND: &str = "by_author_kind";
}

/// What the store keeps about a record besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordMeta {
    /// When the server received the record, in nanoseconds (a [`Timestamp`]).
    pub(crate) received_at: u64,
}

/// Record count and bytes of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct KindCounts {
    /// How many records.
    pub(crate) records: u64,
    /// Their total length in bytes.
    pub(crate) bytes: u64,
}

/// Concatenates `parts` into a fixed-size key. The parts' lengths add up to
/// `N` at every call site; extra bytes would be dropped, never cause a panic.
pub(crate) fn concat<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    for part in parts {
        let end = at + part.len();
        if let Some(dst) = out.get_mut(at..end) {
            dst.copy_from_slice(part);
        }
        at = end;
    }
    debug_assert_eq!(at, N, "key parts must fill the key exactly");
    out
}

/// The 22-byte tag prefix of an index key: type (big-endian) and the first
/// 20 bytes of the value, zero-padded.
pub(crate) fn tag_prefix(tag: &Tag) -> [u8; 2 + TAG_VALUE_PREFIX] {
    let mut out = [0u8; 2 + TAG_VALUE_PREFIX];
    out[..2].copy_from_slice(&tag.tag_type().0.to_be_bytes());
    let value = tag.value();
    let n = value.len().min(TAG_VALUE_PREFIX);
    out[2..2 + n].copy_from_slice(&value[..n]);
    out
}

/// The tag-index prefixes of a record, without repeats.
pub(crate) fn tag_prefixes(record: &Record) -> Vec<[u8; 2 + TAG_VALUE_PREFIX]> {
    let mut prefixes: Vec<_> = record.tags().iter().map(tag_prefix).collect();
    prefixes.sort_unstable();
    prefixes.dedup();
    prefixes
}

/// The short id of a record id.
pub(crate) fn short_id(id: &Id) -> ShortId {
    concat(&[&id.as_bytes()[..SHORT_LEN]])
}

/// The `by_author_kind` entry of a record, as a flat key (prefix, short id,
/// nonce).
pub(crate) fn author_kind_key(record: &Record) -> [u8; AUTHOR_KIND_PREFIX + AUTHOR_KIND_ENTRY] {
    concat(&[
        record.author().as_bytes(),
        &record.kind().to_be_bytes(),
        &short_id(&record.id()),
        &record.nonce().to_bytes(),
    ])
}

/// The lowest short id at or after `since`.
pub(crate) fn lowest_short(since: Option<Timestamp>) -> ShortId {
    let mut short = [0u8; SHORT_LEN];
    if let Some(t) = since {
        short[..8].copy_from_slice(&t.to_be_bytes());
    }
    short
}

/// The highest short id at or before `until`.
pub(crate) fn highest_short(until: Option<Timestamp>) -> ShortId {
    let mut short = [0xff; SHORT_LEN];
    short[..8].copy_from_slice(&until.unwrap_or(Timestamp::MAX).to_be_bytes());
    short
}

/// Encodes a stored record: its metadata, then its exact bytes.
pub(crate) fn encode_record(record: &Record, received_at: Timestamp) -> Vec<u8> {
    let meta = RecordMeta {
        received_at: received_at.as_nanos(),
    };
    // A struct of one u64 encodes in at most 10 bytes.
    let mut buf = [0u8; 16];
    let head: &[u8] = postcard::to_slice(&meta, &mut buf).map_or(&[], |b| &*b);
    let mut out = Vec::with_capacity(head.len() + record.len());
    out.extend_from_slice(head);
    out.extend_from_slice(record.as_bytes());
    out
}

/// Decodes a stored record read back under `key`: the layout is checked
/// (never the signature, which was checked before it was stored), and that
/// the record's id begins with its key.
pub(crate) fn decode_record<'a>(
    key: &ShortId,
    value: &'a [u8],
) -> Result<(&'a Record, Timestamp), Corruption> {
    let (meta, bytes) = postcard::take_from_bytes::<RecordMeta>(value)
        .map_err(|_| Corruption::RecordMeta { id_prefix: *key })?;
    let received_at = Timestamp::from_nanos(meta.received_at)
        .map_err(|_| Corruption::RecordMeta { id_prefix: *key })?;
    let record =
        Record::danger_from_bytes_unverified(bytes).map_err(|error| Corruption::Record {
            id_prefix: *key,
            error,
        })?;
    if short_id(&record.id()) != *key {
        return Err(Corruption::RecordKey {
            key: *key,
            id: record.id(),
        });
    }
    Ok((record, received_at))
}

/// Encodes per-kind counts.
pub(crate) fn encode_counts(counts: &KindCounts) -> Vec<u8> {
    postcard::to_allocvec(counts).unwrap_or_default()
}

/// Decodes per-kind counts.
pub(crate) fn decode_counts(kind: Kind, value: &[u8]) -> Result<KindCounts, Corruption> {
    postcard::from_bytes(value).map_err(|_| Corruption::KindStats { kind })
}

/// Decodes counts kept in the `meta` table under `name`.
pub(crate) fn decode_counts_named(
    name: &'static str,
    value: &[u8],
) -> Result<KindCounts, Corruption> {
    postcard::from_bytes(value).map_err(|_| Corruption::Meta { name })
}

#[cfg(test)]
mod tests {
    use mosaic_core::{Kind, Nonce, OwnedTag, RecordBuilder, SecretKey, TagType};

    use super::*;

    fn record(ts: u64) -> mosaic_core::OwnedRecord {
        let key = SecretKey::from_bytes(&[3u8; 32]);
        let tag = OwnedTag::new(TagType(0x1234), &[9u8; 30]).unwrap();
        RecordBuilder::new(Kind::MICROBLOG_ROOT, Timestamp::from_nanos(ts).unwrap())
            .nonce(Nonce::from_key(b"n"))
            .tag(&tag)
            .tag(&tag)
            .payload(b"hello")
            .build(&key)
            .unwrap()
    }

    #[test]
    fn records_round_trip_with_their_received_time() {
        let r = record(1_000);
        let at = Timestamp::from_nanos(123_456_789).unwrap();
        let value = encode_record(&r, at);
        assert!(value.ends_with(r.as_bytes()));
        let (back, received) = decode_record(&short_id(&r.id()), &value).unwrap();
        assert_eq!(back.as_bytes(), r.as_bytes());
        assert_eq!(received, at);
    }

    #[test]
    fn damaged_records_are_errors() {
        let r = record(1_000);
        let value = encode_record(&r, Timestamp::ZERO);
        let key = short_id(&r.id());
        // Cut short.
        assert!(matches!(
            decode_record(&key, &value[..value.len() - 8]),
            Err(Corruption::Record { .. })
        ));
        // Metadata cut off entirely.
        assert!(matches!(
            decode_record(&key, &[]),
            Err(Corruption::RecordMeta { .. })
        ));
        // Metadata with a timestamp of 2^63 or more.
        let mut bad = postcard::to_allocvec(&RecordMeta {
            received_at: u64::MAX,
        })
        .unwrap();
        bad.extend_from_slice(r.as_bytes());
        assert!(matches!(
            decode_record(&key, &bad),
            Err(Corruption::RecordMeta { .. })
        ));
        // Stored under another key.
        let other = record(2_000);
        assert!(matches!(
            decode_record(&short_id(&other.id()), &value),
            Err(Corruption::RecordKey { .. })
        ));
        // A key that is no short id.
        assert!(matches!(
            decode_record(&[0xff; 16], &value),
            Err(Corruption::RecordKey { .. })
        ));
    }

    #[test]
    fn tag_prefixes_are_type_then_twenty_value_bytes_without_repeats() {
        let r = record(5);
        let prefixes = tag_prefixes(&r);
        assert_eq!(prefixes.len(), 1);
        assert_eq!(&prefixes[0][..2], &[0x12, 0x34]);
        assert_eq!(&prefixes[0][2..], &[9u8; 20]);
        let short = OwnedTag::new(TagType(1), b"ab").unwrap();
        let p = tag_prefix(&short);
        assert_eq!(&p[..4], &[0, 1, b'a', b'b']);
        assert!(p[4..].iter().all(|&b| b == 0));
    }

    #[test]
    fn short_id_bounds_follow_timestamps() {
        let t = Timestamp::from_nanos(0x0102_0304_0506_0708).unwrap();
        assert_eq!(&lowest_short(Some(t))[..8], &t.to_be_bytes());
        assert!(lowest_short(Some(t))[8..].iter().all(|&b| b == 0));
        assert_eq!(&highest_short(Some(t))[..8], &t.to_be_bytes());
        assert!(highest_short(Some(t))[8..].iter().all(|&b| b == 0xff));
        assert_eq!(lowest_short(None), [0u8; 16]);
        assert_eq!(&highest_short(None)[..8], &Timestamp::MAX.to_be_bytes());
    }

    #[test]
    fn short_ids_are_the_start_of_ids() {
        let r = record(77);
        let id = r.id();
        let short = short_id(&id);
        assert_eq!(&short[..], &id.as_bytes()[..SHORT_LEN]);
        assert_eq!(&short[..8], &r.timestamp().to_be_bytes());
        assert_eq!(&r.as_bytes()[..48], id.as_bytes());
        let ak = author_kind_key(&r);
        assert_eq!(&ak[..32], r.author().as_bytes());
        assert_eq!(&ak[32..40], &r.kind().to_be_bytes());
        assert_eq!(&ak[40..56], &short);
        assert_eq!(&ak[56..], &r.nonce().to_bytes());
    }

    #[test]
    fn counts_round_trip_and_damage_is_reported() {
        let c = KindCounts {
            records: 3,
            bytes: 999,
        };
        let kind = Kind::MICROBLOG_ROOT;
        assert_eq!(decode_counts(kind, &encode_counts(&c)).unwrap(), c);
        assert_eq!(
            decode_counts(kind, &[0xff]),
            Err(Corruption::KindStats { kind })
        );
    }
}
